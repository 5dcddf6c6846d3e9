import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { resolveCredential } from "./credentials.js";
import { ConnectorError } from "./errors.js";

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "gatehouse-cred-"));
  await writeFile(join(dir, "pw"), "s3cret-file\n");
  await writeFile(join(dir, "pw-crlf"), "s3cret crlf \r\n\r\n");
  await writeFile(join(dir, "empty"), "\n");
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function failure(ref: string, env: Record<string, string> = {}): Promise<ConnectorError> {
  try {
    await resolveCredential(ref, env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConnectorError);
    return err as ConnectorError;
  }
  throw new Error(`expected ${ref} to fail`);
}

describe("resolveCredential", () => {
  it("treats an empty reference as no password", async () => {
    expect(await resolveCredential("", {})).toBeNull();
  });

  it("reads env:NAME from the given environment", async () => {
    expect(await resolveCredential("env:APP_PW", { APP_PW: "s3cret-env\n" })).toBe("s3cret-env\n");
  });

  it("reads file:PATH with trailing newlines trimmed and inner whitespace kept", async () => {
    expect(await resolveCredential(`file:${join(dir, "pw")}`, {})).toBe("s3cret-file");
    expect(await resolveCredential(`file:${join(dir, "pw-crlf")}`, {})).toBe("s3cret crlf ");
  });

  it.each([
    ["env:MISSING", {}, /credential "env:MISSING": the environment variable is not set/],
    ["env:EMPTY", { EMPTY: "" }, /is empty/],
    ["env:1BAD", {}, /not a valid environment variable name/],
    ["file:", {}, /no file path/],
    ["vault:secret/app", {}, /credential "vault:secret\/app": unsupported reference/],
    ["s3cret-inline", {}, /unsupported reference/],
  ])("refuses %j with CREDENTIAL_UNAVAILABLE", async (ref, env, why) => {
    const err = await failure(ref, env);
    expect(err.code).toBe("CREDENTIAL_UNAVAILABLE");
    expect(err.message).toMatch(why);
  });

  it("names a missing or empty file by reference and OS code, never its content", async () => {
    const missing = await failure(`file:${join(dir, "nope")}`);
    expect(missing.code).toBe("CREDENTIAL_UNAVAILABLE");
    expect(missing.message).toContain(join(dir, "nope"));
    expect(missing.message).toContain("ENOENT");
    expect((await failure(`file:${dir}`)).message).toContain("EISDIR");
    expect((await failure(`file:${join(dir, "empty")}`)).message).toMatch(/file is empty/);
  });

  it("never puts a secret in the message", async () => {
    // A reference that is really a pasted secret must not echo it beyond the reference itself, and a set
    // variable's value must never appear when the reference is malformed.
    const err = await failure("env:", { "": "hidden-value" });
    expect(err.message).not.toContain("hidden-value");
  });
});

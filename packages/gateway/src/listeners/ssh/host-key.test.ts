import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { GENERATED_HOST_KEY, loadSshHostKey } from "./host-key.js";

let dir: string;
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe("ssh host key", () => {
  it("is generated once in the data directory and the same at every later start", () => {
    dir = mkdtempSync(join(tmpdir(), "gatehouse-host-key-"));
    const first = loadSshHostKey(dir, undefined);
    expect(first.source).toBe("generated");
    expect(first.publicLine).toMatch(/^ssh-ed25519 [A-Za-z0-9+/=]+$/);
    const path = join(dir, GENERATED_HOST_KEY);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    // OpenSSH itself agrees on the public key and its fingerprint.
    const pub = readFileSync(`${path}.pub`, "utf8");
    expect(pub.split(" ").slice(0, 2).join(" ")).toBe(first.publicLine);
    const fingerprint = execFileSync("ssh-keygen", ["-l", "-E", "sha256", "-f", `${path}.pub`], { encoding: "utf8" }).split(/\s+/)[1];
    expect(first.fingerprint).toBe(fingerprint);
    const again = loadSshHostKey(dir, undefined);
    expect(again.source).toBe("data-dir");
    expect(again.fingerprint).toBe(first.fingerprint);
  });

  it("reads a configured key, and names the key when it is not one", () => {
    dir = mkdtempSync(join(tmpdir(), "gatehouse-host-key-"));
    const file = join(dir, "key");
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", file]);
    const configured = loadSshHostKey(dir, file);
    expect(configured.source).toBe("configured");
    expect(configured.fingerprint).toBe(execFileSync("ssh-keygen", ["-l", "-E", "sha256", "-f", file], { encoding: "utf8" }).split(/\s+/)[1]);
    writeFileSync(join(dir, "bad"), "not a key");
    expect(() => loadSshHostKey(dir, join(dir, "bad"))).toThrow(/ssh\.hostKey/);
    expect(() => loadSshHostKey(dir, join(dir, "missing"))).toThrow(/ssh\.hostKey: cannot read/);
  });
});

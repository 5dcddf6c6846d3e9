import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { throwaway, type PostgresServer, type TestDatabase } from "../lib/postgres-server.js";
import { CLI, Proc, runCli, tempDir } from "../lib/processes.js";

// The store's password kept out of the config file: `store.url` without one,
// and the password from `store.password` (env:NAME or file:PATH, as a
// connection's credential) or from PGPASSWORD, against a real Postgres that
// demands it (a throwaway cluster with scram-sha-256 for everyone).

const PASSWORD = "store-secret-ö1";
let server: PostgresServer;
let db: TestDatabase;
let storeUrl: string;

beforeAll(async () => {
  server = await throwaway({ password: PASSWORD });
  db = await server.createDatabase({ empty: true });
  storeUrl = `postgres://postgres@${server.host}:${server.port}/${db.name}`;
});

afterAll(async () => {
  await db?.drop();
  await server?.stop();
});

/** A clean environment: no PG* or GATEHOUSE_* leftovers from the test's own. */
function baseEnv(extra: Record<string, string> = {}): Record<string, string> {
  return { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: tempDir("gatehouse-home-"), ...extra };
}

function writeConfig(store: Record<string, unknown>): { dir: string; file: string } {
  const dir = tempDir();
  const file = join(dir, "gatehouse.yaml");
  writeFileSync(file, JSON.stringify({ listen: { api: "127.0.0.1:0" }, store }, null, 2));
  return { dir, file };
}

/** Starts `gatehouse gateway` with exactly `env`; resolves once it started (then stops it) or exited. */
async function startWith(store: Record<string, unknown>, env: Record<string, string>): Promise<{ started: boolean; stderr: string; storeKind?: unknown }> {
  const { dir, file } = writeConfig(store);
  const child = spawn(process.execPath, [CLI, "gateway", "--config", file], { cwd: dir, env, stdio: ["ignore", "pipe", "pipe"] });
  const proc = new Proc(child, "gateway");
  try {
    const line = await proc.waitFor((l) => l.msg === "gateway started", 60_000);
    return { started: true, stderr: proc.stderr, storeKind: line.store };
  } catch {
    await proc.exited;
    return { started: false, stderr: proc.stderr };
  } finally {
    await proc.stop();
  }
}

describe("store.url without a password in the config", () => {
  it("the server really demands one: without it the start fails with the server's refusal", async () => {
    const out = await startWith({ url: storeUrl }, baseEnv());
    expect(out.started).toBe(false);
    expect(out.stderr).toMatch(/password authentication failed|password.*required|SASL/i);
  });

  it("takes it from store.password: env:NAME", async () => {
    const out = await startWith({ url: storeUrl, password: "env:GATEHOUSE_STORE_PASSWORD" }, baseEnv({ GATEHOUSE_STORE_PASSWORD: PASSWORD }));
    expect(out).toMatchObject({ started: true, storeKind: "postgres" });
  });

  it("takes it from store.password: file:PATH (a trailing newline is not part of it)", async () => {
    const secret = join(tempDir(), "store-password");
    writeFileSync(secret, `${PASSWORD}\n`, { mode: 0o600 });
    const out = await startWith({ url: storeUrl, password: `file:${secret}` }, baseEnv());
    expect(out).toMatchObject({ started: true, storeKind: "postgres" });
  });

  it("takes it from PGPASSWORD, as libpq does", async () => {
    const out = await startWith({ url: storeUrl }, baseEnv({ PGPASSWORD: PASSWORD }));
    expect(out).toMatchObject({ started: true, storeKind: "postgres" });
  });

  it("a reference that cannot be resolved stops the start naming the key", async () => {
    const unset = await startWith({ url: storeUrl, password: "env:GATEHOUSE_NO_SUCH_VARIABLE" }, baseEnv());
    expect(unset.started).toBe(false);
    expect(unset.stderr).toContain("store.password: the environment variable GATEHOUSE_NO_SUCH_VARIABLE is not set");
    const missing = await startWith({ url: storeUrl, password: "file:/nonexistent/store-password" }, baseEnv());
    expect(missing.started).toBe(false);
    expect(missing.stderr).toContain("store.password: cannot read /nonexistent/store-password");
  });

  it("config check refuses a literal password and one without store.url", async () => {
    const literal = writeConfig({ url: storeUrl, password: PASSWORD });
    const out = await runCli(["config", "check", literal.file], { cwd: literal.dir });
    expect(out.code).toBe(1);
    expect(out.stderr).toContain('store.password: expected "env:NAME" or "file:PATH"');
    const alone = writeConfig({ password: "env:X" });
    const out2 = await runCli(["config", "check", alone.file], { cwd: alone.dir });
    expect(out2.code).toBe(1);
    expect(out2.stderr).toContain("store.password: only used with store.url");
  });
});

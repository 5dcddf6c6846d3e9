import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sessionsCommand } from "../src/cli/sessions-command.js";
import { UsageError } from "../src/cli/command.js";
import { validateConfig } from "../src/config/load.js";
import { startGateway, type Gateway } from "../src/gateway.js";
import { createLogger } from "../src/logger.js";
import { createStoreDatabase, type StoreDatabase } from "./support/store-database.js";

// A bad query parameter is the caller's mistake (400 naming it), not the store's (503): the
// gateway runs with a real store, so a 503 here would mean the check still ran inside the
// store-error wrapper.

let gateway: Gateway;
let database: StoreDatabase;
let dir: string;
let adminToken: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "gatehouse-api-params-"));
  database = await createStoreDatabase();
  const quiet = new Writable({ write: (_chunk, _encoding, done) => done() });
  gateway = await startGateway(validateConfig({ dataDir: join(dir, "data"), listen: { api: "127.0.0.1:0" }, store: { url: database.url() } }), {
    logger: createLogger("warn", quiet),
    onAdminTokenGenerated: (token) => (adminToken = token),
  });
});

afterAll(async () => {
  await gateway?.close();
  await database?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function get(path: string): Promise<{ status: number; body: { error?: { code: string; message: string } } }> {
  const response = await fetch(`${gateway.apiUrl}${path}`, { headers: { Authorization: `Bearer ${adminToken}` } });
  return { status: response.status, body: (await response.json()) as { error?: { code: string; message: string } } };
}

describe("GET /api/v1/sessions parameters", () => {
  it.each([
    ["limit=5000", "limit"],
    ["limit=0", "limit"],
    ["limit=ten", "limit"],
    ["since=yesterday", "since"],
    ["until=soon", "until"],
  ])("%s is a 400 naming %s", async (query, parameter) => {
    const { status, body } = await get(`/api/v1/sessions?${query}`);
    expect(status).toBe(400);
    expect(body.error?.code).toBe("bad_request");
    expect(body.error?.message).toMatch(new RegExp(`^${parameter}: expected`));
  });

  it.each(["limit=1000", "since=2026-11-24T07:00:00Z", "since=1764000000000000", "since=24h", "since=7d&until=1m"])("%s is answered", async (query) => {
    const { status } = await get(`/api/v1/sessions?${query}`);
    expect(status).toBe(200);
  });

  it("the evidence page's limit is checked too", async () => {
    const { status, body } = await get("/api/v1/evidence?limit=-3");
    expect(status).toBe(400);
    expect(body.error?.message).toMatch(/^limit: /);
  });
});

describe("gatehouse sessions list", () => {
  const run = (argv: string[]) => {
    let stdout = "";
    const out = new Writable({ write: (chunk: Buffer, _encoding, done) => ((stdout += chunk.toString()), done()) });
    const env = { GATEHOUSE_GATEWAY_URL: gateway.apiUrl, GATEHOUSE_ADMIN_TOKEN: adminToken };
    return sessionsCommand({ argv, stdout: out, stderr: out, env }).then((code) => ({ code, stdout }));
  };

  it("names the option of a bad --limit or --since before asking the gateway", async () => {
    await expect(run(["list", "--limit", "5000"])).rejects.toThrow(new UsageError('--limit: expected an integer from 1 to 1000, got "5000"'));
    await expect(run(["list", "--since", "yesterday"])).rejects.toThrow(/^--since: expected .*duration ago/);
  });

  it("lists with a relative --since, and --help gives the limit's range", async () => {
    expect((await run(["list", "--since", "7d", "--json"])).code).toBe(0);
    expect((await run(["list", "--help"])).stdout).toMatch(/--limit N .*1 to 1000/);
  });
});

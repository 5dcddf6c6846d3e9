import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import pg from "pg";
import { type Connector } from "@gatehouse/connector";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { identitiesCommand } from "../src/cli/identities-command.js";
import { keysCommand } from "../src/cli/keys-command.js";
import { verifyCommand } from "../src/cli/verify-command.js";
import { validateConfig } from "../src/config/load.js";
import { readSigningKey } from "../src/evidence/signing.js";
import { AccessKeys } from "../src/identity/access-keys.js";
import { followStoreChanges } from "../src/identity/store-changes.js";
import { startGateway, type Gateway } from "../src/gateway.js";
import { createLogger } from "../src/logger.js";
import { jsonLogSink } from "./support/json-logs.js";
import { createStoreDatabase, type StoreDatabase } from "./support/store-database.js";
import { startTestConnector } from "./support/test-connector.js";

// Several gateways, one store (issue 15): gateways A and B in this process, each with its own data
// directory (journal, seal key), sharing one Postgres store; a real connector on each, the local
// Postgres as the resource, node-postgres as the client (SCRAM over loopback, so a login uses the
// keys the gateway holds in memory). What an operator relies on: a key made or revoked through
// one gateway, or an identity disabled there, applies on the other within seconds; a session
// sealed by A verifies through B; a retired seal key still verifies, and its gateway rotates.
// B runs as a login role in the restricted gatehouse_gateway role (docs/evidence.md), so what it
// does here is what the role's grants allow. The tests run in order.

const POSTGRES = { host: "127.0.0.1", port: 5432 };
const CONNECTOR_TOKEN = "multi-gateway-test-token";
const ADMIN_TOKEN = "multi-gateway-admin-token";
const quiet = new Writable({ write: (_chunk, _encoding, done) => done() });

let dir: string;
let database: StoreDatabase;
/** B's login role: a member of gatehouse_gateway, nothing more. */
const restrictedRole = `gatehouse_mgw_${process.pid}_${Date.now() % 100_000}`;
const gateways: Record<"a" | "b", Gateway> = {} as Record<"a" | "b", Gateway>;
const connectors: Connector[] = [];
const logs: Record<"a" | "b", Array<Record<string, unknown>>> = { a: [], b: [] };
/** Propagation latencies measured, printed at the end. */
const measured: string[] = [];

function config(name: "a" | "b") {
  return validateConfig({
    dataDir: join(dir, name),
    store: { url: name === "a" ? database.url() : restrictedUrl(), maxConnections: 3 },
    listen: { api: "127.0.0.1:0", postgres: "127.0.0.1:0" },
    api: { adminTokenSha256: createHash("sha256").update(ADMIN_TOKEN).digest("hex") },
    connectors: [{ name: "dc1", tokenSha256: createHash("sha256").update(CONNECTOR_TOKEN).digest("hex") }],
    connections: [{ name: "pg", protocol: "postgres", connector: "dc1", target: { ...POSTGRES, database: "postgres" }, credential: { user: "postgres" }, allow: [{ identity: "agent" }] }],
  });
}

function restrictedUrl(): string {
  const url = new URL(database.url());
  url.username = restrictedRole;
  url.password = "";
  return url.toString();
}

async function admin(sql: string, url = database.url()): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

async function start(name: "a" | "b"): Promise<Gateway> {
  gateways[name] = await startGateway(config(name), { logger: createLogger("info", jsonLogSink(logs[name])), processMetrics: false });
  return gateways[name];
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "gatehouse-multi-gateway-"));
  database = await createStoreDatabase("gatehouse_multi");
  // A runs as the store's owner and migrates; B as the restricted role.
  await start("a");
  await admin(`create role ${restrictedRole} login in role gatehouse_gateway`);
  await start("b");
  expect(await gateways.b.store.sql.query("select current_user as u")).toEqual([{ u: restrictedRole }]);
  for (const name of ["a", "b"] as const) connectors.push(await startTestConnector(gateways[name].apiUrl, CONNECTOR_TOKEN, `${POSTGRES.host}:${POSTGRES.port}`, logs[name]));
}, 60_000);

afterAll(async () => {
  if (measured.length > 0) console.log(`propagation across gateways: ${measured.join("; ")}`);
  await Promise.all(connectors.map((c) => c.stop()));
  await Promise.all(Object.values(gateways).map((g) => g.close({ graceMs: 0 })));
  await database?.drop();
  await admin(`drop role if exists ${restrictedRole}`, new URL("/postgres", database.url()).toString()).catch(() => undefined);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function api<T>(gateway: Gateway, method: string, path: string, body?: unknown): Promise<T> {
  const response = await fetch(`${gateway.apiUrl}${path}`, {
    method,
    headers: { Authorization: `Bearer ${ADMIN_TOKEN}`, ...(body === undefined ? {} : { "Content-Type": "application/json" }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const answer = (await response.json()) as T;
  if (!response.ok) throw new Error(`${method} ${path}: ${response.status} ${JSON.stringify(answer)}`);
  return answer;
}

interface PgError extends Error {
  code?: string;
}

/** One login and `select 1` through a gateway: undefined when it worked, else the SQLSTATE. */
async function login(gateway: Gateway, password: string, application = "multi-gateway"): Promise<string | undefined> {
  const client = new pg.Client({ ...gateway.postgres!, user: "agent", password, database: "pg", ssl: false, application_name: application, connectionTimeoutMillis: 10_000 });
  client.on("error", () => undefined);
  try {
    await client.connect();
    const { rows } = await client.query("select 1 as one");
    expect(rows).toEqual([{ one: 1 }]);
    return undefined;
  } catch (error) {
    return (error as PgError).code ?? (error as Error).message;
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Polls `attempt` until it returns `wanted`, for at most 3 s; the time it took, in ms. */
async function within3s(attempt: () => Promise<string | undefined>, wanted: string | undefined): Promise<number> {
  const started = performance.now();
  let last: string | undefined;
  for (;;) {
    last = await attempt();
    const ms = performance.now() - started;
    if (last === wanted) return ms;
    if (ms > 3_000) throw new Error(`still ${last ?? "accepted"} after ${ms.toFixed(0)} ms (wanted ${wanted ?? "accepted"})`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

async function cli(command: typeof keysCommand, argv: string[], via: Gateway) {
  let stdout = "";
  let stderr = "";
  const out = new Writable({ write: (chunk: Buffer, _encoding, done) => ((stdout += chunk.toString()), done()) });
  const err = new Writable({ write: (chunk: Buffer, _encoding, done) => ((stderr += chunk.toString()), done()) });
  const code = await command({ argv, stdout: out, stderr: err, env: { GATEHOUSE_GATEWAY_URL: via.apiUrl, GATEHOUSE_ADMIN_TOKEN: ADMIN_TOKEN } });
  return { code, stdout, stderr };
}

/** Until the store holds every session of `application` ended and sealed. */
async function sealedIn(application: string, count: number): Promise<void> {
  await expect
    .poll(async () => (await gateways.b.store.sessions.list({ limit: 1000 })).filter((s) => s.clientApplication === application && s.sealSignature !== null).length, { timeout: 10_000 })
    .toBe(count);
}

let firstKey: { id: string; key: string };
let secondKey: { id: string; key: string };

describe("several gateways, one store", () => {
  it("registers each gateway's seal key in the store", async () => {
    const listed = await api<{ sealKeys: Array<{ keyId: string; current: boolean; retiredAt: string | null }> }>(gateways.a, "GET", "/api/v1/seal-keys");
    const ids = [readSigningKey(join(dir, "a"))!.keyId, readSigningKey(join(dir, "b"))!.keyId];
    expect(listed.sealKeys.map((k) => k.keyId).sort()).toEqual([...ids].sort());
    expect(listed.sealKeys.find((k) => k.current)?.keyId).toBe(ids[0]);
    // B registered its key as the restricted role, and listens for changes: nothing to warn about.
    expect(logs.b.filter((l) => (l.level as number) >= 40).map((l) => l.msg)).toEqual([]);
  });

  it("a key created through A's API logs in through B within 3 s", async () => {
    firstKey = await api(gateways.a, "POST", "/api/v1/keys", { identity: "agent" });
    // B holds the identity's keys in memory (the first key, used once).
    expect(await login(gateways.b, firstKey.key)).toBeUndefined();
    // A second key, made through A: B learns of it by the store's notice, not by a login's re-read
    // (SCRAM announces the keys it knows before the client proves anything).
    const created = performance.now();
    secondKey = await api(gateways.a, "POST", "/api/v1/keys", { identity: "agent" });
    const ms = await within3s(() => login(gateways.b, secondKey.key), undefined);
    measured.push(`key created on A, usable on B after ${(performance.now() - created).toFixed(0)} ms (first working login ${ms.toFixed(0)} ms after the API answered)`);
  });

  it("a key revoked through B is refused by A within 3 s", async () => {
    expect(await login(gateways.a, secondKey.key)).toBeUndefined();
    const revoked = performance.now();
    await api(gateways.b, "DELETE", `/api/v1/keys/${secondKey.id}`);
    await within3s(() => login(gateways.a, secondKey.key), "28P01");
    measured.push(`key revoked on B, refused on A after ${(performance.now() - revoked).toFixed(0)} ms`);
    // The other key still works on both.
    expect(await login(gateways.a, firstKey.key)).toBeUndefined();
  });

  it("an identity disabled through A is refused by B within 3 s, and enabled again", async () => {
    expect(await login(gateways.b, firstKey.key)).toBeUndefined();
    const disabled = performance.now();
    const listed = await cli(identitiesCommand, ["disable", "agent"], gateways.a);
    expect(listed).toMatchObject({ code: 0, stdout: "disabled agent\n" });
    await within3s(() => login(gateways.b, firstKey.key), "28000");
    measured.push(`identity disabled on A, refused on B after ${(performance.now() - disabled).toFixed(0)} ms`);
    expect((await cli(identitiesCommand, ["list"], gateways.b)).stdout).toMatch(/^IDENTITY\s+DISABLED\s+CHANGED\nagent\s+yes\s+\d{4}-/);
    // Refused on A too, as a policy denial recorded with its reason.
    expect(await login(gateways.a, firstKey.key)).toBe("28000");
    await cli(identitiesCommand, ["enable", "agent"], gateways.b);
    await within3s(() => login(gateways.a, firstKey.key), undefined);
  });

  it("a gateway whose listening connection was cut still applies changes within 3 s", async () => {
    const key = await api<{ id: string; key: string }>(gateways.a, "POST", "/api/v1/keys", { identity: "agent" });
    await within3s(() => login(gateways.b, key.key), undefined);
    // Both gateways' LISTEN connections are ended by the server (as a network cut or a restart of
    // the store would); the driver reconnects, and the change counter is polled meanwhile.
    const admin = new pg.Client({ connectionString: database.url() });
    await admin.connect();
    try {
      const { rows } = await admin.query("select pg_terminate_backend(pid) as ended from pg_stat_activity where datname = current_database() and query ilike 'listen%'");
      expect(rows.length).toBe(2);
    } finally {
      await admin.end();
    }
    const revoked = performance.now();
    await api(gateways.a, "DELETE", `/api/v1/keys/${key.id}`);
    await within3s(() => login(gateways.b, key.key), "28P01");
    measured.push(`with the LISTEN connections cut: revoked on A, refused on B after ${(performance.now() - revoked).toFixed(0)} ms`);
  });

  it("without notices at all, the change counter alone applies a revocation within the poll interval", async () => {
    // B's store, as a follower that cannot LISTEN sees it: only the counter is read (every 250 ms).
    const store = gateways.b.store;
    const keys = new AccessKeys(store, () => Date.now() * 1000);
    const deaf = { ...store, changes: { version: () => store.changes.version(), listen: () => Promise.reject(new Error("LISTEN refused")) } };
    const follower = await followStoreChanges(deaf, { accessKeys: keys, sshKeys: { invalidate: () => undefined }, identities: { load: async () => undefined }, sealKeyId: "none" }, { logger: createLogger("fatal", quiet), pollMs: 250 });
    try {
      const key = await api<{ id: string; key: string }>(gateways.a, "POST", "/api/v1/keys", { identity: "agent" });
      expect(await keys.verify("agent", key.key)).toMatchObject({ ok: true });
      const revoked = performance.now();
      await api(gateways.a, "DELETE", `/api/v1/keys/${key.id}`);
      await within3s(async () => ((await keys.verify("agent", key.key)).ok ? undefined : "refused"), "refused");
      measured.push(`no notices, counter polled every 250 ms: revoked on A, refused after ${(performance.now() - revoked).toFixed(0)} ms`);
    } finally {
      await follower.close();
      await keys.close();
    }
  });

  it("a session sealed by A verifies through B's API, and with the store's keys alone", async () => {
    expect(await login(gateways.a, firstKey.key, "sealed-by-a")).toBeUndefined();
    await sealedIn("sealed-by-a", 1);
    // Through B's API, B's data directory (B's key only on disk): A's key comes from the store.
    const throughB = await cli(verifyCommand, ["--all", "--gateway", gateways.b.apiUrl, "--data-dir", join(dir, "b")], gateways.b);
    expect(throughB.stderr).toBe("");
    expect(throughB.code).toBe(0);
    expect(throughB.stdout).toMatch(/sessions verified from the gateway's API .*: (\d+) ok.*, 0 failed; \d+ checkpoints of 2 gateways checked/);
    // The store directly, no data directory at all: every key from the store.
    const direct = await cli(verifyCommand, ["--all", "--json", "--store-url", database.url(), "--data-dir", join(dir, "nowhere")], gateways.b);
    expect(direct.code).toBe(0);
    const report = JSON.parse(direct.stdout) as { keys: Array<{ keyId: string; from: string }>; failures: unknown[] };
    expect(report.failures).toEqual([]);
    expect(report.keys.map((k) => k.from)).toEqual(["store", "store"]);
    // Pinned to B's key only, A's seals are not taken on the store's word.
    const pinned = await cli(keysCommand, ["signing", "--data-dir", join(dir, "b")], gateways.b);
    const pemFile = join(dir, "b-public.pem");
    (await import("node:fs")).writeFileSync(pemFile, pinned.stdout);
    const strict = await cli(verifyCommand, ["--all", "--store-url", database.url(), "--public-key", pemFile], gateways.b);
    expect(strict.code).toBe(1);
    expect(strict.stdout).toContain("unknown_key");
  });

  it("retiring A's key keeps its sessions verifiable; A seals with a new key after a restart", async () => {
    const oldKey = readSigningKey(join(dir, "a"))!.keyId;
    const retired = await cli(keysCommand, ["retire-seal", oldKey], gateways.b);
    expect(retired).toMatchObject({ code: 0 });
    expect(retired.stdout).toMatch(new RegExp(`^retired ${oldKey} at \\d{4}-`));
    const listing = (await cli(keysCommand, ["seal-keys"], gateways.b)).stdout;
    expect(listing).toMatch(new RegExp(`^KEY ID\\s+GATEWAY\\s+CREATED\\s+RETIRED`));
    expect(listing).toMatch(new RegExp(`\\n${oldKey}\\s+\\S+\\s+\\d{4}-\\d\\d-\\d\\dT[\\d:]+\\s+\\d{4}-\\d\\d-\\d\\dT[\\d:]+\\s*\\n`));
    // A running gateway says so, and goes on sealing with it until it restarts.
    await expect.poll(() => logs.a.some((l) => l.msg === "this gateway's seal key was retired; it seals with it until its next start, which makes a new key"), { timeout: 5_000 }).toBe(true);
    expect((await cli(verifyCommand, ["--all", "--store-url", database.url(), "--data-dir", join(dir, "nowhere")], gateways.b)).code).toBe(0);

    // Restarted, A seals with a new key; the retired one is kept aside, never used again.
    await gateways.a.close({ graceMs: 0 });
    await start("a");
    const newKey = readSigningKey(join(dir, "a"))!.keyId;
    expect(newKey).not.toBe(oldKey);
    expect(existsSync(join(dir, "a", `signing-key.${oldKey}.retired.pem`))).toBe(true);
    expect(logs.a.some((l) => l.msg === "the seal key was retired; sealing with a new key from now on (sessions sealed with the old one still verify)")).toBe(true);
    // A refused login is a session too: sealed with the new key.
    expect(await login(gateways.a, "ghk_wrong", "after-rotation")).toBe("28P01");
    await sealedIn("after-rotation", 1);
    const [after] = (await gateways.b.store.sessions.list({ limit: 1000 })).filter((s) => s.clientApplication === "after-rotation");
    expect(after!.sealSignature).toMatch(new RegExp(`^ed25519:${newKey}:`));
    const keys = JSON.parse((await cli(keysCommand, ["seal-keys", "--json"], gateways.a)).stdout) as Array<{ keyId: string; retiredAt: string | null; current: boolean }>;
    expect(keys.map((k) => [k.keyId, k.retiredAt === null, k.current]).sort()).toEqual(
      [
        [oldKey, false, false],
        [readSigningKey(join(dir, "b"))!.keyId, true, false],
        [newKey, true, true],
      ].sort(),
    );
    // Everything verifies: A's sessions under both keys, B's, through either gateway.
    for (const via of [gateways.a, gateways.b]) {
      const result = await cli(verifyCommand, ["--all", "--gateway", via.apiUrl, "--data-dir", join(dir, "nowhere")], via);
      expect(result.stderr).toBe("");
      expect(result.code).toBe(0);
    }
  });
});

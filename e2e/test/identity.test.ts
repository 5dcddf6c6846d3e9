import { spawn } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPostgresServer, type PostgresServer, type TestDatabase, postgresConnection } from "../lib/postgres-server.js";
import { installGatehouse, newToken, runCli, startConnectorProcess, startGatewayProcess, tempDir, type Proc, type RunningGateway } from "../lib/processes.js";
// The gateway's own tests' OpenID provider (panva's oidc-provider over HTTPS), shared rather than copied.
import { AUDIENCE, OTHER_RESOURCE, startTestIssuer as startIssuer, type TestIssuer as Issuer } from "../../packages/gateway/test/support/oidc-issuer.js";

// Agents as their own OIDC identities, with real processes end to end: an
// OpenID provider (oidc-provider) issues JWT access tokens with the client
// credentials grant, `gatehouse token` fetches one, psql presents it as its
// password to `gatehouse gateway` over TLS, `gatehouse connector` reaches the
// real Postgres, and the record names the identity and its groups. Refused
// tokens and policy denials are in the record with their reasons; the policy
// changes with SIGHUP, and a broken config on SIGHUP leaves the old one.

interface SessionJson {
  id: string;
  identity: { name: string; issuer?: string | null; subject?: string | null; groups?: string[]; method?: string | null };
  connection: string;
  clientApplication: string | null;
  endedUs: number | null;
  endReason: string | null;
}
interface EventJson {
  kind: string;
  command: string | null;
  outcome: string | null;
  details: Record<string, unknown> | null;
}

let issuer: Issuer;
let foreign: Issuer;
let server: PostgresServer;
let db: TestDatabase;
let gateway: RunningGateway;
let connector: Proc;
let listen: { host: string; port: number };
/** Where scripts/install.sh put `gatehouse`, and an agent's working directory outside the checkout. */
let gatehouseBin: string;
let agentCwd: string;
const dc1 = newToken();

const CLIENTS = [
  { id: "agent-sre", secret: "sre-secret", groups: ["sre", "db-readers"] },
  { id: "agent-dev", secret: "dev-secret", groups: ["dev"] },
  { id: "agent-temp", secret: "temp-secret" },
  { id: "agent-off", secret: "off-secret", groups: ["sre"] },
  { id: "agent-brief", secret: "brief-secret", groups: ["sre"], ttlSeconds: 2 },
];

/** The gateway's config; `extraAllow` adds entries to connection `app`. */
function config(extraAllow: unknown[] = []): Record<string, unknown> {
  return {
    listen: { api: "127.0.0.1:0", postgres: "127.0.0.1:0" },
    tunnel: { pingIntervalMs: 1000, deadAfterMs: 3000 },
    identity: {
      oidc: { issuer: issuer.issuer, audience: AUDIENCE, ca: issuer.caFile, clockSkewSeconds: 0, jwksRefreshCooldownMs: 0 },
      disabled: ["agent-off"],
    },
    connectors: [{ name: "dc1", tokenSha256: dc1.sha256 }],
    connections: [
      postgresConnection(server, db.name, { allow: [{ group: "sre" }, { identity: "agent-temp", until: "2020-01-01T00:00:00Z" }, ...extraAllow] }),
    ],
  };
}

beforeAll(async () => {
  [issuer, foreign, server] = await Promise.all([startIssuer(CLIENTS), startIssuer([{ id: "agent-sre", secret: "x", groups: ["sre"] }]), startPostgresServer()]);
  db = await server.createDatabase({ orders: 10 });
  gatehouseBin = installGatehouse();
  agentCwd = tempDir("gatehouse-agent-");
  gateway = await startGatewayProcess(config(), undefined, 90_000);
  listen = gateway.proc.lines.find((l) => l.msg === "gateway started")!.postgres as typeof listen;
  connector = await startConnectorProcess({
    gateway: gateway.apiUrl,
    name: "dc1",
    token: dc1.token,
    allow: `${server.host}:${server.port}`,
    ...(server.password === null ? {} : { extra: { GATEHOUSE_E2E_PG_PASSWORD: server.password } }),
  });
  await gateway.proc.waitFor((l) => l.msg === "connector connected");
});

afterAll(async () => {
  await connector?.stop();
  await gateway?.proc.stop();
  await db?.drop();
  await server?.stop();
  await Promise.all([issuer?.close(), foreign?.close()]);
});

/** Environment of an agent's shell: its client credentials, the provider, and no PG* leftovers. */
function agentEnv(client: string, extra: Record<string, string> = {}): Record<string, string> {
  const secret = CLIENTS.find((c) => c.id === client)?.secret ?? "x";
  return {
    PATH: `${gatehouseBin}:${process.env.PATH ?? "/usr/bin:/bin"}`,
    HOME: gateway.dir,
    XDG_CACHE_HOME: join(gateway.dir, "agent-cache", client),
    LANG: "C.UTF-8",
    PGCONNECT_TIMEOUT: "10",
    GATEHOUSE_OIDC_ISSUER: issuer.issuer,
    GATEHOUSE_OIDC_CA: issuer.caFile,
    GATEHOUSE_CLIENT_ID: client,
    GATEHOUSE_CLIENT_SECRET: secret,
    ...extra,
  };
}

function sh(script: string, env: Record<string, string>, timeoutMs = 60_000): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", ["-c", script], { cwd: agentCwd, env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (t: string) => (stdout += t));
    child.stderr.setEncoding("utf8").on("data", (t: string) => (stderr += t));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("error", reject);
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

let attempts = 0;

/**
 * `PGPASSWORD=$(gatehouse token …) psql …` exactly as the docs write it, with the `gatehouse` that
 * scripts/install.sh installed, run from a directory outside the checkout; `password` replaces the token when given.
 */
async function psqlAs(client: string, sql: string, options: { password?: string; tokenArgs?: string; user?: string; application?: string } = {}) {
  const application = options.application ?? `e2e-identity-${++attempts}`;
  const conninfo = `host=${listen.host} port=${listen.port} user=${options.user ?? client} dbname=app sslmode=require application_name=${application}`;
  const password = options.password === undefined ? `"$(gatehouse token ${options.tokenArgs ?? ""})"` : `'${options.password}'`;
  const out = await sh(`PGPASSWORD=${password} psql -X -At "${conninfo}" -c "${sql}"`, agentEnv(client));
  return { ...out, application };
}

async function api<T>(path: string): Promise<T> {
  const response = await fetch(`${gateway.apiUrl}${path}`, { headers: { Authorization: `Bearer ${gateway.adminToken}` } });
  if (!response.ok) throw new Error(`GET ${path}: ${response.status} ${await response.text()}`);
  return (await response.json()) as T;
}

/** The ended session of one attempt (by its application_name), with its events. */
async function sessionOf(application: string): Promise<{ session: SessionJson; events: EventJson[] }> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const { sessions } = await api<{ sessions: SessionJson[] }>("/api/v1/sessions?limit=1000");
    const found = sessions.find((s) => s.clientApplication === application && s.endedUs !== null);
    if (found) return api(`/api/v1/sessions/${found.id}`);
    if (Date.now() > deadline) throw new Error(`no ended session for ${application}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Waits until the session of `application` is open (started, not ended). */
async function openSession(application: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const { sessions } = await api<{ sessions: SessionJson[] }>("/api/v1/sessions?limit=1000");
    if (sessions.some((s) => s.clientApplication === application && s.endedUs === null)) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`no open session for ${application}`);
}

async function token(client: string, args: string[] = []): Promise<string> {
  const out = await runCli(["token", "--no-cache", ...args], { cwd: gateway.dir, env: agentEnv(client) });
  expect(out.stderr).toBe("");
  expect(out.code).toBe(0);
  return out.stdout.trim();
}

async function refusedWith(result: { code: number | null; stderr: string; application: string }, user: string, reason: string) {
  expect(result.code).toBe(2);
  expect(result.stderr).toContain(`FATAL:  password authentication failed for user "${user}"`);
  const recorded = await sessionOf(result.application);
  expect(recorded.session).toMatchObject({ identity: { name: user }, connection: "app", endReason: "auth_failed" });
  expect(recorded.events).toEqual([expect.objectContaining({ kind: "auth_failed", outcome: "error", details: expect.objectContaining({ reason, method: "oidc" }) })]);
  return recorded;
}

describe("OIDC identities through the gateway", () => {
  it("PGPASSWORD=$(gatehouse token) psql works, and the session names the identity, issuer, subject and groups", async () => {
    const out = await psqlAs("agent-sre", "select count(*) from orders");
    expect(out.stderr).toBe("");
    expect(out).toMatchObject({ code: 0, stdout: "10\n" });
    const recorded = await sessionOf(out.application);
    expect(recorded.session).toMatchObject({
      identity: { name: "agent-sre", method: "oidc", issuer: issuer.issuer, subject: "agent-sre", groups: ["sre", "db-readers"] },
      connection: "app",
      endReason: "client_closed",
    });
    expect(recorded.events.map((e) => e.command)).toContain("select count(*) from orders");

    // The same, as a person reads it.
    const shown = await runCli(["sessions", "show", recorded.session.id], { cwd: gateway.dir });
    expect(shown.stdout).toContain(`identity    agent-sre (oidc) groups: sre, db-readers issuer: ${issuer.issuer} subject: agent-sre`);
  });

  it("reuses the cached token across connections", async () => {
    const first = await psqlAs("agent-sre", "select 1");
    const second = await psqlAs("agent-sre", "select 2");
    expect([first.code, second.code]).toEqual([0, 0]);
    const cached = await runCli(["token", "--json"], { cwd: gateway.dir, env: agentEnv("agent-sre") });
    expect(JSON.parse(cached.stdout)).toMatchObject({ cached: true });
  });

  it("refuses a token for another audience", async () => {
    const out = await psqlAs("agent-sre", "select 1", { tokenArgs: `--no-cache --resource ${OTHER_RESOURCE}` });
    const recorded = await refusedWith(out, "agent-sre", "wrong_audience");
    expect(recorded.events[0]!.details).toMatchObject({ claimed: { audience: "other-api", issuer: issuer.issuer } });
  });

  it("refuses an expired token", async () => {
    const brief = await token("agent-brief");
    const exp = (JSON.parse(Buffer.from(brief.split(".")[1]!, "base64url").toString()) as { exp: number }).exp;
    await new Promise((r) => setTimeout(r, Math.max(0, exp * 1000 - Date.now()) + 1100));
    const out = await psqlAs("agent-brief", "select 1", { password: brief });
    const recorded = await refusedWith(out, "agent-brief", "expired");
    expect(JSON.stringify(recorded)).not.toContain(brief.split(".")[2]!);
  });

  it("refuses a tampered token, one from another issuer, and one naming another identity", async () => {
    const [header, payload, signature] = (await token("agent-dev")).split(".") as [string, string, string];
    const claims = JSON.parse(Buffer.from(payload, "base64url").toString()) as Record<string, unknown>;
    const forged = `${header}.${Buffer.from(JSON.stringify({ ...claims, sub: "agent-sre", groups: ["sre"] })).toString("base64url")}.${signature}`;
    await refusedWith(await psqlAs("agent-sre", "select 1", { password: forged }), "agent-sre", "bad_signature");

    const elsewhere = await runCli(["token", "--no-cache", "--issuer", foreign.issuer, "--ca", foreign.caFile, "--client-secret", "x"], { cwd: gateway.dir, env: agentEnv("agent-sre") });
    expect(elsewhere.code).toBe(0);
    const recorded = await refusedWith(await psqlAs("agent-sre", "select 1", { password: elsewhere.stdout.trim() }), "agent-sre", "unknown_issuer");
    expect(recorded.events[0]!.details).toMatchObject({ claimed: { issuer: foreign.issuer } });

    await refusedWith(await psqlAs("agent-sre", "select 1", { password: await token("agent-dev") }), "agent-sre", "name_mismatch");
  });

  it("accepts tokens signed with the issuer's new key after a rotation, without a restart", async () => {
    await issuer.rotateKeys();
    const out = await psqlAs("agent-sre", "select 'rotated'", { tokenArgs: "--no-cache" });
    expect(out).toMatchObject({ code: 0, stdout: "rotated\n" });
    expect((await sessionOf(out.application)).session.identity).toMatchObject({ name: "agent-sre", method: "oidc" });
  });
});

describe("policy for OIDC identities", () => {
  async function denied(client: string, message: string, reason: string) {
    const out = await psqlAs(client, "select 1");
    expect(out.code).toBe(2);
    expect(out.stderr).toContain(`FATAL:  ${message}`);
    const recorded = await sessionOf(out.application);
    expect(recorded.session).toMatchObject({ identity: { name: client, method: "oidc" }, endReason: "denied" });
    expect(recorded.events[0]).toMatchObject({ kind: "denied", details: { reason } });
  }

  it("allows by group (above), denies an identity with none of the allowed groups", async () => {
    await denied("agent-dev", 'identity "agent-dev" is not allowed to use connection "app"', "not_allowed");
  });

  it("denies a disabled identity although its group is allowed", async () => {
    await denied("agent-off", 'identity "agent-off" is disabled', "identity_disabled");
  });

  it("denies an identity whose entry's until is in the past", async () => {
    await denied("agent-temp", 'identity "agent-temp" is not allowed to use connection "app" (its access ended at 2020-01-01T00:00:00Z)', "grant_expired");
  });
});

describe("config reload on SIGHUP", () => {
  const file = () => join(gateway.dir, "gatehouse.yaml");
  const hangup = async (msg: string) => {
    const seen = gateway.proc.lines.length;
    gateway.proc.child.kill("SIGHUP");
    return gateway.proc.waitFor((l) => l.msg === msg && gateway.proc.lines.indexOf(l) >= seen);
  };

  it("adds an identity: new sessions see it, an open session goes on", async () => {
    expect((await psqlAs("agent-dev", "select 1")).code).toBe(2);

    const application = `e2e-identity-open-${++attempts}`;
    const open = psqlAs("agent-sre", "select pg_sleep(2), 'survived'", { application });
    await openSession(application);
    writeFileSync(file(), JSON.stringify(config([{ identity: "agent-dev" }]), null, 2));
    const reloaded = await hangup("config reloaded");
    expect(reloaded.restartNeeded).toEqual([]);

    const dev = await psqlAs("agent-dev", "select current_database()");
    expect(dev).toMatchObject({ code: 0, stdout: `${db.name}\n` });
    expect((await sessionOf(dev.application)).session).toMatchObject({ identity: { name: "agent-dev", groups: ["dev"] }, endReason: "client_closed" });
    expect(await open).toMatchObject({ code: 0, stdout: "|survived\n" });
  });

  it("rejects a broken config, logging every problem, and keeps the running one", async () => {
    const broken = config([{ identity: "agent-temp", until: "next tuesday" }]);
    (broken.identity as { oidc: Record<string, unknown> }).oidc.audiance = "typo";
    writeFileSync(file(), JSON.stringify(broken, null, 2));
    const rejected = await hangup("config reload rejected; the running config stays");
    expect(rejected.problems).toEqual(
      expect.arrayContaining(["identity.oidc.audiance: unknown key", "connections[0].allow[2].until: expected an ISO 8601 date-time with a zone, like 2026-12-31T00:00:00Z"]),
    );
    expect(gateway.proc.child.exitCode).toBeNull();

    // The config from before the broken file still decides: agent-dev stays allowed.
    expect(await psqlAs("agent-dev", "select 'still'")).toMatchObject({ code: 0, stdout: "still\n" });
    const check = await runCli(["config", "check", file()], { cwd: gateway.dir });
    expect(check.code).toBe(1);
    expect(check.stderr).toContain("identity.oidc.audiance: unknown key");
  });
});

import { spawn } from "node:child_process";
import { chmodSync, closeSync, existsSync, fdatasync, fdatasyncSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { connect, createServer, type Server, type Socket } from "node:net";
import { join } from "node:path";
import pg from "pg";
import { callMeter, cpuMeter, fmt, mapValues, interleavedRounds, loadAverage, perUnitUs, printCpu, printThroughput, ratio, timedReads, type LoadResult, type PathResults } from "../lib/measure.js";
import { mustRun, run } from "../lib/process-tools.js";
import { newToken, runCli, startConnectorProcess, startGatewayProcess, tempDir, type Proc, type RunningGateway } from "@gatehouse/e2e/lib/processes";

// Postgres through gateway + connector (separate processes, embedded store,
// every statement recorded) against the same server directly, and against
// pgbouncer when it is installed, in one run:
//   - pgbench -S -M extended at -c 1 and -c 16: TPS and mean latency
//   - a 200 MB SELECT read by psql: MB/s
//   - 1,000 idle sessions: what they add to the gateway's resident memory
// Prints a table, then a one-line JSON summary last.

const PG = { host: process.env.BENCH_PGHOST ?? "127.0.0.1", port: Number(process.env.BENCH_PGPORT ?? 5432), user: process.env.BENCH_PGUSER ?? "postgres" };
const SECONDS = Number(process.env.BENCH_SECONDS ?? 15);
/** Rounds of the interleaved pgbench runs; each cell reports the run with the median TPS. */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 1);
const SCALE = Number(process.env.BENCH_SCALE ?? 1);
const READ_ROWS = Number(process.env.BENCH_READ_ROWS ?? 200_000); // × 1,000 bytes = 200 MB
const READ_RUNS = Number(process.env.BENCH_READ_RUNS ?? 3);
const IDLE_SESSIONS = Number(process.env.BENCH_IDLE_SESSIONS ?? 1000);
/** recording.mode for the gateways ("strict" or "best-effort"); unset: the gateway's default (strict). */
const RECORDING = process.env.BENCH_RECORDING;
/** pgbench client counts, comma-separated (1 and 16). */
const CLIENTS = (process.env.BENCH_CLIENTS ?? "1,16").split(",").map(Number);
/** Comma-separated subset of pgbench,read,sessions,idle. */
const ONLY = new Set((process.env.BENCH_ONLY ?? "pgbench,read,sessions,idle").split(","));
/**
 * Comma-separated subset of the paths (direct is always run): gateway, gateway-tls, pgbouncer, and
 * tunnel: the same server through a `tcp` connection of the same gateway and connector — the tunnel
 * alone, with no Postgres parsing and no per-statement recording — to tell those costs apart; and
 * gateway-pgstore: a second gateway and connector whose store is a database on the same Postgres
 * server instead of the embedded one, which shows what the embedded store costs; and
 * gateway-pgstore-best-effort: a third gateway and connector like it, recording best-effort, so that
 * strict and best-effort are measured in the same run.
 */
const PATHS = new Set((process.env.BENCH_PATHS ?? "direct,gateway,gateway-tls,tunnel,gateway-pgstore,gateway-pgstore-best-effort,pgbouncer").split(","));
const DATABASE = `gatehouse_bench_${process.pid}`;
const PGSTORE = "gateway, store in Postgres";
const BEST_EFFORT = "gateway, store in Postgres, best-effort";
const IDENTITY = "bench-agent";

interface Endpoint {
  label: string;
  host: string;
  port: number;
  user: string;
  database: string;
  env: Record<string, string>;
  /** Processes on this path whose CPU time is measured (name → pid): the gateway, the connector, pgbouncer. */
  procs?: Record<string, number>;
}


// ---------------------------------------------------------------- helpers



function connArgs(e: Endpoint): string[] {
  return ["-h", e.host, "-p", String(e.port), "-U", e.user];
}

function psql(e: Endpoint, sql: string): Promise<string> {
  return mustRun("psql", [...connArgs(e), "-d", e.database, "-X", "-v", "ON_ERROR_STOP=1", "-Atc", sql], e.env);
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}



function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1]);
  return kb / 1024;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** RSS once it has stayed within 1 MiB for 3 s (at most 30 s of waiting). */
async function settledRss(pid: number): Promise<number> {
  const samples: number[] = [];
  for (let i = 0; i < 60; i++) {
    samples.push(rssMiB(pid));
    const recent = samples.slice(-6);
    if (recent.length === 6 && Math.max(...recent) - Math.min(...recent) < 1) break;
    await sleep(500);
  }
  return samples.at(-1)!;
}

// ---------------------------------------------------------------- pgbench

/** pgbench -S at `clients`: transactions per second, mean latency, CPU µs per transaction. */
async function pgbench(e: Endpoint, clients: number): Promise<LoadResult> {
  const threads = Math.min(clients, 2); // 2 cores
  const cpu = cpuMeter(e);
  const calls = callMeter(e);
  const out = await run("pgbench", [...connArgs(e), "-n", "-S", "-M", "extended", "-c", String(clients), "-j", String(threads), "-T", String(SECONDS), e.database], e.env);
  const tps = Number(/^tps = ([\d.]+)/m.exec(out.stdout)?.[1]);
  const latencyMs = Number(/^latency average = ([\d.]+) ms/m.exec(out.stdout)?.[1]);
  const failed = Number(/^number of failed transactions: (\d+)/m.exec(out.stdout)?.[1] ?? 0);
  const transactions = Number(/^number of transactions actually processed: (\d+)/m.exec(out.stdout)?.[1]);
  if (out.code !== 0 || !Number.isFinite(tps) || !Number.isFinite(latencyMs) || failed > 0) {
    throw new Error(`pgbench through ${e.label} failed (exit ${out.code}):\n${out.stderr}${out.stdout}`);
  }
  const spent = cpu();
  return { perSecond: tps, latencyUs: latencyMs * 1000, ...perUnitUs(spent, transactions, calls()) };
}

// ---------------------------------------------------------------- 200 MB read

/** psql reading READ_ROWS rows of 1,000 bytes (output discarded, as `psql -Atc ... > /dev/null`), READ_RUNS times. */
function bigRead(e: Endpoint): Promise<{ MBps: number; cpuMsPerMB?: Record<string, number> }> {
  const sql = `select repeat('x', 1000) from generate_series(1, ${READ_ROWS})`;
  return timedReads(e, "psql", [...connArgs(e), "-d", e.database, "-X", "-Atc", sql], e.env, READ_RUNS, READ_ROWS * 1000);
}

// ---------------------------------------------------------------- new sessions

interface SessionsResult {
  /** Wall ms per `psql -c 'select 1'` run (a process, a session, a statement), median of the runs. */
  psqlMs: number;
  /** Wall ms per `pg` connect + `select 1` + end in one process, median. */
  pgMs: number;
  /** CPU µs per session of the path's processes (over both loops). */
  cpuUsPerSession?: Record<string, number>;
}

const SESSION_RUNS = Number(process.env.BENCH_SESSION_RUNS ?? 20);

/** What an agent pays for each `psql -c` it runs: SESSION_RUNS psql processes in a row, then as many pg sessions in one process. */
async function newSessions(e: Endpoint): Promise<SessionsResult> {
  const cpu = cpuMeter(e);
  const psqlRuns: number[] = [];
  for (let i = 0; i < SESSION_RUNS; i++) {
    const out = await run("psql", [...connArgs(e), "-d", e.database, "-X", "-Atc", "select 1"], e.env);
    if (out.code !== 0 || out.stdout.trim() !== "1") throw new Error(`psql -c through ${e.label} failed (exit ${out.code}): ${out.stderr}`);
    psqlRuns.push(out.seconds * 1e3);
  }
  const pgRuns: number[] = [];
  for (let i = 0; i < SESSION_RUNS; i++) {
    const started = process.hrtime.bigint();
    const client = new pg.Client({ host: e.host, port: e.port, user: e.user, database: e.database, password: e.env.PGPASSWORD, ssl: e.env.PGSSLMODE === "require" ? { rejectUnauthorized: false } : false });
    await client.connect();
    await client.query("select 1");
    await client.end();
    pgRuns.push(Number(process.hrtime.bigint() - started) / 1e6);
  }
  const spent = cpu();
  const median = (list: number[]) => [...list].sort((a, b) => a - b)[Math.floor(list.length / 2)]!;
  return { psqlMs: median(psqlRuns), pgMs: median(pgRuns), ...(spent ? { cpuUsPerSession: mapValues(spent, (seconds) => (seconds * 1e6) / (2 * SESSION_RUNS)) } : {}) };
}

// ---------------------------------------------------------------- the journal's disk

/**
 * What strict mode must pay per journal round on this disk: a small write at the end of a
 * zero-filled, synced file (as the journal's segments are) and an fdatasync, FSYNC_ROUNDS times,
 * in a directory next to the gateways' data. Median and mean µs.
 */
async function fsyncLatency(): Promise<{ medianUs: number; meanUs: number; dir: string }> {
  const dir = tempDir("gatehouse-bench-fsync-");
  const file = join(dir, "probe.seg");
  const fd = openSync(file, "w+");
  try {
    writeSync(fd, Buffer.alloc(4 << 20));
    fdatasyncSync(fd);
    const frame = Buffer.alloc(700, 7);
    const times: number[] = [];
    for (let i = 0; i < FSYNC_ROUNDS; i++) {
      const started = process.hrtime.bigint();
      writeSync(fd, frame, 0, frame.length, i * frame.length);
      await new Promise<void>((resolve, reject) => fdatasync(fd, (error) => (error ? reject(error) : resolve())));
      times.push(Number(process.hrtime.bigint() - started) / 1e3);
    }
    times.sort((a, b) => a - b);
    return { medianUs: times[Math.floor(times.length / 2)]!, meanUs: times.reduce((a, b) => a + b, 0) / times.length, dir };
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
}

const FSYNC_ROUNDS = 1000;

// ---------------------------------------------------------------- pgbouncer

function findPgbouncer(): string | undefined {
  for (const dir of [...(process.env.PATH ?? "").split(":"), "/usr/sbin", "/usr/local/sbin"]) {
    const candidate = join(dir, "pgbouncer");
    if (dir && existsSync(candidate)) return candidate;
  }
  return undefined;
}

/** pgbouncer in session mode in front of the same server (the closest to what the gateway does: one server connection per client). */
async function startPgbouncer(binary: string): Promise<{ port: number; pid: number; stop: () => Promise<void> }> {
  const dir = tempDir("gatehouse-bench-pgbouncer-");
  const port = await freePort();
  writeFileSync(join(dir, "users.txt"), `"${PG.user}" ""\n`);
  writeFileSync(
    join(dir, "pgbouncer.ini"),
    `[databases]
* = host=${PG.host} port=${PG.port}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = ${port}
unix_socket_dir =
auth_type = trust
auth_file = ${join(dir, "users.txt")}
pool_mode = session
max_client_conn = 200
default_pool_size = 20
`,
  );
  // pgbouncer refuses to run as root; -u drops to the postgres user, which must read the files.
  chmodSync(dir, 0o755);
  const asRoot = process.getuid?.() === 0;
  const child = spawn(binary, [...(asRoot ? ["-u", "postgres"] : []), join(dir, "pgbouncer.ini")], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (t: string) => (stderr += t));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  for (let i = 0; ; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, "127.0.0.1");
      socket.once("connect", () => (socket.destroy(), resolve(true)));
      socket.once("error", () => resolve(false));
    });
    if (ok) break;
    if (child.exitCode !== null || i > 50) throw new Error(`pgbouncer did not start:\n${stderr}`);
    await sleep(100);
  }
  return {
    port,
    pid: child.pid!,
    stop: async () => {
      child.kill("SIGTERM");
      await exited;
    },
  };
}

// ---------------------------------------------------------------- idle sessions

/**
 * A stand-in server for the idle sessions: Postgres here allows only
 * max_connections (100) backends, and an idle session's cost at the gateway
 * does not depend on what is behind the connector. It answers any startup with
 * AuthenticationOk, a few ParameterStatus, BackendKeyData and ReadyForQuery,
 * then holds the connection.
 */
function startIdleTarget(): Promise<{ server: Server; port: number; sockets: Set<Socket> }> {
  const message = (type: string, body: Buffer) => {
    const head = Buffer.alloc(5);
    head.write(type, 0, "latin1");
    head.writeInt32BE(body.length + 4, 1);
    return Buffer.concat([head, body]);
  };
  const int32 = (...values: number[]) => {
    const b = Buffer.alloc(4 * values.length);
    values.forEach((v, i) => b.writeInt32BE(v, 4 * i));
    return b;
  };
  const param = (name: string, value: string) => message("S", Buffer.from(`${name}\0${value}\0`));
  let pid = 1000;
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.on("error", () => undefined);
    let answered = false;
    socket.on("data", () => {
      // The dialer sends a StartupMessage (tls: disable); anything after it is ignored.
      if (answered) return;
      answered = true;
      socket.write(
        Buffer.concat([
          message("R", int32(0)),
          param("server_version", "15.0"),
          param("server_encoding", "UTF8"),
          param("client_encoding", "UTF8"),
          param("standard_conforming_strings", "on"),
          param("DateStyle", "ISO, MDY"),
          param("integer_datetimes", "on"),
          message("K", int32(++pid, 0x5eed)),
          message("Z", Buffer.from("I")),
        ]),
      );
    });
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve({ server, port: (server.address() as { port: number }).port, sockets })));
}

interface IdleResult {
  sessions: number;
  tls: boolean;
  gatewayRssBeforeMiB: number;
  gatewayRssAfterMiB: number;
  gatewayAddedMiB: number;
  connectorAddedMiB: number;
  openSeconds: number;
}

async function idleSessions(): Promise<IdleResult> {
  const target = await startIdleTarget();
  // The store in Postgres: the embedded store's thread lets go of a few hundred MiB of start-up
  // memory at a moment of its own choosing, which would swamp what the sessions cost (and is not
  // per session either way).
  const storeDb = `${DATABASE}_idle_store`;
  await psql(admin, `create database ${storeDb}`);
  cleanups.push(() => psql(admin, `drop database if exists ${storeDb} with (force)`));
  const { gateway, connector, accessKey, host, port } = await startStack(
    [{ name: "idle", target: { host: "127.0.0.1", port: target.port, database: "idle", tls: "disable" }, credential: { user: "idle" } }],
    `127.0.0.1:${target.port}`,
    // Every idle session is the bench's one identity: above the default per-identity limit (200).
    { store: { url: `postgres://${PG.user}@${PG.host}:${PG.port}/${storeDb}` }, limits: { maxSessionsPerIdentity: IDLE_SESSIONS + 100 } },
  );
  const clients: pg.Client[] = [];
  try {
    const open = async () => {
      const client = new pg.Client({ host, port, user: IDENTITY, database: "idle", password: accessKey, ssl: { rejectUnauthorized: false } });
      client.on("error", () => undefined);
      await client.connect();
      return client;
    };
    const gatewayPid = gateway.proc.child.pid!;
    const connectorPid = connector.child.pid!;
    const trace: Array<[number, number]> = [[-1, rssMiB(gatewayPid)]];
    // Warm up: the first sessions load code and fill caches that later ones reuse.
    const BATCH = 25;
    for (let i = 0; i < 200; i += BATCH) await Promise.all(Array.from({ length: BATCH }, async () => (await open()).end()));
    const gatewayBefore = await settledRss(gatewayPid);
    const connectorBefore = rssMiB(connectorPid);
    trace.push([0, gatewayBefore]);
    const started = process.hrtime.bigint();
    for (let i = 0; i < IDLE_SESSIONS; i += BATCH) {
      clients.push(...(await Promise.all(Array.from({ length: Math.min(BATCH, IDLE_SESSIONS - i) }, open))));
      if (clients.length % 100 === 0) trace.push([clients.length, rssMiB(gatewayPid)]);
    }
    const openSeconds = Number(process.hrtime.bigint() - started) / 1e9;
    if (target.sockets.size < IDLE_SESSIONS) throw new Error(`only ${target.sockets.size} of ${IDLE_SESSIONS} sessions reached the target`);
    const gatewayAfter = await settledRss(gatewayPid);
    const connectorAfter = rssMiB(connectorPid);
    console.error(`idle sessions: gateway RSS (MiB) by sessions open: ${trace.map(([n, mib]) => `${n < 0 ? "start" : n}=${mib.toFixed(0)}`).join(" ")} settled=${gatewayAfter.toFixed(0)}`);
    return {
      sessions: IDLE_SESSIONS,
      tls: true,
      gatewayRssBeforeMiB: gatewayBefore,
      gatewayRssAfterMiB: gatewayAfter,
      gatewayAddedMiB: gatewayAfter - gatewayBefore,
      connectorAddedMiB: connectorAfter - connectorBefore,
      openSeconds,
    };
  } finally {
    await Promise.all(clients.map((c) => c.end().catch(() => undefined)));
    await connector.stop();
    await gateway.proc.stop();
    for (const s of target.sockets) s.destroy();
    target.server.close();
  }
}

// ---------------------------------------------------------------- gateway

/**
 * A gateway with a Postgres listener and one connection per entry, and its
 * connector. The listener's certificate is made here with openssl (EC P-256),
 * as an operator would provide one, rather than generated at first start.
 */
async function startStack(connections: Array<Record<string, unknown>>, allow: string, extra: Record<string, unknown> = {}): Promise<{ gateway: RunningGateway; connector: Proc; accessKey: string; host: string; port: number }> {
  const dir = tempDir("gatehouse-bench-");
  const cert = join(dir, "listener.crt");
  const key = join(dir, "listener.key");
  await mustRun("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=localhost", "-days", "2", "-keyout", key, "-out", cert]);
  const credentials = newToken();
  const gateway = await startGatewayProcess(
    {
      log: { level: "warn" },
      listen: { api: "127.0.0.1:0", postgres: "127.0.0.1:0" },
      postgres: { tls: { cert, key } },
      connectors: [{ name: "bench", tokenSha256: credentials.sha256 }],
      connections: connections.map((c) => ({ protocol: "postgres", connector: "bench", allow: [{ identity: IDENTITY }], ...c })),
      ...(RECORDING ? { recording: { mode: RECORDING } } : {}),
      ...extra,
    },
    dir,
    120_000,
  );
  const connector = await startConnectorProcess({ gateway: gateway.apiUrl, name: "bench", token: credentials.token, allow, extra: { GATEHOUSE_LOG_LEVEL: "info" } });
  try {
    await connector.waitFor((l) => /connected/.test(l.msg) && !/dis/.test(l.msg), 60_000);
    const accessKey = await createKey(gateway);
    return { gateway, connector, accessKey, ...postgresAddress(gateway) };
  } catch (error) {
    await connector.stop();
    await gateway.proc.stop();
    throw error;
  }
}

function postgresAddress(gateway: RunningGateway): { host: string; port: number } {
  const started = gateway.proc.lines.find((l) => l.msg === "gateway started");
  const address = started?.postgres as { host: string; port: number } | null | undefined;
  if (!address) throw new Error("the gateway did not report a postgres listener");
  return address;
}

async function createKey(gateway: RunningGateway): Promise<string> {
  const out = await runCli(["keys", "create", "--identity", IDENTITY], { cwd: gateway.dir });
  if (out.code !== 0) throw new Error(`keys create failed: ${out.stderr}`);
  return out.stdout.trim();
}

// ---------------------------------------------------------------- main


const direct: Endpoint = { label: "direct", host: PG.host, port: PG.port, user: PG.user, database: DATABASE, env: { PGSSLMODE: "disable" } };
const admin: Endpoint = { ...direct, database: "postgres" };

const results: Record<string, PathResults> = {};
let idle: IdleResult | undefined;
const sessions: Record<string, SessionsResult> = {};
let pgbouncerUsed = false;

const loadAtStart = loadAverage();
const fsync = ONLY.has("pgbench") ? await fsyncLatency() : undefined;
await psql(admin, `create database ${DATABASE}`);
const cleanups: Array<() => Promise<unknown>> = [async () => psql(admin, `drop database if exists ${DATABASE} with (force)`)];
try {
  const endpoints: Endpoint[] = [direct];
  if (ONLY.has("pgbench") || ONLY.has("read") || ONLY.has("sessions")) {
    if (ONLY.has("pgbench")) await mustRun("pgbench", [...connArgs(direct), "-i", "-q", "-s", String(SCALE), DATABASE], direct.env);

    const { gateway, connector, accessKey, host, port } = await startStack(
      [
        { name: "bench", target: { host: PG.host, port: PG.port, database: DATABASE, tls: "disable" }, credential: { user: PG.user } },
        { name: "raw", protocol: "tcp", listen: "127.0.0.1:0", target: { host: PG.host, port: PG.port }, allow: [] },
      ],
      `${PG.host}:${PG.port}`,
    );
    // The gateway's directory (store, journal) goes with it: a bench leaves nothing behind.
    cleanups.unshift(() => connector.stop(), () => gateway.proc.stop(), async () => rmSync(gateway.dir, { recursive: true, force: true }));
    // Plaintext from loopback authenticates with SCRAM, like the direct path; the TLS row is what a remote agent gets.
    const procs = { gateway: gateway.proc.child.pid!, connector: connector.child.pid! };
    const viaGateway: Endpoint = { label: "gateway", host, port, user: IDENTITY, database: "bench", env: { PGSSLMODE: "disable", PGPASSWORD: accessKey }, procs };
    const viaGatewayTls: Endpoint = { ...viaGateway, label: "gateway (TLS)", env: { PGSSLMODE: "require", PGPASSWORD: accessKey } };
    if (PATHS.has("gateway")) endpoints.push(viaGateway);
    if (PATHS.has("gateway-tls")) endpoints.push(viaGatewayTls);
    const raw = gateway.tcp.raw;
    if (PATHS.has("tunnel") && raw) endpoints.push({ ...direct, label: "tunnel only (tcp)", host: raw.host, port: raw.port, procs });

    /** Another gateway and connector on the same server whose store is a database on it (`extra`: more gateway config). */
    const pgStorePath = async (label: string, storeDb: string, extra: Record<string, unknown> = {}): Promise<void> => {
      await psql(admin, `create database ${storeDb}`);
      cleanups.push(() => psql(admin, `drop database if exists ${storeDb} with (force)`));
      const stack = await startStack(
        [{ name: "bench", target: { host: PG.host, port: PG.port, database: DATABASE, tls: "disable" }, credential: { user: PG.user } }],
        `${PG.host}:${PG.port}`,
        { store: { url: `postgres://${PG.user}@${PG.host}:${PG.port}/${storeDb}` }, ...extra },
      );
      cleanups.unshift(() => stack.connector.stop(), () => stack.gateway.proc.stop(), async () => rmSync(stack.gateway.dir, { recursive: true, force: true }));
      endpoints.push({
        ...viaGateway,
        label,
        port: stack.port,
        env: { PGSSLMODE: "disable", PGPASSWORD: stack.accessKey },
        procs: { gateway: stack.gateway.proc.child.pid!, connector: stack.connector.child.pid! },
      });
    };
    if (PATHS.has("gateway-pgstore")) await pgStorePath(PGSTORE, `${DATABASE}_store`);
    if (PATHS.has("gateway-pgstore-best-effort") && RECORDING !== "best-effort") {
      await pgStorePath(BEST_EFFORT, `${DATABASE}_store_be`, { recording: { mode: "best-effort" } });
    }

    const bouncer = findPgbouncer();
    if (bouncer && PATHS.has("pgbouncer")) {
      const running = await startPgbouncer(bouncer);
      cleanups.unshift(running.stop);
      endpoints.push({ label: "pgbouncer", host: "127.0.0.1", port: running.port, user: PG.user, database: DATABASE, env: { PGSSLMODE: "disable" }, procs: { pgbouncer: running.pid } });
      pgbouncerUsed = true;
    } else if (!bouncer) {
      console.error("pgbouncer is not installed; its rows are skipped (Debian: apt-get install pgbouncer)");
    }

    for (const e of endpoints) {
      results[e.label] = { load: {} };
      await psql(e, "select 1"); // every path answers before anything is timed
    }
    if (ONLY.has("pgbench")) {
      const medians = await interleavedRounds(endpoints, CLIENTS, ROUNDS, pgbench, (e, clients, r) => `pgbench -c ${clients} ${e.label}: ${r.perSecond.toFixed(0)} tps, ${r.latencyUs.toFixed(0)} µs`);
      for (const [label, load] of Object.entries(medians)) results[label]!.load = load;
    }
    if (ONLY.has("sessions")) {
      for (const e of endpoints) {
        sessions[e.label] = await newSessions(e);
        console.error(`new sessions ${e.label}: psql -c ${sessions[e.label]!.psqlMs.toFixed(1)} ms, pg connect/query/end ${sessions[e.label]!.pgMs.toFixed(1)} ms (load average ${loadAverage()})`);
      }
    }
    if (ONLY.has("read")) {
      for (const e of endpoints) {
        const read = await bigRead(e);
        results[e.label]!.readMBps = read.MBps;
        if (read.cpuMsPerMB) results[e.label]!.readCpuMsPerMB = read.cpuMsPerMB;
        console.error(`read ${e.label}: ${read.MBps.toFixed(0)} MB/s (load average ${loadAverage()})`);
      }
    }
  }
  if (ONLY.has("idle")) idle = await idleSessions();
} finally {
  for (const cleanup of cleanups) await cleanup().catch((err: unknown) => console.error("cleanup:", err));
}

// ---------------------------------------------------------------- report

const d = results.direct;
const g = results.gateway;
const summary = {
  c16TpsRatio: ratio(g?.load.c16?.perSecond, d?.load.c16?.perSecond),
  c1TpsRatio: ratio(g?.load.c1?.perSecond, d?.load.c1?.perSecond),
  c1AddedLatencyUs: g?.load.c1 && d?.load.c1 ? g.load.c1.latencyUs - d.load.c1.latencyUs : undefined,
  c16AddedLatencyUs: g?.load.c16 && d?.load.c16 ? g.load.c16.latencyUs - d.load.c16.latencyUs : undefined,
  readRatio: ratio(g?.readMBps, d?.readMBps),
  idleAddedMiB: idle?.gatewayAddedMiB,
};
const tls = results["gateway (TLS)"];

// Issue 13's targets, each against this run's own baselines (see docs/benchmarks.md).
const TUNNEL = "tunnel only (tcp)";
const addedUs = (label: string, clients: number): number | undefined => {
  const here = results[label]?.load[`c${clients}`];
  const there = d?.load[`c${clients}`];
  return here && there ? here.latencyUs - there.latencyUs : undefined;
};
const cpuUs = (label: string, clients: number): number | undefined => {
  const cpu = results[label]?.load[`c${clients}`]?.cpuUsPerUnit;
  return cpu ? Object.values(cpu).reduce((a, b) => a + b, 0) : undefined;
};
const plus = (...xs: Array<number | undefined>): number | undefined => (xs.every((x) => x !== undefined) ? (xs as number[]).reduce((a, b) => a + b, 0) : undefined);
const times = (x: number | undefined, k: number): number | undefined => (x === undefined ? undefined : x * k);
interface Target {
  what: string;
  value: number | undefined;
  bound: number | undefined;
  /** "max": value ≤ bound; "min": value ≥ bound. */
  kind: "max" | "min";
}
const targetList: Record<string, Target> = {
  cpuPerStatementC16: { what: "CPU µs per statement at -c 16, gateway + connector, store in Postgres, strict", value: cpuUs(PGSTORE, 16), bound: 80, kind: "max" },
  embeddedStoreCpuC16: { what: "the same with the embedded store, ≤ 1.2× the store in Postgres", value: cpuUs("gateway", 16), bound: times(cpuUs(PGSTORE, 16), 1.2), kind: "max" },
  strictC1AddedUs: { what: "-c 1 added µs, strict (store in Postgres) ≤ tunnel's + fdatasync median + 50", value: addedUs(PGSTORE, 1), bound: plus(addedUs(TUNNEL, 1), fsync?.medianUs, 50), kind: "max" },
  strictEmbeddedC1AddedUs: { what: "-c 1 added µs, strict (embedded store), same bound", value: addedUs("gateway", 1), bound: plus(addedUs(TUNNEL, 1), fsync?.medianUs, 50), kind: "max" },
  bestEffortC1AddedUs: { what: "-c 1 added µs, best-effort ≤ tunnel's + 40", value: addedUs(BEST_EFFORT, 1), bound: plus(addedUs(TUNNEL, 1), 40), kind: "max" },
  tunnelC1AddedUs: { what: "-c 1 added µs, bare tunnel ≤ 2× pgbouncer's", value: addedUs(TUNNEL, 1), bound: times(addedUs("pgbouncer", 1), 2), kind: "max" },
  readRatio: { what: "200 MB read through the gateway / direct", value: ratio(g?.readMBps, d?.readMBps), bound: 0.6, kind: "min" },
  strictVsBestEffortC16: { what: "strict / best-effort TPS at -c 16 (store in Postgres)", value: ratio(results[PGSTORE]?.load.c16?.perSecond, results[BEST_EFFORT]?.load.c16?.perSecond), bound: 0.9, kind: "min" },
  newSessionPsqlMs: { what: "psql -c 'select 1' ms through the gateway ≤ direct + 5", value: sessions.gateway?.psqlMs, bound: plus(sessions.direct?.psqlMs, 5), kind: "max" },
  newSessionPgMs: { what: "pg connect + select 1 + end ms through the gateway ≤ direct + 5", value: sessions.gateway?.pgMs, bound: plus(sessions.direct?.pgMs, 5), kind: "max" },
  idleKiBPerSession: { what: "gateway RSS KiB per idle TLS session ≤ 64", value: idle ? (idle.gatewayAddedMiB * 1024) / idle.sessions : undefined, bound: 64, kind: "max" },
};
const targets = Object.fromEntries(
  Object.entries(targetList).map(([name, t]) => [name, t.value === undefined || t.bound === undefined ? undefined : t.kind === "max" ? t.value <= t.bound : t.value >= t.bound]),
);

const loadAtEnd = loadAverage();
console.log(
  `recording ${RECORDING ?? "default (strict)"}; pgbench -S -M extended, -T ${SECONDS}, scale ${SCALE}, median of ${ROUNDS} round(s); read: ${READ_ROWS} rows × 1,000 bytes, median of ${READ_RUNS}; load average ${loadAtStart} at the start, ${loadAtEnd} at the end`,
);
printThroughput(results, CLIENTS, "TPS");
printCpu(results, CLIENTS, "tx");
if (idle) {
  console.log(
    `${idle.sessions} idle TLS sessions: gateway RSS ${fmt(idle.gatewayRssBeforeMiB, 1)} → ${fmt(idle.gatewayRssAfterMiB, 1)} MiB (+${fmt(idle.gatewayAddedMiB, 1)} MiB, ${fmt((idle.gatewayAddedMiB * 1024) / idle.sessions, 1)} KiB each); connector +${fmt(idle.connectorAddedMiB, 1)} MiB; opened in ${fmt(idle.openSeconds, 1)} s`,
  );
}
if (Object.keys(sessions).length) {
  const base = sessions.direct;
  console.log(`new sessions (median of ${SESSION_RUNS}): path, psql -c 'select 1' ms, pg connect+query+end ms, added to direct, CPU µs per session`);
  for (const [label, r] of Object.entries(sessions)) {
    const added = base && label !== "direct" ? ` (+${fmt(r.psqlMs - base.psqlMs, 1)} / +${fmt(r.pgMs - base.pgMs, 1)})` : "";
    const cpu = r.cpuUsPerSession ? `  ${Object.entries(r.cpuUsPerSession).map(([n, us]) => `${n} ${fmt(us)}`).join(", ")}` : "";
    console.log(`  ${label.padEnd(30)}${fmt(r.psqlMs, 1).padStart(8)}${fmt(r.pgMs, 1).padStart(8)}${added}${cpu}`);
  }
}
if (fsync) console.log(`journal disk: write + fdatasync ${fmt(fsync.medianUs)} µs median, ${fmt(fsync.meanUs)} µs mean (${FSYNC_ROUNDS} rounds before the load)`);
for (const [name, t] of Object.entries(targetList)) {
  if (targets[name] === undefined) continue;
  const digits = t.bound! < 10 ? 2 : 0;
  console.log(`target ${name}: ${targets[name] ? "met" : "MISSED"} — ${t.what}: ${fmt(t.value, digits)} (bound ${t.kind === "max" ? "≤" : "≥"} ${fmt(t.bound, digits)})`);
}
console.log(
  JSON.stringify({
    bench: "postgres",
    seconds: SECONDS,
    rounds: ROUNDS,
    recording: RECORDING ?? "default (strict)",
    scale: SCALE,
    loadAverage: { start: Number(loadAtStart), end: Number(loadAtEnd) },
    readBytes: READ_ROWS * 1000,
    pgbouncer: pgbouncerUsed,
    results,
    sessions,
    fsync: fsync ?? null,
    idle: idle ?? null,
    ratio: { ...summary, tlsC16TpsRatio: ratio(tls?.load.c16?.perSecond, d?.load.c16?.perSecond), tlsC1AddedLatencyUs: tls?.load.c1 && d?.load.c1 ? tls.load.c1.latencyUs - d.load.c1.latencyUs : undefined, tlsReadRatio: ratio(tls?.readMBps, d?.readMBps) },
    targets: Object.fromEntries(Object.entries(targetList).map(([name, t]) => [name, { value: t.value ?? null, bound: t.bound ?? null, met: targets[name] ?? null }])),
  }),
);

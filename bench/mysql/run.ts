import { rmSync } from "node:fs";
import { join } from "node:path";
import mysql from "mysql2/promise";
import { cpuMeter, interleavedRounds, loadAverage, perUnitUs, printCpu, printThroughput, ratio, timedReads, type LoadResult, type PathResults } from "../lib/measure.js";
import { mustRun, run } from "../lib/process-tools.js";
import { startMariadbServer } from "@gatehouse/e2e/lib/mariadb-server";
import { newToken, runCli, startConnectorProcess, startGatewayProcess, tempDir, type Proc, type RunningGateway } from "@gatehouse/e2e/lib/processes";

// MySQL/MariaDB through gateway + connector (separate processes, embedded
// store, every statement recorded) against the same server directly, in one
// run, as bench/postgres does for Postgres:
//   - a point SELECT in a loop on 1 and on 16 connections for BENCH_SECONDS (mysql2, text
//     protocol, as mysqlslap sends it; mysqlslap itself with BENCH_LOAD=mysqlslap), the
//     median of BENCH_ROUNDS interleaved rounds: statements/s and mean latency
//   - a 200 MB SELECT read by the mariadb client (--quick, output discarded): MB/s
//   - CPU µs per statement (and ms per MB read) of the gateway and the connector
// The server is the one the e2e tests use (GATEHOUSE_TEST_MYSQL_URL, else
// 127.0.0.1:3306, else a throwaway mariadbd). Prints a table, then a one-line
// JSON summary last.

/**
 * What drives the statements: "mysql2" (default: a loop per connection in this process, for
 * BENCH_SECONDS) or "mysqlslap" (a count of statements: BENCH_QUERIES_C1 / BENCH_QUERIES_C16).
 * mysqlslap cannot name a database at login (it logs in without one, then switches with
 * COM_INIT_DB to --create-schema). Through the gateway the database field is where the
 * connection is named, so mysqlslap names it in the user instead, `IDENTITY#CONNECTION`, and
 * --create-schema is the resource's own database, which the gateway relays as a plain USE.
 * mysqlslap leaves that schema alone after the run (it drops only schemas it created itself).
 */
const LOAD = process.env.BENCH_LOAD ?? "mysql2";
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const QUERIES_C1 = Number(process.env.BENCH_QUERIES_C1 ?? 20_000);
const QUERIES_C16 = Number(process.env.BENCH_QUERIES_C16 ?? 80_000);
const CLIENTS = (process.env.BENCH_CLIENTS ?? "1,16").split(",").map(Number);
const READ_ROWS = Number(process.env.BENCH_READ_ROWS ?? 200_000); // × 1,000 bytes = 200 MB
const READ_RUNS = Number(process.env.BENCH_READ_RUNS ?? 3);
/** Rounds of the interleaved load runs; each cell reports the run with the median rate. */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 1);
/** recording.mode for the gateway ("strict" or "best-effort"); unset: the gateway's default (strict). */
const RECORDING = process.env.BENCH_RECORDING;
/** Comma-separated subset of slap,read. */
const ONLY = new Set((process.env.BENCH_ONLY ?? "slap,read").split(","));
/** Comma-separated subset of the paths (direct is always run): gateway, gateway-tls. */
const PATHS = new Set((process.env.BENCH_PATHS ?? "direct,gateway,gateway-tls").split(","));
const IDENTITY = "bench-agent";
const QUERY = "SELECT customer, amount FROM orders WHERE id = 4242";

interface Endpoint {
  label: string;
  host: string;
  port: number;
  user: string;
  password: string | null;
  database: string;
  /**
   * Through the gateway: the connection's name, for clients that cannot pass it as the database
   * (mysqlslap), and the resource's database they switch to after login.
   */
  gateway?: { connection: string; resourceDatabase: string };
  tls: boolean;
  /** Processes on this path whose CPU time is measured (name → pid): the gateway, the connector. */
  procs?: Record<string, number>;
}


// ---------------------------------------------------------------- helpers

function connArgs(e: Endpoint): string[] {
  return ["-h", e.host, "-P", String(e.port), "-u", e.user, e.tls ? "--ssl" : "--skip-ssl"];
}

function env(e: Endpoint): Record<string, string> {
  return e.password === null ? {} : { MYSQL_PWD: e.password };
}

function mariadb(e: Endpoint, sql: string): Promise<string> {
  return mustRun("mariadb", [...connArgs(e), "-D", e.database, "-N", "-B", "-e", sql], env(e));
}

// ---------------------------------------------------------------- mysqlslap

/** mysqlslap: `queries` statements over `clients` connections, through the gateway as `IDENTITY#CONNECTION` (see LOAD). */
async function slap(e: Endpoint, clients: number): Promise<LoadResult> {
  const queries = clients === 1 ? QUERIES_C1 : QUERIES_C16;
  const login = e.gateway ? { ...e, user: `${e.user}#${e.gateway.connection}` } : e;
  const schema = e.gateway ? e.gateway.resourceDatabase : e.database;
  const cpu = cpuMeter(e);
  const out = await run(
    "mysqlslap",
    [...connArgs(login), `--create-schema=${schema}`, `--query=${QUERY}`, `--concurrency=${clients}`, `--number-of-queries=${queries}`, "--iterations=1"],
    env(e),
  );
  const seconds = Number(/Average number of seconds to run all queries: ([\d.]+)/.exec(out.stdout)?.[1]);
  if (out.code !== 0 || !Number.isFinite(seconds) || seconds <= 0) throw new Error(`mysqlslap through ${e.label} failed (exit ${out.code}):\n${out.stderr}${out.stdout}`);
  const spent = cpu();
  const perSecond = queries / seconds;
  return { perSecond, latencyUs: (clients * 1e6) / perSecond, ...perUnitUs(spent, queries) };
}

/** `clients` mysql2 connections, each running QUERY in a loop for SECONDS. */
async function mysql2Load(e: Endpoint, clients: number): Promise<LoadResult> {
  const connections = await Promise.all(
    Array.from({ length: clients }, () =>
      mysql.createConnection({ host: e.host, port: e.port, user: e.user, ...(e.password === null ? {} : { password: e.password }), database: e.database, ...(e.tls ? { ssl: { rejectUnauthorized: false } } : {}) }),
    ),
  );
  try {
    for (const c of connections) await c.query(QUERY); // warm: every connection logged in and answering
    const cpu = cpuMeter(e);
    const started = process.hrtime.bigint();
    const deadline = started + BigInt(SECONDS * 1e9);
    let statements = 0;
    let waitedNs = 0n;
    await Promise.all(
      connections.map(async (c) => {
        while (process.hrtime.bigint() < deadline) {
          const t0 = process.hrtime.bigint();
          await c.query(QUERY);
          waitedNs += process.hrtime.bigint() - t0;
          statements++;
        }
      }),
    );
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const spent = cpu();
    return { perSecond: statements / seconds, latencyUs: Number(waitedNs) / statements / 1e3, ...perUnitUs(spent, statements) };
  } finally {
    await Promise.all(connections.map((c) => c.end().catch(() => undefined)));
  }
}

// ---------------------------------------------------------------- 200 MB read

/** The mariadb client reading READ_ROWS rows of 1,000 bytes, row by row (--quick), output discarded, READ_RUNS times. */
function bigRead(e: Endpoint): Promise<{ MBps: number; cpuMsPerMB?: Record<string, number> }> {
  const sql = `SELECT REPEAT('x', 1000) FROM seq_1_to_${READ_ROWS}`;
  return timedReads(e, "mariadb", [...connArgs(e), "-D", e.database, "--quick", "-N", "-B", "-e", sql], env(e), READ_RUNS, READ_ROWS * 1000);
}

// ---------------------------------------------------------------- gateway

/**
 * A gateway with a MySQL listener and one connection, and its connector. The listener's
 * certificate is made here with openssl (EC P-256), as an operator would provide one.
 */
async function startStack(target: { host: string; port: number; user: string; password: string | null; database: string }): Promise<{ gateway: RunningGateway; connector: Proc; accessKey: string; host: string; port: number }> {
  const dir = tempDir("gatehouse-bench-mysql-");
  const cert = join(dir, "listener.crt");
  const key = join(dir, "listener.key");
  await mustRun("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=localhost", "-days", "2", "-keyout", key, "-out", cert]);
  const credentials = newToken();
  const gateway = await startGatewayProcess(
    {
      log: { level: "warn" },
      listen: { api: "127.0.0.1:0", mysql: "127.0.0.1:0" },
      // The MySQL listener uses the Postgres listener's certificate material.
      postgres: { tls: { cert, key } },
      connectors: [{ name: "bench", tokenSha256: credentials.sha256 }],
      connections: [
        {
          name: "bench",
          protocol: "mysql",
          connector: "bench",
          target: { host: target.host, port: target.port, database: target.database, tls: "disable" },
          credential: { user: target.user, ...(target.password === null ? {} : { password: "env:BENCH_MYSQL_PASSWORD" }) },
          allow: [{ identity: IDENTITY }],
        },
      ],
      ...(RECORDING ? { recording: { mode: RECORDING } } : {}),
    },
    dir,
    120_000,
  );
  const connector = await startConnectorProcess({
    gateway: gateway.apiUrl,
    name: "bench",
    token: credentials.token,
    allow: `${target.host}:${target.port}`,
    extra: { GATEHOUSE_LOG_LEVEL: "info", ...(target.password === null ? {} : { BENCH_MYSQL_PASSWORD: target.password }) },
  });
  try {
    await connector.waitFor((l) => /connected/.test(l.msg) && !/dis/.test(l.msg), 60_000);
    const out = await runCli(["keys", "create", "--identity", IDENTITY], { cwd: gateway.dir });
    if (out.code !== 0) throw new Error(`keys create failed: ${out.stderr}`);
    const address = gateway.proc.lines.find((l) => l.msg === "gateway started")?.mysql as { host: string; port: number } | undefined;
    if (!address) throw new Error("the gateway did not report a mysql listener");
    return { gateway, connector, accessKey: out.stdout.trim(), ...address };
  } catch (error) {
    await connector.stop();
    await gateway.proc.stop();
    throw error;
  }
}

// ---------------------------------------------------------------- main

const server = await startMariadbServer();
const db = await server.createDatabase({ orders: 10_000 });
const cleanups: Array<() => Promise<unknown>> = [() => server.stop(), () => db.drop()];
const direct: Endpoint = { label: "direct", host: server.host, port: server.port, user: server.user, password: server.password, database: db.name, tls: false };
const results: Record<string, PathResults> = {};
const loadAtStart = loadAverage();

try {
  const endpoints: Endpoint[] = [direct];
  const stack = await startStack({ host: server.host, port: server.port, user: server.user, password: server.password, database: db.name });
  // The gateway's directory (store, journal, certificate) goes with it: a bench leaves nothing behind.
  cleanups.unshift(() => stack.connector.stop(), () => stack.gateway.proc.stop(), async () => rmSync(stack.gateway.dir, { recursive: true, force: true }));
  const procs = { gateway: stack.gateway.proc.child.pid!, connector: stack.connector.child.pid! };
  // Plaintext from loopback authenticates with mysql_native_password, like the direct path; the TLS row is what a remote agent gets.
  const viaGateway: Endpoint = { label: "gateway", host: stack.host, port: stack.port, user: IDENTITY, password: stack.accessKey, database: "bench", gateway: { connection: "bench", resourceDatabase: db.name }, tls: false, procs };
  if (PATHS.has("gateway")) endpoints.push(viaGateway);
  if (PATHS.has("gateway-tls")) endpoints.push({ ...viaGateway, label: "gateway (TLS)", tls: true });

  for (const e of endpoints) {
    results[e.label] = { load: {} };
    await mariadb(e, "SELECT 1"); // every path answers before anything is timed
  }
  if (ONLY.has("slap")) {
    const medians = await interleavedRounds(endpoints, CLIENTS, ROUNDS, LOAD === "mysqlslap" ? slap : mysql2Load, (e, clients, r) => `${LOAD} -c ${clients} ${e.label}: ${r.perSecond.toFixed(0)} statements/s, ${r.latencyUs.toFixed(0)} µs`);
    for (const [label, load] of Object.entries(medians)) results[label]!.load = load;
  }
  if (ONLY.has("read")) {
    for (const e of endpoints) {
      const read = await bigRead(e);
      results[e.label]!.readMBps = read.MBps;
      if (read.cpuMsPerMB) results[e.label]!.readCpuMsPerMB = read.cpuMsPerMB;
      console.error(`read ${e.label}: ${read.MBps.toFixed(0)} MB/s (load average ${loadAverage()})`);
    }
  }
} finally {
  for (const cleanup of cleanups) await cleanup().catch((err: unknown) => console.error("cleanup:", err));
}

// ---------------------------------------------------------------- report

const d = results.direct;
const g = results.gateway;
const loadAtEnd = loadAverage();
console.log(
  `${server.source} MariaDB ${server.host}:${server.port}; recording ${RECORDING ?? "default (strict)"}; ${LOAD === "mysqlslap" ? `mysqlslap "${QUERY}", ${QUERIES_C1} statements at -c 1, ${QUERIES_C16} at -c 16` : `mysql2 "${QUERY}" for ${SECONDS} s at -c 1 and -c 16`}, median of ${ROUNDS} round(s); read: ${READ_ROWS} rows × 1,000 bytes, median of ${READ_RUNS}; load average ${loadAtStart} at the start, ${loadAtEnd} at the end`,
);
printThroughput(results, CLIENTS, "stmt/s");
printCpu(results, CLIENTS, "stmt");
console.log(
  JSON.stringify({
    bench: "mysql",
    server: server.source,
    recording: RECORDING ?? "default (strict)",
    load: LOAD,
    rounds: ROUNDS,
    ...(LOAD === "mysqlslap" ? { queries: { c1: QUERIES_C1, c16: QUERIES_C16 } } : { seconds: SECONDS }),
    loadAverage: { start: Number(loadAtStart), end: Number(loadAtEnd) },
    readBytes: READ_ROWS * 1000,
    results,
    ratio: {
      c1StatementsRatio: ratio(g?.load.c1?.perSecond, d?.load.c1?.perSecond),
      c16StatementsRatio: ratio(g?.load.c16?.perSecond, d?.load.c16?.perSecond),
      c1AddedLatencyUs: g?.load.c1 && d?.load.c1 ? g.load.c1.latencyUs - d.load.c1.latencyUs : undefined,
      readRatio: ratio(g?.readMBps, d?.readMBps),
    },
  }),
);

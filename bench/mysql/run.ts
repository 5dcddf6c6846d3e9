import { spawn } from "node:child_process";
import { loadavg } from "node:os";
import { join } from "node:path";
import mysql from "mysql2/promise";
import { cpuSeconds, mustRun, run } from "../lib/process-tools.js";
import { startMariadbServer } from "@gatehouse/e2e/lib/mariadb-server";
import { gatewaySpeaksMysql, NO_MYSQL_GATEWAY } from "@gatehouse/e2e/lib/mysql-stack";
import { newToken, runCli, startConnectorProcess, startGatewayProcess, tempDir, type Proc, type RunningGateway } from "@gatehouse/e2e/lib/processes";

// MySQL/MariaDB through gateway + connector (separate processes, embedded
// store, every statement recorded) against the same server directly, in one
// run, as bench/postgres does for Postgres:
//   - a point SELECT in a loop on 1 and on 16 connections for BENCH_SECONDS (mysql2, text
//     protocol, as mysqlslap sends it; mysqlslap itself with BENCH_LOAD=mysqlslap):
//     statements/s and mean latency
//   - a 200 MB SELECT read by the mariadb client (--quick, output discarded): MB/s
//   - CPU µs per statement (and ms per MB read) of the gateway and the connector
// The server is the one the e2e tests use (GATEHOUSE_TEST_MYSQL_URL, else
// 127.0.0.1:3306, else a throwaway mariadbd). Prints a table, then a one-line
// JSON summary last.

/**
 * What drives the statements: "mysql2" (default: a loop per connection in this process, for
 * BENCH_SECONDS) or "mysqlslap" (a count of statements: BENCH_QUERIES_C1 / BENCH_QUERIES_C16).
 * mysqlslap logs in without a database: through the gateway it would need the connection in the user
 * (IDENTITY#CONNECTION), which this bench does not pass yet, so mysql2 is the default.
 */
const LOAD = process.env.BENCH_LOAD ?? "mysql2";
const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
const QUERIES_C1 = Number(process.env.BENCH_QUERIES_C1 ?? 20_000);
const QUERIES_C16 = Number(process.env.BENCH_QUERIES_C16 ?? 80_000);
const CLIENTS = (process.env.BENCH_CLIENTS ?? "1,16").split(",").map(Number);
const READ_ROWS = Number(process.env.BENCH_READ_ROWS ?? 200_000); // × 1,000 bytes = 200 MB
const READ_RUNS = Number(process.env.BENCH_READ_RUNS ?? 3);
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
  tls: boolean;
  /** Processes on this path whose CPU time is measured (name → pid): the gateway, the connector. */
  procs?: Record<string, number>;
}

interface SlapResult {
  statementsPerSecond: number;
  /** Mean time a client waited for one statement, in µs. */
  latencyUs: number;
  /** CPU time (user + system) each of the path's processes spent per statement, in µs. */
  cpuUsPerStatement?: Record<string, number>;
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

function cpuMeter(e: Endpoint): () => Record<string, number> | undefined {
  if (!e.procs) return () => undefined;
  const procs = e.procs;
  const start = mapValues(procs, cpuSeconds);
  return () => mapValues(procs, (pid, name) => cpuSeconds(pid) - start[name]!);
}

function mapValues<T, U>(record: Record<string, T>, f: (value: T, key: string) => U): Record<string, U> {
  return Object.fromEntries(Object.entries(record).map(([k, v]) => [k, f(v, k)]));
}

/** The 1-minute load average: other work on the machine shows in every number here. */
const loadAverage = () => loadavg()[0]!.toFixed(1);

// ---------------------------------------------------------------- mysqlslap

async function slap(e: Endpoint, clients: number): Promise<SlapResult> {
  const queries = clients === 1 ? QUERIES_C1 : QUERIES_C16;
  const cpu = cpuMeter(e);
  const out = await run(
    "mysqlslap",
    [...connArgs(e), `--create-schema=${e.database}`, `--query=${QUERY}`, `--concurrency=${clients}`, `--number-of-queries=${queries}`, "--iterations=1"],
    env(e),
  );
  const seconds = Number(/Average number of seconds to run all queries: ([\d.]+)/.exec(out.stdout)?.[1]);
  if (out.code !== 0 || !Number.isFinite(seconds) || seconds <= 0) throw new Error(`mysqlslap through ${e.label} failed (exit ${out.code}):\n${out.stderr}${out.stdout}`);
  const spent = cpu();
  const statementsPerSecond = queries / seconds;
  return {
    statementsPerSecond,
    latencyUs: (clients * 1e6) / statementsPerSecond,
    ...(spent ? { cpuUsPerStatement: mapValues(spent, (s) => (s * 1e6) / queries) } : {}),
  };
}

/** `clients` mysql2 connections, each running QUERY in a loop for SECONDS. */
async function mysql2Load(e: Endpoint, clients: number): Promise<SlapResult> {
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
    return {
      statementsPerSecond: statements / seconds,
      latencyUs: Number(waitedNs) / statements / 1e3,
      ...(spent ? { cpuUsPerStatement: mapValues(spent, (s) => (s * 1e6) / statements) } : {}),
    };
  } finally {
    await Promise.all(connections.map((c) => c.end().catch(() => undefined)));
  }
}

// ---------------------------------------------------------------- 200 MB read

/** Times the mariadb client reading READ_ROWS rows of 1,000 bytes, row by row (--quick), output discarded; the median run. */
async function bigRead(e: Endpoint): Promise<{ seconds: number; cpuMsPerMB?: Record<string, number> }> {
  const sql = `SELECT REPEAT('x', 1000) FROM seq_1_to_${READ_ROWS}`;
  const times: number[] = [];
  const cpu = cpuMeter(e);
  for (let i = 0; i < READ_RUNS; i++) {
    const started = process.hrtime.bigint();
    const code = await new Promise<number | null>((resolve, reject) => {
      const child = spawn("mariadb", [...connArgs(e), "-D", e.database, "--quick", "-N", "-B", "-e", sql], { env: { ...process.env, ...env(e) }, stdio: ["ignore", "ignore", "inherit"] });
      child.once("error", reject);
      child.once("exit", resolve);
    });
    if (code !== 0) throw new Error(`mariadb read through ${e.label} exited ${code}`);
    times.push(Number(process.hrtime.bigint() - started) / 1e9);
  }
  const spent = cpu();
  times.sort((a, b) => a - b);
  const mb = (READ_ROWS * 1000 * READ_RUNS) / 1e6;
  return { seconds: times[Math.floor(times.length / 2)]!, ...(spent ? { cpuMsPerMB: mapValues(spent, (s) => (s * 1e3) / mb) } : {}) };
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

const fmt = (n: number | undefined, digits = 0) => (n === undefined || !Number.isFinite(n) ? "-" : n.toFixed(digits));
const signed = (n: number) => `${n >= 0 ? "+" : ""}${fmt(n)}`;

const server = await startMariadbServer();
const db = await server.createDatabase({ orders: 10_000 });
const cleanups: Array<() => Promise<unknown>> = [() => server.stop(), () => db.drop()];
const direct: Endpoint = { label: "direct", host: server.host, port: server.port, user: server.user, password: server.password, database: db.name, tls: false };
const results: Record<string, { c1?: SlapResult; c16?: SlapResult; readMBps?: number; readCpuMsPerMB?: Record<string, number> }> = {};
const loadAtStart = loadAverage();
let gatewaySkipped: string | undefined;

try {
  const endpoints: Endpoint[] = [direct];
  if (await gatewaySpeaksMysql()) {
    const stack = await startStack({ host: server.host, port: server.port, user: server.user, password: server.password, database: db.name });
    cleanups.unshift(() => stack.connector.stop(), () => stack.gateway.proc.stop());
    const procs = { gateway: stack.gateway.proc.child.pid!, connector: stack.connector.child.pid! };
    // Plaintext from loopback authenticates with mysql_native_password, like the direct path; the TLS row is what a remote agent gets.
    const viaGateway: Endpoint = { label: "gateway", host: stack.host, port: stack.port, user: IDENTITY, password: stack.accessKey, database: "bench", tls: false, procs };
    if (PATHS.has("gateway")) endpoints.push(viaGateway);
    if (PATHS.has("gateway-tls")) endpoints.push({ ...viaGateway, label: "gateway (TLS)", tls: true });
  } else {
    gatewaySkipped = NO_MYSQL_GATEWAY;
    console.error(`gateway rows skipped: ${NO_MYSQL_GATEWAY}`);
  }

  for (const e of endpoints) {
    results[e.label] = {};
    await mariadb(e, "SELECT 1"); // every path answers before anything is timed
  }
  if (ONLY.has("slap")) {
    // Interleaved, so background load on the machine spreads over every path alike.
    for (const clients of CLIENTS) {
      for (const e of endpoints) {
        const r = LOAD === "mysqlslap" ? await slap(e, clients) : await mysql2Load(e, clients);
        results[e.label]![`c${clients}` as "c1" | "c16"] = r;
        console.error(`${LOAD} -c ${clients} ${e.label}: ${r.statementsPerSecond.toFixed(0)} statements/s, ${r.latencyUs.toFixed(0)} µs (load average ${loadAverage()})`);
      }
    }
  }
  if (ONLY.has("read")) {
    for (const e of endpoints) {
      const read = await bigRead(e);
      results[e.label]!.readMBps = (READ_ROWS * 1000) / 1e6 / read.seconds;
      if (read.cpuMsPerMB) results[e.label]!.readCpuMsPerMB = read.cpuMsPerMB;
      console.error(`read ${e.label}: ${results[e.label]!.readMBps!.toFixed(0)} MB/s (load average ${loadAverage()})`);
    }
  }
} finally {
  for (const cleanup of cleanups) await cleanup().catch((err: unknown) => console.error("cleanup:", err));
}

// ---------------------------------------------------------------- report

const d = results.direct;
const g = results.gateway;
const ratio = (a: number | undefined, b: number | undefined) => (a !== undefined && b !== undefined ? a / b : undefined);
const rows: string[][] = [["path", "-c 1 stmt/s", "-c 1 mean µs", "-c 16 stmt/s", "-c 16 mean µs", "200 MB read MB/s"]];
for (const [label, r] of Object.entries(results)) {
  rows.push([label, fmt(r.c1?.statementsPerSecond), fmt(r.c1?.latencyUs), fmt(r.c16?.statementsPerSecond), fmt(r.c16?.latencyUs), fmt(r.readMBps)]);
}
for (const label of Object.keys(results).filter((l) => l !== "direct")) {
  const r = results[label]!;
  rows.push([
    `${label} / direct`,
    fmt(ratio(r.c1?.statementsPerSecond, d?.c1?.statementsPerSecond), 2),
    r.c1 && d?.c1 ? signed(r.c1.latencyUs - d.c1.latencyUs) : "-",
    fmt(ratio(r.c16?.statementsPerSecond, d?.c16?.statementsPerSecond), 2),
    r.c16 && d?.c16 ? signed(r.c16.latencyUs - d.c16.latencyUs) : "-",
    fmt(ratio(r.readMBps, d?.readMBps), 2),
  ]);
}
const loadAtEnd = loadAverage();
console.log(
  `${server.source} MariaDB ${server.host}:${server.port}; recording ${RECORDING ?? "default (strict)"}; ${LOAD === "mysqlslap" ? `mysqlslap "${QUERY}", ${QUERIES_C1} statements at -c 1, ${QUERIES_C16} at -c 16` : `mysql2 "${QUERY}" for ${SECONDS} s at -c 1 and -c 16`}; read: ${READ_ROWS} rows × 1,000 bytes, median of ${READ_RUNS}; load average ${loadAtStart} at the start, ${loadAtEnd} at the end`,
);
for (const row of rows) console.log(row.map((c, i) => c.padEnd(i === 0 ? 30 : 18)).join(""));
const cpuRows: string[][] = [["CPU per unit of work", "-c 1 µs/stmt", "-c 16 µs/stmt", "read ms/MB"]];
for (const [label, r] of Object.entries(results)) {
  for (const name of Object.keys(r.c1?.cpuUsPerStatement ?? r.c16?.cpuUsPerStatement ?? r.readCpuMsPerMB ?? {})) {
    cpuRows.push([`${label}: ${name}`, fmt(r.c1?.cpuUsPerStatement?.[name]), fmt(r.c16?.cpuUsPerStatement?.[name]), fmt(r.readCpuMsPerMB?.[name], 1)]);
  }
}
if (cpuRows.length > 1) {
  console.log("");
  for (const row of cpuRows) console.log(row.map((c, i) => c.padEnd(i === 0 ? 36 : 16)).join(""));
  console.log("");
}
console.log(
  JSON.stringify({
    bench: "mysql",
    server: server.source,
    recording: RECORDING ?? "default (strict)",
    load: LOAD,
    ...(LOAD === "mysqlslap" ? { queries: { c1: QUERIES_C1, c16: QUERIES_C16 } } : { seconds: SECONDS }),
    loadAverage: { start: Number(loadAtStart), end: Number(loadAtEnd) },
    readBytes: READ_ROWS * 1000,
    gatewaySkipped: gatewaySkipped ?? null,
    results,
    ratio: {
      c1StatementsRatio: ratio(g?.c1?.statementsPerSecond, d?.c1?.statementsPerSecond),
      c16StatementsRatio: ratio(g?.c16?.statementsPerSecond, d?.c16?.statementsPerSecond),
      c1AddedLatencyUs: g?.c1 && d?.c1 ? g.c1.latencyUs - d.c1.latencyUs : undefined,
      readRatio: ratio(g?.readMBps, d?.readMBps),
    },
  }),
);

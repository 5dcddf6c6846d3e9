// `pnpm bench workers [--clients 16] [--seconds 15] [--rounds 2] [--mode strict|best-effort]`: what a
// second gateway worker adds. The same pgbench load (the built-in tpcb-like transaction, 7 statements,
// store in Postgres, recording.mode as given, strict by default) runs direct, through `gatehouse gateway --workers 1` and through
// `--workers 2`, interleaved in rounds, and prints transactions per second and the CPU each
// process on the path spent per transaction (the gateway's figure sums the supervisor and
// its workers). Ends with a one-line JSON summary.
import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import { parseArgs } from "node:util";
import { connectorPasswordEnv, postgresConnection, startPostgresServer, type PostgresServer } from "@gatehouse/e2e/lib/postgres-server";
import { newToken, runCli, startConnectorProcess, startGatewayProcess, tempDir, type Proc, type RunningGateway } from "@gatehouse/e2e/lib/processes";
import { cpuSeconds, mustRun, run } from "../lib/process-tools.js";
import { fmt, loadAverage } from "../lib/measure.js";

const { values } = parseArgs({ options: { clients: { type: "string", default: "16" }, seconds: { type: "string", default: "15" }, rounds: { type: "string", default: "2" }, mode: { type: "string", default: "strict" } } });
const MODE = values.mode!;
if (MODE !== "strict" && MODE !== "best-effort") throw new Error("--mode: strict or best-effort");
const CLIENTS = Number(values.clients);
const SECONDS = Number(values.seconds);
const ROUNDS = Number(values.rounds);

interface Path {
  label: string;
  host: string;
  port: number;
  user: string;
  env: Record<string, string>;
  /** The processes whose CPU counts for this path (gateway supervisor and workers, connector). */
  pids: () => Record<string, number[]>;
}

interface Sample {
  tps: number;
  cpuUsPerTx: Record<string, number>;
}

async function pgbench(path: Path, database: string): Promise<Sample> {
  const pids = path.pids();
  const before = Object.fromEntries(Object.entries(pids).map(([k, list]) => [k, list.reduce((s, p) => s + cpuSeconds(p), 0)]));
  const out = await run("pgbench", ["-n", "-c", String(CLIENTS), "-j", "2", "-T", String(SECONDS), "-h", path.host, "-p", String(path.port), "-U", path.user, database], path.env);
  if (out.code !== 0) throw new Error(`pgbench via ${path.label} failed: ${out.stderr}`);
  const tx = Number(/number of transactions actually processed: (\d+)/.exec(out.stdout)?.[1]);
  const tps = Number(/tps = ([\d.]+)/.exec(out.stdout)?.[1]);
  const cpuUsPerTx = Object.fromEntries(
    Object.entries(pids).map(([k, list]) => [k, ((list.reduce((s, p) => s + cpuSeconds(p), 0) - before[k]!) * 1e6) / tx]),
  );
  return { tps, cpuUsPerTx };
}

function children(pid: number): number[] {
  try {
    return execFileSync("pgrep", ["-P", String(pid)], { encoding: "utf8" }).split("\n").filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

async function startStack(server: PostgresServer, database: string, storeUrl: string, workers: number): Promise<{ path: Path; stop: () => Promise<void> }> {
  const dc = newToken();
  const gateway: RunningGateway = await startGatewayProcess(
    {
      log: { level: "warn" },
      listen: { api: "127.0.0.1:0", postgres: "127.0.0.1:0" },
      store: { url: storeUrl },
      recording: { mode: MODE },
      connectors: [{ name: "bench", tokenSha256: dc.sha256 }],
      connections: [postgresConnection(server, database, { name: "bench", connector: "bench", allow: [{ identity: "bench" }] })],
    },
    tempDir("gatehouse-bench-workers-"),
    120_000,
    workers > 1 ? ["--workers", String(workers)] : [],
  );
  const connector: Proc = await startConnectorProcess({ gateway: gateway.apiUrl, name: "bench", token: dc.token, allow: `${server.host}:${server.port}`, extra: { GATEHOUSE_LOG_LEVEL: "info", ...connectorPasswordEnv(server) } });
  // One link per worker before the load starts.
  const deadline = Date.now() + 60_000;
  for (;;) {
    const response = await fetch(`${gateway.apiUrl}/api/v1/connectors`, { headers: { Authorization: `Bearer ${gateway.adminToken}` } });
    const { connectors } = (await response.json()) as { connectors: unknown[] };
    if (connectors.length >= workers) break;
    if (Date.now() > deadline) throw new Error(`the connector did not link to ${workers} workers`);
    await new Promise((r) => setTimeout(r, 100));
  }
  const created = await runCli(["keys", "create", "--identity", "bench"], { cwd: gateway.dir });
  if (created.code !== 0) throw new Error(created.stderr);
  const address = gateway.proc.lines.find((l) => l.msg === "gateway started")!.postgres as { host: string; port: number };
  const gatewayPid = gateway.proc.child.pid!;
  return {
    path: {
      label: `gateway --workers ${workers}`,
      ...address,
      user: "bench",
      env: { PGPASSWORD: created.stdout.trim(), PGSSLMODE: "disable" },
      pids: () => ({ gateway: [gatewayPid, ...children(gatewayPid)], connector: [connector.child.pid!] }),
    },
    stop: async () => {
      await connector.stop();
      await gateway.proc.stop();
      rmSync(gateway.dir, { recursive: true, force: true });
    },
  };
}

const server = await startPostgresServer();
const db = await server.createDatabase({ empty: true });
const store = await server.createDatabase({ empty: true });
const stops: Array<() => Promise<unknown>> = [() => server.stop(), () => store.drop(), () => db.drop()];
try {
  await mustRun("pgbench", ["-i", "-q", "-s", "4", server.url(db.name)]);
  const direct: Path = { label: "direct", host: server.host, port: server.port, user: server.user, env: { PGSSLMODE: "disable", ...(server.password ? { PGPASSWORD: server.password } : {}) }, pids: () => ({}) };
  const one = await startStack(server, db.name, server.url(store.name), 1);
  stops.unshift(one.stop);
  const two = await startStack(server, db.name, server.url(store.name), 2);
  stops.unshift(two.stop);
  const paths = [direct, one.path, two.path];
  const samples = new Map<string, Sample[]>(paths.map((p) => [p.label, []]));
  console.log(`pgbench tpcb-like, -c ${CLIENTS} -j 2 -T ${SECONDS}, ${ROUNDS} interleaved rounds, recording ${MODE}; load average at start ${loadAverage()}; ${server.url(db.name).replace(/\/\/[^@]*@/, "//")}`);
  for (let round = 0; round < ROUNDS; round++) {
    for (const path of paths) samples.get(path.label)!.push(await pgbench(path, path === direct ? db.name : "bench"));
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const summary: Record<string, { tps: number; gatewayCpuUsPerTx?: number; connectorCpuUsPerTx?: number }> = {};
  console.log(`\n| path | tps (median) | × direct | gateway CPU µs/tx | connector CPU µs/tx |\n| --- | ---: | ---: | ---: | ---: |`);
  const directTps = median(samples.get("direct")!.map((s) => s.tps));
  for (const path of paths) {
    const list = samples.get(path.label)!;
    const tps = median(list.map((s) => s.tps));
    const gw = list[0]!.cpuUsPerTx.gateway === undefined ? undefined : median(list.map((s) => s.cpuUsPerTx.gateway!));
    const cn = list[0]!.cpuUsPerTx.connector === undefined ? undefined : median(list.map((s) => s.cpuUsPerTx.connector!));
    summary[path.label] = { tps, ...(gw === undefined ? {} : { gatewayCpuUsPerTx: gw }), ...(cn === undefined ? {} : { connectorCpuUsPerTx: cn }) };
    console.log(`| ${path.label} | ${fmt(tps)} | ${fmt(tps / directTps, 2)} | ${fmt(gw)} | ${fmt(cn)} |`);
  }
  const gain = summary["gateway --workers 2"]!.tps / summary["gateway --workers 1"]!.tps;
  console.log(`\na second worker: ${fmt(gain, 2)}× the transactions per second of one`);
  console.log(JSON.stringify({ bench: "workers", mode: MODE, clients: CLIENTS, seconds: SECONDS, rounds: ROUNDS, summary, secondWorkerGain: gain }));
} finally {
  for (const stop of stops) await stop().catch(() => undefined);
}

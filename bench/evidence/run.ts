import { loadavg } from "node:os";
import { join } from "node:path";
import { mustRun, run } from "../lib/process-tools.js";
import { newToken, REPO_ROOT, runCli, startConnectorProcess, startGatewayProcess, tempDir, type Proc, type RunningGateway } from "@gatehouse/e2e/lib/processes";

// What write-ahead recording costs, and what the shipper sustains (issue 5's benchmark lines):
//   - pgbench -S -M extended -c 16 through a gateway with recording.mode strict and with
//     best-effort (each its own gateway + connector, store in a database on the same Postgres),
//     in interleaved rounds, median TPS; target: strict ≥ 0.8 × best-effort;
//   - the journal shipper's events/s into a real Postgres store (packages/gateway/bench/
//     shipper-throughput.mjs): a backlog shipped after an outage, and live; target ≥ 20,000/s.
// Prints a table, then a one-line JSON summary last.
//
//   pnpm build && pnpm bench evidence
//   BENCH_SECONDS (15), BENCH_ROUNDS (3), BENCH_CLIENTS (16), BENCH_SCALE (1),
//   BENCH_SHIPPER_EVENTS (200000), BENCH_ONLY (pgbench,shipper), BENCH_PGHOST/PORT/USER.

const PG = { host: process.env.BENCH_PGHOST ?? "127.0.0.1", port: Number(process.env.BENCH_PGPORT ?? 5432), user: process.env.BENCH_PGUSER ?? "postgres" };
const SECONDS = Number(process.env.BENCH_SECONDS ?? 15);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 16);
const SCALE = Number(process.env.BENCH_SCALE ?? 1);
const SHIPPER_EVENTS = Number(process.env.BENCH_SHIPPER_EVENTS ?? 200_000);
const ONLY = new Set((process.env.BENCH_ONLY ?? "pgbench,shipper").split(","));
const DATABASE = `gatehouse_bench_ev_${process.pid}`;
const IDENTITY = "bench-agent";
const MODES = ["strict", "best-effort"] as const;
type Mode = (typeof MODES)[number];



const psql = (database: string, sql: string) => mustRun("psql", ["-h", PG.host, "-p", String(PG.port), "-U", PG.user, "-d", database, "-X", "-v", "ON_ERROR_STOP=1", "-Atc", sql]);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface Stack {
  mode: Mode;
  gateway: RunningGateway;
  connector: Proc;
  host: string;
  port: number;
  key: string;
  storeDb: string;
}

async function startStack(mode: Mode): Promise<Stack> {
  const storeDb = `${DATABASE}_store_${mode.replace("-", "_")}`;
  await psql("postgres", `create database ${storeDb}`);
  const credentials = newToken();
  const gateway = await startGatewayProcess(
    {
      log: { level: "warn" },
      listen: { api: "127.0.0.1:0", postgres: "127.0.0.1:0" },
      store: { url: `postgres://${PG.user}@${PG.host}:${PG.port}/${storeDb}` },
      recording: { mode },
      connectors: [{ name: "bench", tokenSha256: credentials.sha256 }],
      connections: [{ name: "bench", protocol: "postgres", connector: "bench", target: { host: PG.host, port: PG.port, database: DATABASE, tls: "disable" }, credential: { user: PG.user }, allow: [{ identity: IDENTITY }] }],
    },
    tempDir(`gatehouse-bench-${mode}-`),
    120_000,
  );
  const connector = await startConnectorProcess({ gateway: gateway.apiUrl, name: "bench", token: credentials.token, allow: `${PG.host}:${PG.port}`, extra: { GATEHOUSE_LOG_LEVEL: "info" } });
  await connector.waitFor((l) => /connected/.test(l.msg) && !/dis/.test(l.msg), 60_000);
  const created = await runCli(["keys", "create", "--identity", IDENTITY], { cwd: gateway.dir });
  if (created.code !== 0) throw new Error(`keys create failed: ${created.stderr}`);
  const started = gateway.proc.lines.find((l) => l.msg === "gateway started")!;
  const { host, port } = started.postgres as { host: string; port: number };
  return { mode, gateway, connector, host, port, key: created.stdout.trim(), storeDb };
}

async function pgbench(target: { host: string; port: number; user: string; database: string; env: Record<string, string> }): Promise<number> {
  const out = await run("pgbench", ["-h", target.host, "-p", String(target.port), "-U", target.user, "-n", "-S", "-M", "extended", "-c", String(CLIENTS), "-j", "2", "-T", String(SECONDS), target.database], target.env);
  const tps = Number(/^tps = ([\d.]+)/m.exec(out.stdout)?.[1]);
  const failed = Number(/^number of failed transactions: (\d+)/m.exec(out.stdout)?.[1] ?? 0);
  if (out.code !== 0 || !Number.isFinite(tps) || failed > 0) throw new Error(`pgbench failed (exit ${out.code}):\n${out.stderr}${out.stdout}`);
  return tps;
}

const summary: Record<string, unknown> = { loadAverageAtStart: Number(loadavg()[0]!.toFixed(1)) };

if (ONLY.has("pgbench")) {
  await psql("postgres", `create database ${DATABASE}`);
  const stacks: Stack[] = [];
  try {
    await mustRun("pgbench", ["-h", PG.host, "-p", String(PG.port), "-U", PG.user, "-i", "-q", "-s", String(SCALE), DATABASE]);
    for (const mode of MODES) stacks.push(await startStack(mode));
    const tps: Record<string, number[]> = { direct: [], strict: [], "best-effort": [] };
    for (let round = 0; round < ROUNDS; round++) {
      tps.direct!.push(await pgbench({ host: PG.host, port: PG.port, user: PG.user, database: DATABASE, env: { PGSSLMODE: "disable" } }));
      // Alternate which mode goes first, so neither always gets the warmer (or busier) slot.
      const order = round % 2 === 0 ? stacks : [...stacks].reverse();
      for (const s of order) tps[s.mode]!.push(await pgbench({ host: s.host, port: s.port, user: IDENTITY, database: "bench", env: { PGSSLMODE: "disable", PGPASSWORD: s.key } }));
      process.stderr.write(`round ${round + 1}/${ROUNDS}: ${Object.entries(tps).map(([k, v]) => `${k} ${v.at(-1)!.toFixed(0)}`).join(", ")}\n`);
    }
    const strict = median(tps.strict!);
    const bestEffort = median(tps["best-effort"]!);
    const direct = median(tps.direct!);
    console.log(`pgbench -S -M extended -c ${CLIENTS}, ${SECONDS} s × ${ROUNDS} rounds (median TPS)`);
    console.log(`  direct                 ${direct.toFixed(0)}`);
    console.log(`  gateway, best-effort   ${bestEffort.toFixed(0)}`);
    console.log(`  gateway, strict        ${strict.toFixed(0)}   strict / best-effort = ${(strict / bestEffort).toFixed(2)} (target ≥ 0.80)`);
    summary.pgbench = { clients: CLIENTS, seconds: SECONDS, rounds: ROUNDS, direct, bestEffort, strict, ratio: strict / bestEffort, runs: tps };
    // Everything pgbench ran is in the record: count what the stores got.
    for (const s of stacks) {
      const events = Number(await psql(s.storeDb, "select count(*) from events"));
      (summary.pgbench as Record<string, unknown>)[`${s.mode}EventsRecorded`] = events;
    }
  } finally {
    for (const s of stacks) {
      await s.connector.stop();
      await s.gateway.proc.stop();
      await psql("postgres", `drop database if exists ${s.storeDb} with (force)`).catch(() => undefined);
    }
    await psql("postgres", `drop database if exists ${DATABASE} with (force)`).catch(() => undefined);
  }
}

if (ONLY.has("shipper")) {
  const script = join(REPO_ROOT, "packages/gateway/bench/shipper-throughput.mjs");
  const out = await mustRun(process.execPath, [script, "--events", String(SHIPPER_EVENTS)], { SHIPPER_BENCH_URL: `postgres://${PG.user}@${PG.host}:${PG.port}/postgres` });
  const lines = out.trim().split("\n");
  const result = (JSON.parse(lines.at(-1)!) as { shipper: { backlog: { eventsPerSecond: number }; live: Record<string, number> } }).shipper;
  console.log(`shipper into Postgres (target ≥ 20,000 events/s)`);
  for (const line of lines.slice(0, -1)) console.log(`  ${line}`);
  summary.shipper = result;
}

summary.loadAverageAtEnd = Number(loadavg()[0]!.toFixed(1));
console.log(JSON.stringify({ evidence: summary }));

// The bookkeeping every protocol benchmark does the same way: CPU time of the
// path's processes, interleaved rounds with the median kept, timed client runs,
// and the two tables (throughput per path with its ratio to direct, CPU per
// unit of work). What is measured and how the client is driven stay in each
// bench/<protocol>/run.ts.
import { spawn } from "node:child_process";
import { loadavg } from "node:os";
import { cpuSeconds, ioCalls } from "./process-tools.js";

/** A place the load goes through: `procs` are the processes on it whose CPU time is measured (name → pid). */
export interface MeasuredPath {
  label: string;
  procs?: Record<string, number>;
}

/** One load run at a client count: its rate, the mean time a client waited, and CPU µs per unit of each process. */
export interface LoadResult {
  perSecond: number;
  latencyUs: number;
  cpuUsPerUnit?: Record<string, number>;
  /** Read and write system calls per unit of each process (its sockets and files). */
  callsPerUnit?: Record<string, { reads: number; writes: number }>;
}

/** What each path did: load runs by client count (`c1`, `c16`…), and the big read's MB/s and CPU ms per MB. */
export interface PathResults {
  load: Record<string, LoadResult>;
  readMBps?: number;
  readCpuMsPerMB?: Record<string, number>;
}

export function mapValues<T, U>(record: Record<string, T>, f: (value: T, key: string) => U): Record<string, U> {
  return Object.fromEntries(Object.entries(record).map(([k, v]) => [k, f(v, k)]));
}

/** Starts measuring the CPU time of a path's processes; the returned function gives the seconds each spent since (undefined: nothing measured). */
export function cpuMeter(path: MeasuredPath): () => Record<string, number> | undefined {
  if (!path.procs) return () => undefined;
  const procs = path.procs;
  const start = mapValues(procs, cpuSeconds);
  return () => mapValues(procs, (pid, name) => cpuSeconds(pid) - start[name]!);
}

/** Starts counting the read and write system calls of a path's processes; the returned function gives the counts since. */
export function callMeter(path: MeasuredPath): () => Record<string, { reads: number; writes: number }> | undefined {
  if (!path.procs) return () => undefined;
  const procs = path.procs;
  const start = mapValues(procs, ioCalls);
  return () =>
    mapValues(procs, (pid, name) => {
      const now = ioCalls(pid);
      return { reads: now.reads - start[name]!.reads, writes: now.writes - start[name]!.writes };
    });
}

/** CPU seconds spent (and system calls made) → per unit of work (statement, transaction). */
export function perUnitUs(
  spent: Record<string, number> | undefined,
  units: number,
  calls?: Record<string, { reads: number; writes: number }>,
): Pick<LoadResult, "cpuUsPerUnit" | "callsPerUnit"> {
  return {
    ...(spent ? { cpuUsPerUnit: mapValues(spent, (seconds) => (seconds * 1e6) / units) } : {}),
    ...(calls ? { callsPerUnit: mapValues(calls, (c) => ({ reads: c.reads / units, writes: c.writes / units })) } : {}),
  };
}

/** The 1-minute load average: other work on the machine shows in every number of a benchmark. */
export const loadAverage = (): string => loadavg()[0]!.toFixed(1);

/**
 * Runs `load(path, clients)` for every client count and path, `rounds` times, interleaved so that
 * background load on the machine spreads over every path alike; keeps, per path and client count,
 * the run with the median rate.
 */
export async function interleavedRounds<P extends MeasuredPath>(
  paths: readonly P[],
  clientCounts: readonly number[],
  rounds: number,
  load: (path: P, clients: number) => Promise<LoadResult>,
  describe: (path: P, clients: number, result: LoadResult) => string,
): Promise<Record<string, Record<string, LoadResult>>> {
  const runs = new Map<string, LoadResult[]>();
  for (let round = 0; round < rounds; round++) {
    for (const clients of clientCounts) {
      for (const path of paths) {
        const result = await load(path, clients);
        const key = `${path.label}\0c${clients}`;
        runs.set(key, [...(runs.get(key) ?? []), result]);
        console.error(`${describe(path, clients, result)} (load average ${loadAverage()})`);
      }
    }
  }
  const out: Record<string, Record<string, LoadResult>> = {};
  for (const [key, list] of runs) {
    const [label, count] = key.split("\0") as [string, string];
    (out[label] ??= {})[count] = [...list].sort((a, b) => a.perSecond - b.perSecond)[Math.floor(list.length / 2)]!;
  }
  return out;
}

/**
 * Runs a client (`command args`, output discarded) `runs` times reading `bytesPerRun`; the median
 * run's seconds, and the CPU ms per MB (over all runs) of the path's processes.
 */
export async function timedReads(
  path: MeasuredPath,
  command: string,
  args: readonly string[],
  env: Record<string, string>,
  runs: number,
  bytesPerRun: number,
): Promise<{ MBps: number; cpuMsPerMB?: Record<string, number> }> {
  const times: number[] = [];
  const cpu = cpuMeter(path);
  for (let i = 0; i < runs; i++) {
    const started = process.hrtime.bigint();
    const code = await new Promise<number | null>((resolve, reject) => {
      const child = spawn(command, args, { env: { ...process.env, ...env }, stdio: ["ignore", "ignore", "inherit"] });
      child.once("error", reject);
      child.once("exit", resolve);
    });
    if (code !== 0) throw new Error(`${command} read through ${path.label} exited ${code}`);
    times.push(Number(process.hrtime.bigint() - started) / 1e9);
  }
  const spent = cpu();
  times.sort((a, b) => a - b);
  const mb = (bytesPerRun * runs) / 1e6;
  const median = times[Math.floor(times.length / 2)]!;
  return { MBps: bytesPerRun / 1e6 / median, ...(spent ? { cpuMsPerMB: mapValues(spent, (seconds) => (seconds * 1e3) / mb) } : {}) };
}

export const fmt = (n: number | undefined, digits = 0): string => (n === undefined || !Number.isFinite(n) ? "-" : n.toFixed(digits));
export const signed = (n: number): string => `${n >= 0 ? "+" : ""}${fmt(n)}`;
export const ratio = (a: number | undefined, b: number | undefined): number | undefined => (a !== undefined && b !== undefined ? a / b : undefined);

function print(rows: readonly string[][], firstWidth: number, width: number): void {
  for (const row of rows) console.log(row.map((c, i) => c.padEnd(i === 0 ? firstWidth : width)).join(""));
}

/**
 * The throughput table: per path its rate and mean latency at each client count and its read MB/s,
 * then per path other than direct its ratio to direct (rate, added µs, read). `unit` names the rate ("TPS", "stmt/s").
 */
export function printThroughput(results: Record<string, PathResults>, clientCounts: readonly number[], unit: string): void {
  const direct = results.direct;
  const rows: string[][] = [["path", ...clientCounts.flatMap((c) => [`-c ${c} ${unit}`, `-c ${c} mean µs`]), "200 MB read MB/s"]];
  for (const [label, r] of Object.entries(results)) {
    rows.push([label, ...clientCounts.flatMap((c) => [fmt(r.load[`c${c}`]?.perSecond), fmt(r.load[`c${c}`]?.latencyUs)]), fmt(r.readMBps)]);
  }
  for (const [label, r] of Object.entries(results)) {
    if (label === "direct") continue;
    rows.push([
      `${label} / direct`,
      ...clientCounts.flatMap((c) => {
        const here = r.load[`c${c}`];
        const there = direct?.load[`c${c}`];
        return [fmt(ratio(here?.perSecond, there?.perSecond), 2), here && there ? signed(here.latencyUs - there.latencyUs) : "-"];
      }),
      fmt(ratio(r.readMBps, direct?.readMBps), 2),
    ]);
  }
  if (Object.keys(results).length) print(rows, 30, 18);
}

/** The CPU table: per path and measured process, µs per unit of work at each client count and ms per MB read. `unit`: "stmt", "tx". */
export function printCpu(results: Record<string, PathResults>, clientCounts: readonly number[], unit: string): void {
  const rows: string[][] = [["CPU per unit of work", ...clientCounts.map((c) => `-c ${c} µs/${unit}`), "read ms/MB"]];
  for (const [label, r] of Object.entries(results)) {
    const names = Object.keys(Object.values(r.load).find((l) => l.cpuUsPerUnit)?.cpuUsPerUnit ?? r.readCpuMsPerMB ?? {});
    for (const name of names) {
      rows.push([
        `${label}: ${name}`,
        ...clientCounts.map((c) => {
          const load = r.load[`c${c}`];
          const calls = load?.callsPerUnit?.[name];
          return `${fmt(load?.cpuUsPerUnit?.[name])}${calls ? ` (${fmt(calls.reads, 1)}/${fmt(calls.writes, 1)})` : ""}`;
        }),
        fmt(r.readCpuMsPerMB?.[name], 1),
      ]);
    }
  }
  if (rows.length === 1) return;
  console.log("");
  console.log(`(in parentheses: read/write system calls per ${unit})`);
  print(rows, 36, 20);
  console.log("");
}

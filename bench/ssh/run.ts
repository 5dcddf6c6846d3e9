import { spawn } from "node:child_process";
import { rmSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { startSshd, type SshdServer } from "@gatehouse/test-servers";
import { newToken, runCli, startConnectorProcess, startGatewayProcess, tempDir, type Proc, type RunningGateway } from "@gatehouse/e2e/lib/processes";
import { sshEndpoint, sshEnv, type SshEndpoint } from "@gatehouse/e2e/lib/ssh-clients";
import { letLoginUserReadKeys, newKeyPair, remoteDir, resourceUser } from "@gatehouse/e2e/lib/ssh-stack";
import { cpuSeconds, mustRun } from "../lib/process-tools.js";

// SSH through gateway + connector (separate processes, embedded store, every
// channel recorded) against the same OpenSSH sshd directly, in one run, with
// the real OpenSSH clients:
//   - 1 GiB `cat` of a file over exec (`ssh HOST 'cat FILE'`, stdout discarded): MB/s
//   - the same file over `scp` (SFTP, OpenSSH 9's default) to /dev/null: MB/s
//   - `ssh HOST true` (TCP connect + key exchange + auth + a channel + exec): latency, median and p90
//   - CPU ms per MB of the gateway and the connector (user + system, all threads)
// The sshd is a throwaway one on a free port (@gatehouse/test-servers). Prints
// a table, then a one-line JSON summary last.

const FILE_BYTES = Number(process.env.BENCH_FILE_BYTES ?? 1024 * 1024 * 1024);
/** Runs of each transfer per path (the median is reported). */
const RUNS = Number(process.env.BENCH_RUNS ?? 1);
const ROUND_TRIPS = Number(process.env.BENCH_ROUNDTRIPS ?? 20);
/** Comma-separated subset of exec,scp,roundtrip. */
const ONLY = new Set((process.env.BENCH_ONLY ?? "exec,scp,roundtrip").split(","));
/** recording.mode for the gateway ("strict" or "best-effort"); unset: the gateway's default (strict). */
const RECORDING = process.env.BENCH_RECORDING;
const IDENTITY = "bench-agent";

interface Path {
  label: "direct" | "gateway";
  endpoint: SshEndpoint;
  /** The processes on this path whose CPU time is measured (name → pid). */
  procs?: Record<string, number>;
}

interface Transfer {
  MBps: number;
  /** CPU ms per MB moved, per process on the path. */
  cpuMsPerMB?: Record<string, number>;
}

const loadAverage = () => loadavg()[0]!.toFixed(1);
const mapValues = <T, U>(r: Record<string, T>, f: (v: T, k: string) => U): Record<string, U> => Object.fromEntries(Object.entries(r).map(([k, v]) => [k, f(v, k)]));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const percentile = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;

function cpuMeter(path: Path): () => Record<string, number> | undefined {
  if (!path.procs) return () => undefined;
  const procs = path.procs;
  const start = mapValues(procs, cpuSeconds);
  return () => mapValues(procs, (pid, name) => cpuSeconds(pid) - start[name]!);
}

/** Runs an OpenSSH client with stdout discarded; its wall time in seconds (fails unless it exits 0). */
function timed(command: "ssh" | "scp", args: string[], e: SshEndpoint): Promise<number> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(command, ["-F", e.configFile, ...args], { env: sshEnv(e), stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr!.setEncoding("utf8").on("data", (t: string) => (stderr += t));
    child.once("error", reject);
    child.once("exit", (code) => (code === 0 ? resolve(Number(process.hrtime.bigint() - started) / 1e9) : reject(new Error(`${command} ${args.join(" ")} via ${e.label} exited ${code}: ${stderr}`))));
  });
}

async function transfer(path: Path, run: () => Promise<number>): Promise<Transfer> {
  const times: number[] = [];
  const cpu = cpuMeter(path);
  for (let i = 0; i < RUNS; i++) times.push(await run());
  const spent = cpu();
  const mb = FILE_BYTES / 1e6;
  return { MBps: mb / median(times), ...(spent ? { cpuMsPerMB: mapValues(spent, (s) => (s * 1e3) / (mb * RUNS)) } : {}) };
}

async function roundTrips(path: Path): Promise<{ medianMs: number; p90Ms: number; cpuMsPerLogin?: Record<string, number> }> {
  const times: number[] = [];
  await timed("ssh", [path.endpoint.alias, "true"], path.endpoint); // warm: the first login reads keys from the store
  const cpu = cpuMeter(path);
  for (let i = 0; i < ROUND_TRIPS; i++) times.push((await timed("ssh", [path.endpoint.alias, "true"], path.endpoint)) * 1e3);
  const spent = cpu();
  return { medianMs: median(times), p90Ms: percentile(times, 0.9), ...(spent ? { cpuMsPerLogin: mapValues(spent, (s) => (s * 1e3) / ROUND_TRIPS) } : {}) };
}

/** A gateway with an SSH listener and one connection to the sshd, its connector, and a key registered for the bench identity. */
async function startStack(sshd: SshdServer): Promise<{ gateway: RunningGateway; connector: Proc; endpoint: SshEndpoint }> {
  const credentials = newToken();
  const gateway = await startGatewayProcess(
    {
      log: { level: "warn" },
      listen: { api: "127.0.0.1:0", ssh: "127.0.0.1:0" },
      connectors: [{ name: "bench", tokenSha256: credentials.sha256 }],
      connections: [
        {
          name: "bench",
          protocol: "ssh",
          connector: "bench",
          target: { host: sshd.host, port: sshd.port, hostKey: sshd.knownHostsLine },
          credential: { user: resourceUser(sshd), privateKey: `file:${sshd.clientKeyPath}` },
          allow: [{ identity: IDENTITY }],
        },
      ],
      ...(RECORDING ? { recording: { mode: RECORDING } } : {}),
    },
    tempDir("gatehouse-bench-ssh-"),
    120_000,
  );
  const connector = await startConnectorProcess({ gateway: gateway.apiUrl, name: "bench", token: credentials.token, allow: `${sshd.host}:${sshd.port}`, extra: { GATEHOUSE_LOG_LEVEL: "info" } });
  try {
    await connector.waitFor((l) => /connected/.test(l.msg) && !/dis/.test(l.msg), 60_000);
    const key = newKeyPair("bench");
    const added = await runCli(["keys", "add-ssh", "--identity", IDENTITY, key.publicKeyPath], { cwd: gateway.dir });
    if (added.code !== 0) throw new Error(`keys add-ssh failed: ${added.stderr}`);
    const listen = gateway.proc.lines.find((l) => l.msg === "gateway started")?.ssh as { host: string; port: number } | undefined;
    if (!listen) throw new Error("the gateway did not report an ssh listener");
    const hostKey = await fetch(`${gateway.apiUrl}/api/v1/ssh/host-key`, { headers: { Authorization: `Bearer ${gateway.adminToken}` } }).then((r) => (r.ok ? (r.json() as Promise<{ publicKey: string }>) : undefined));
    const line = hostKey?.publicKey ?? (await mustRun("cat", [join(gateway.dir, "data", "ssh", "ssh_host_ed25519_key.pub")]));
    const endpoint = sshEndpoint({
      label: "gateway",
      alias: "gw",
      host: listen.host,
      port: listen.port,
      user: `${IDENTITY}@bench`,
      knownHostsLine: `[${listen.host}]:${listen.port} ${line.trim().split(/\s+/).slice(0, 2).join(" ")}`,
      identityFile: key.privateKeyPath,
    });
    return { gateway, connector, endpoint };
  } catch (error) {
    await connector.stop();
    await gateway.proc.stop();
    throw error;
  }
}

// ---------------------------------------------------------------- main

const fmt = (n: number | undefined, digits = 0) => (n === undefined || !Number.isFinite(n) ? "-" : n.toFixed(digits));

const sshd = await startSshd({ password: true });
letLoginUserReadKeys(sshd);
const fileDir = remoteDir("gatehouse-bench-ssh-file-");
const file = join(fileDir, "payload.bin");
const cleanups: Array<() => Promise<unknown>> = [() => sshd.stop(), async () => rmSync(fileDir, { recursive: true, force: true })];
const results: Record<string, { exec?: Transfer; scp?: Transfer; roundTrip?: Awaited<ReturnType<typeof roundTrips>> }> = {};
const loadAtStart = loadAverage();
let gatewaySkipped: string | undefined;

try {
  // Random bytes (ssh does not compress by default, but nothing should get an easy ride); cat reads them from the page cache.
  await mustRun("sh", ["-c", `head -c ${FILE_BYTES} /dev/urandom > ${file}`]);
  // The file's dirty pages written back now, not during the first timed transfer (that made it 3× slower).
  await mustRun("sync", []);
  await mustRun("chmod", ["644", file]);
  const paths: Path[] = [{ label: "direct", endpoint: sshEndpoint({ label: "direct", alias: "direct", host: sshd.host, port: sshd.port, user: resourceUser(sshd), knownHostsLine: sshd.knownHostsLine, identityFile: sshd.clientKeyPath }) }];
  try {
    const stack = await startStack(sshd);
    cleanups.unshift(() => stack.connector.stop(), () => stack.gateway.proc.stop());
    paths.push({ label: "gateway", endpoint: stack.endpoint, procs: { gateway: stack.gateway.proc.child.pid!, connector: stack.connector.child.pid! } });
  } catch (error) {
    gatewaySkipped = (error as Error).message.split("\n").slice(0, 4).join(" ");
    console.error(`gateway rows skipped: ${gatewaySkipped}`);
  }
  for (const p of paths) {
    results[p.label] = {};
    await timed("ssh", [p.endpoint.alias, "true"], p.endpoint); // every path answers before anything is timed
  }
  // Interleaved, so background load on the machine spreads over every path alike.
  if (ONLY.has("exec")) {
    for (const p of paths) {
      results[p.label]!.exec = await transfer(p, () => timed("ssh", [p.endpoint.alias, `cat ${file}`], p.endpoint));
      console.error(`exec cat ${p.label}: ${fmt(results[p.label]!.exec!.MBps)} MB/s (load average ${loadAverage()})`);
    }
  }
  if (ONLY.has("scp")) {
    for (const p of paths) {
      results[p.label]!.scp = await transfer(p, () => timed("scp", ["-q", `${p.endpoint.alias}:${file}`, "/dev/null"], p.endpoint));
      console.error(`scp ${p.label}: ${fmt(results[p.label]!.scp!.MBps)} MB/s (load average ${loadAverage()})`);
    }
  }
  if (ONLY.has("roundtrip")) {
    for (const p of paths) {
      results[p.label]!.roundTrip = await roundTrips(p);
      console.error(`ssh true ${p.label}: median ${fmt(results[p.label]!.roundTrip!.medianMs, 1)} ms (load average ${loadAverage()})`);
    }
  }
} finally {
  for (const cleanup of cleanups) await cleanup().catch((err: unknown) => console.error("cleanup:", err));
}

// ---------------------------------------------------------------- report

const d = results.direct;
const g = results.gateway;
const ratio = (a: number | undefined, b: number | undefined) => (a !== undefined && b !== undefined ? a / b : undefined);
const loadAtEnd = loadAverage();
console.log(`OpenSSH sshd 127.0.0.1:${sshd.port}; recording ${RECORDING ?? "default (strict)"}; ${FILE_BYTES} bytes, median of ${RUNS}; ssh true × ${ROUND_TRIPS}; load average ${loadAtStart} at the start, ${loadAtEnd} at the end`);
const rows: string[][] = [["path", "exec cat MB/s", "scp MB/s", "ssh true median ms", "ssh true p90 ms"]];
for (const [label, r] of Object.entries(results)) rows.push([label, fmt(r.exec?.MBps), fmt(r.scp?.MBps), fmt(r.roundTrip?.medianMs, 1), fmt(r.roundTrip?.p90Ms, 1)]);
if (g) rows.push(["gateway / direct", fmt(ratio(g.exec?.MBps, d?.exec?.MBps), 2), fmt(ratio(g.scp?.MBps, d?.scp?.MBps), 2), g.roundTrip && d?.roundTrip ? `+${fmt(g.roundTrip.medianMs - d.roundTrip.medianMs, 1)}` : "-", ""]);
for (const row of rows) console.log(row.map((c, i) => c.padEnd(i === 0 ? 20 : 22)).join(""));
if (g) {
  console.log("");
  const cpuRows: string[][] = [["CPU per unit of work", "exec ms/MB", "scp ms/MB", "ms per ssh true"]];
  for (const name of ["gateway", "connector"]) cpuRows.push([name, fmt(g.exec?.cpuMsPerMB?.[name], 2), fmt(g.scp?.cpuMsPerMB?.[name], 2), fmt(g.roundTrip?.cpuMsPerLogin?.[name], 1)]);
  for (const row of cpuRows) console.log(row.map((c, i) => c.padEnd(i === 0 ? 24 : 18)).join(""));
  console.log("");
}
console.log(
  JSON.stringify({
    bench: "ssh",
    recording: RECORDING ?? "default (strict)",
    fileBytes: FILE_BYTES,
    runs: RUNS,
    roundTrips: ROUND_TRIPS,
    loadAverage: { start: Number(loadAtStart), end: Number(loadAtEnd) },
    gatewaySkipped: gatewaySkipped ?? null,
    results,
    ratio: { exec: ratio(g?.exec?.MBps, d?.exec?.MBps), scp: ratio(g?.scp?.MBps, d?.scp?.MBps), addedRoundTripMs: g?.roundTrip && d?.roundTrip ? g.roundTrip.medianMs - d.roundTrip.medianMs : undefined },
  }),
);

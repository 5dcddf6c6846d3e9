import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { Agent, request, type RequestOptions } from "node:https";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { CLI, newToken, runCli, startConnectorProcess, startGatewayProcess, tempDir, type Proc, type RunningGateway } from "@gatehouse/e2e/lib/processes";
import { cpuMeter, fmt, loadAverage, mapValues, ratio, type MeasuredPath } from "../lib/measure.js";
import { cpuSeconds, run } from "../lib/process-tools.js";
import { BIG_LOG_POD, GET_POD, TOKENS, type ServerReady, type ServerSettings } from "./fixtures.js";

// Kubernetes through gateway + connector (separate processes, embedded store, every API request
// recorded as an event) against the same API server directly, in one run, interleaved rounds:
//   - `kubectl get pods -A`, wall ms per run (median, p90), with a warm discovery cache
//     (--cache-dir, one directory per path); through the gateway both with the kubeconfig
//     `gatehouse kubeconfig` writes (kubectl runs `gatehouse token --exec-credential` once per
//     run) and with the access key as a static token in the kubeconfig (no exec plugin)
//   - BENCH_REQUESTS (1,000) GETs of one pod at concurrency 16, a Node https client with a
//     keep-alive agent (maxSockets 16): requests/s, p50/p99 latency, CPU µs per request
//   - one pod log of BENCH_LOG_BYTES (100 MB) read by a Node https client: MB/s, CPU ms per MB
// CPU time (user + system, all threads, /proc/PID/stat) of the gateway, the connector, the API
// server and this process (the load generator). The API server is e2e's test API server
// (e2e/lib/kube-apiserver) in a child process of its own (api-server.ts). Prints the tables,
// then a one-line JSON summary last.
//
// `--quick`: one round, 5 kubectl runs, 200 requests, a 10 MB log (a smoke run, not a measurement).

const QUICK = process.argv.includes("--quick");
/** Interleaved rounds; kubectl's runs are pooled over them, the GET and log rows keep the round with the median rate. */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? (QUICK ? 1 : 3));
/** kubectl runs per path, over all rounds (each round runs its share). */
const KUBECTL_RUNS = Number(process.env.BENCH_KUBECTL_RUNS ?? (QUICK ? 5 : 20));
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? (QUICK ? 200 : 1000));
/** GETs before each measured run (every socket and session open, the JIT warm), not counted. */
const WARMUP = Number(process.env.BENCH_WARMUP ?? 200);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);
const LOG_BYTES = Number(process.env.BENCH_LOG_BYTES ?? (QUICK ? 10_000_000 : 100_000_000));
/**
 * Length of one log line. The test API server writes a log one `write` per line, all at once
 * (no backpressure), so the line length sets its own cost: 1,000-byte lines cost it 18–37 ms of
 * CPU per MB and cap the direct read at 14–29 MB/s; 16 KiB lines, 11–20 ms and 38–90 MB/s. The
 * gateway and the connector relay bytes as they read them (up to 64 KiB at a time), whatever the lines.
 */
const LOG_LINE_BYTES = Number(process.env.BENCH_LOG_LINE_BYTES ?? 16384);
/** Comma-separated subset of kubectl,get,logs. */
const ONLY = new Set((process.env.BENCH_ONLY ?? "kubectl,get,logs").split(","));
/** recording.mode for the gateway ("strict" or "best-effort"); unset: the gateway's default (strict). */
const RECORDING = process.env.BENCH_RECORDING;
const IDENTITY = "agent";
const CONNECTION = "k8s";
const here = dirname(fileURLToPath(import.meta.url));

interface Path extends MeasuredPath {
  label: "direct" | "gateway";
  /** The API's base URL: the API server's, or the gateway's https://HOST:PORT/k8s/CONNECTION. */
  base: string;
  /** The bearer credential a Node client sends. */
  bearer: string;
  /** The CA of the certificate at `base`. */
  caPem: string;
}

interface KubectlPath {
  label: string;
  /** Its path in the other workloads (whose processes are measured). */
  path: Path;
  kubeconfig: string;
  cacheDir: string;
  env: Record<string, string>;
}

interface KubectlResult {
  runs: number;
  medianMs: number;
  p90Ms: number;
  /** CPU ms per kubectl run, per measured process. */
  cpuMsPerRun?: Record<string, number>;
}

interface GetResult {
  requests: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU µs per request, per measured process and this process ("client"). */
  cpuUsPerRequest: Record<string, number>;
}

interface LogResult {
  bytes: number;
  MBps: number;
  /** CPU ms per MB, per measured process and this process ("client"). */
  cpuMsPerMB: Record<string, number>;
}

const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const percentile = (xs: readonly number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(xs.length * p))]!;
const medianBy = <T>(xs: readonly T[], key: (x: T) => number): T => [...xs].sort((a, b) => key(a) - key(b))[Math.floor(xs.length / 2)]!;
const clientCpuSeconds = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- the API server, in its own process

async function startApiServer(): Promise<{ ready: ServerReady; child: ChildProcess; stop: () => Promise<void> }> {
  const settings: ServerSettings = { logBytes: LOG_BYTES, logLineBytes: LOG_LINE_BYTES, extraPods: 10 };
  const child = spawn(process.execPath, ["--import", "tsx", join(here, "api-server.ts")], {
    cwd: here,
    env: { ...process.env, BENCH_KUBE_SERVER: JSON.stringify(settings) },
    stdio: ["pipe", "pipe", "inherit"],
  });
  const exited = new Promise<number | null>((resolve) => child.once("exit", resolve));
  const ready = await new Promise<ServerReady>((resolve, reject) => {
    let buffered = "";
    child.stdout!.setEncoding("utf8").on("data", (text: string) => {
      buffered += text;
      const nl = buffered.indexOf("\n");
      if (nl >= 0) resolve(JSON.parse(buffered.slice(0, nl)) as ServerReady);
    });
    void exited.then((code) => reject(new Error(`the API server process exited (${code}) before it listened`)));
  });
  return {
    ready,
    child,
    stop: async () => {
      child.stdin!.end(); // it closes when its stdin does
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** A kubeconfig with a static bearer token (the direct path; the gateway path without the exec plugin). */
function tokenKubeconfig(server: string, caPem: string, token: string): string {
  return [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    "- name: bench",
    "  cluster:",
    `    server: ${server}`,
    `    certificate-authority-data: ${Buffer.from(caPem).toString("base64")}`,
    "users:",
    "- name: bench",
    "  user:",
    `    token: ${token}`,
    "contexts:",
    "- name: bench",
    "  context:",
    "    cluster: bench",
    "    user: bench",
    "    namespace: default",
    "current-context: bench",
    "",
  ].join("\n");
}

// ---------------------------------------------------------------- the gateway

interface Stack {
  gateway: RunningGateway;
  connector: Proc;
  listen: { host: string; port: number };
  accessKey: string;
  certificatePem: string;
  /** The kubeconfig `gatehouse kubeconfig` wrote (exec plugin: a wrapper running the built CLI). */
  kubeconfig: string;
  /** That wrapper: the `gatehouse` command kubectl runs. */
  gatehouse: string;
}

/** A gateway with a Kubernetes listener and one connection to the API server (as e2e/lib/kube-stack.ts), its connector, an access key. */
async function startStack(api: ServerReady, dir: string): Promise<Stack> {
  const connectorKubeconfig = join(dir, "connector.kubeconfig");
  writeFileSync(connectorKubeconfig, tokenKubeconfig(api.url, api.caPem, TOKENS.connector));
  const server = new URL(api.url);
  const target = { host: server.hostname, port: Number(server.port), kubeconfig: connectorKubeconfig };
  const credentials = newToken();
  const gateway = await startGatewayProcess(
    {
      log: { level: "warn" },
      listen: { api: "127.0.0.1:0", kubernetes: "127.0.0.1:0" },
      connectors: [{ name: "dc1", tokenSha256: credentials.sha256 }],
      connections: [{ name: CONNECTION, protocol: "kubernetes", connector: "dc1", target, allow: [{ identity: IDENTITY }] }],
      ...(RECORDING ? { recording: { mode: RECORDING } } : {}),
    },
    tempDir("gatehouse-bench-kube-"),
    120_000,
  );
  const connector = await startConnectorProcess({ gateway: gateway.apiUrl, name: "dc1", token: credentials.token, allow: `${target.host}:${target.port}`, extra: { GATEHOUSE_LOG_LEVEL: "info" } });
  try {
    await connector.waitFor((l) => /connected/.test(l.msg) && !/dis/.test(l.msg), 60_000);
    const listen = gateway.proc.lines.find((l) => l.msg === "gateway started")?.kubernetes as { host: string; port: number } | undefined;
    if (!listen) throw new Error("the gateway did not report a kubernetes listener");
    const cli = (args: string[]) => runCli(args, { cwd: gateway.dir });
    const created = await cli(["keys", "create", "--identity", IDENTITY]);
    if (created.code !== 0) throw new Error(`keys create failed: ${created.stderr}`);
    const response = await fetch(`${gateway.apiUrl}/api/v1/kubernetes/endpoint`, { headers: { Authorization: `Bearer ${gateway.adminToken}` } });
    if (!response.ok) throw new Error(`GET /api/v1/kubernetes/endpoint: ${response.status} ${await response.text()}`);
    const { certificatePem } = (await response.json()) as { certificatePem: string };
    // What kubectl runs as its exec plugin: the gatehouse command, as an installed one would be.
    const gatehouse = join(dir, "gatehouse");
    writeFileSync(gatehouse, `#!/bin/sh\nexec "${process.execPath}" "${CLI}" "$@"\n`);
    chmodSync(gatehouse, 0o755);
    const kubeconfig = join(dir, "gateway.kubeconfig");
    const written = await cli(["kubeconfig", "--connection", CONNECTION, "--identity", IDENTITY, "--command", gatehouse, "--out", kubeconfig]);
    if (written.code !== 0) throw new Error(`gatehouse kubeconfig failed (${written.code}): ${written.stderr}`);
    return { gateway, connector, listen, accessKey: created.stdout.trim(), certificatePem, kubeconfig, gatehouse };
  } catch (error) {
    await connector.stop();
    await gateway.proc.stop();
    throw error;
  }
}

// ---------------------------------------------------------------- measuring

/**
 * Waits (at most 5 s) until the measured processes are idle: what the gateway does after a
 * workload (ending sessions, recording, shipping to the store) is not counted in the next one
 * and does not compete with it.
 */
async function settle(pids: readonly number[]): Promise<void> {
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline) {
    const before = pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
    await sleep(250);
    if (pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0) - before <= 0.02) return;
  }
}

/** Starts measuring the path's processes and this one; the returned function gives the CPU seconds each spent since. */
function meter(path: Path): () => Record<string, number> {
  const procs = cpuMeter(path);
  const client = clientCpuSeconds();
  return () => ({ ...procs(), client: clientCpuSeconds() - client });
}

async function kubectlRuns(k: KubectlPath, runs: number): Promise<{ ms: number[]; cpu: Record<string, number> | undefined }> {
  const ms: number[] = [];
  const cpu = cpuMeter(k.path);
  for (let i = 0; i < runs; i++) {
    const out = await run("kubectl", ["--kubeconfig", k.kubeconfig, "--cache-dir", k.cacheDir, "get", "pods", "-A"], k.env);
    if (out.code !== 0 || !out.stdout.includes(GET_POD.name)) throw new Error(`kubectl get pods -A through ${k.label} exited ${out.code}:\n${out.stderr}${out.stdout}`);
    ms.push(out.seconds * 1e3);
  }
  return { ms, cpu: cpu() };
}

/** The exec plugin alone, as kubectl runs it once per run: `gatehouse token --exec-credential`; wall ms per run. */
async function execPluginRuns(gatehouse: string, env: Record<string, string>, runs: number): Promise<number[]> {
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const out = await run(gatehouse, ["token", "--exec-credential", "--identity", IDENTITY], env);
    if (out.code !== 0 || !out.stdout.includes("ExecCredential")) throw new Error(`gatehouse token --exec-credential exited ${out.code}:\n${out.stderr}${out.stdout}`);
    ms.push(out.seconds * 1e3);
  }
  return ms;
}

function httpsGet(path: Path, agent: Agent | false, apiPath: string, onData?: (chunk: Buffer) => void): Promise<{ status: number; bytes: number; body: string }> {
  const url = new URL(path.base + apiPath);
  const options: RequestOptions = {
    host: url.hostname,
    port: Number(url.port),
    path: url.pathname + url.search,
    method: "GET",
    agent,
    ca: path.caPem,
    headers: { Authorization: `Bearer ${path.bearer}`, Accept: "application/json", "User-Agent": "gatehouse-bench" },
  };
  return new Promise((resolve, reject) => {
    const req = request(options, (res) => {
      let bytes = 0;
      const kept: Buffer[] = [];
      res.on("data", (chunk: Buffer) => {
        bytes += chunk.length;
        if (onData) onData(chunk);
        else kept.push(chunk);
      });
      res.once("end", () => resolve({ status: res.statusCode ?? 0, bytes, body: Buffer.concat(kept).toString("utf8") }));
      res.once("error", reject);
      res.once("aborted", () => reject(new Error(`GET ${url.href}: the response was cut short after ${bytes} bytes`)));
    });
    req.once("error", (error) => reject(new Error(`GET ${url.href}: ${error.message}`)));
    req.end();
  });
}

/** REQUESTS GETs of one pod, CONCURRENCY at a time over a keep-alive agent with as many sockets. */
async function getLoad(path: Path): Promise<GetResult> {
  const apiPath = `/api/v1/namespaces/${GET_POD.namespace}/pods/${GET_POD.name}`;
  const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY, ca: path.caPem });
  const one = async (): Promise<number> => {
    const t0 = process.hrtime.bigint();
    const out = await httpsGet(path, agent, apiPath);
    if (out.status !== 200 || !out.body.includes(`"name":"${GET_POD.name}"`)) throw new Error(`GET ${apiPath} through ${path.label}: ${out.status} ${out.body.slice(0, 500)}`);
    return Number(process.hrtime.bigint() - t0) / 1e6;
  };
  try {
    // Warm: every socket open (through the gateway: every client connection's session opened).
    await Promise.all(Array.from({ length: CONCURRENCY }, one));
    let warm = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (warm++ < WARMUP) await one();
      }),
    );
    await settle(allPids);
    const spent = meter(path);
    const latencies: number[] = [];
    let next = 0;
    const started = process.hrtime.bigint();
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next++ < REQUESTS) latencies.push(await one());
      }),
    );
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const cpu = spent();
    return {
      requests: latencies.length,
      perSecond: latencies.length / seconds,
      p50Ms: percentile(latencies, 0.5),
      p99Ms: percentile(latencies, 0.99),
      cpuUsPerRequest: mapValues(cpu, (s) => (s * 1e6) / latencies.length),
    };
  } finally {
    agent.destroy();
  }
}

/** The big pod log, read once by a fresh connection, bytes counted and dropped. */
async function logRead(path: Path, expectedBytes: number): Promise<LogResult> {
  const apiPath = `/api/v1/namespaces/${BIG_LOG_POD.namespace}/pods/${BIG_LOG_POD.name}/log?container=chatty`;
  await settle(allPids);
  const spent = meter(path);
  const started = process.hrtime.bigint();
  const out = await httpsGet(path, false, apiPath, () => undefined);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const cpu = spent();
  if (out.status !== 200 || out.bytes !== expectedBytes) throw new Error(`GET ${apiPath} through ${path.label}: status ${out.status}, ${out.bytes} bytes of ${expectedBytes}`);
  const mb = out.bytes / 1e6;
  return { bytes: out.bytes, MBps: mb / seconds, cpuMsPerMB: mapValues(cpu, (s) => (s * 1e3) / mb) };
}

// ---------------------------------------------------------------- main

const loadAtStart = loadAverage();
const dir = tempDir("gatehouse-bench-kube-client-");
const cleanups: Array<() => Promise<unknown>> = [async () => rmSync(dir, { recursive: true, force: true })];
const execPluginMs: number[] = [];
const kubectlRequests: Record<string, string[]> = {};
const kubectlRaw = new Map<string, { ms: number[]; cpu: Record<string, number>; runs: number }>();
const getRuns = new Map<string, GetResult[]>();
const logRuns = new Map<string, LogResult[]>();
let allPids: number[] = [];
let api: ServerReady | undefined;

try {
  const server = await startApiServer();
  cleanups.unshift(() => server.stop());
  api = server.ready;
  const stack = await startStack(api, dir);
  // The gateway's directory (store, journal, certificate) goes with it: a bench leaves nothing behind.
  cleanups.unshift(() => stack.connector.stop(), () => stack.gateway.proc.stop(), async () => rmSync(stack.gateway.dir, { recursive: true, force: true }));
  const apiPid = api.pid;
  const gatewayPid = stack.gateway.proc.child.pid!;
  const connectorPid = stack.connector.child.pid!;
  allPids = [apiPid, gatewayPid, connectorPid];

  const direct: Path = { label: "direct", base: api.url, bearer: TOKENS.direct, caPem: api.caPem, procs: { "API server": apiPid } };
  const gatewayBase = `https://${stack.listen.host}:${stack.listen.port}/k8s/${CONNECTION}`;
  const viaGateway: Path = { label: "gateway", base: gatewayBase, bearer: `${IDENTITY}:${stack.accessKey}`, caPem: stack.certificatePem, procs: { gateway: gatewayPid, connector: connectorPid, "API server": apiPid } };
  const paths = [direct, viaGateway];

  const kubeEnv = { HOME: dir, GATEHOUSE_ACCESS_KEY: stack.accessKey };
  const directKubeconfig = join(dir, "direct.kubeconfig");
  writeFileSync(directKubeconfig, tokenKubeconfig(api.url, api.caPem, TOKENS.direct));
  const gatewayTokenKubeconfig = join(dir, "gateway-token.kubeconfig");
  writeFileSync(gatewayTokenKubeconfig, tokenKubeconfig(gatewayBase, stack.certificatePem, `${IDENTITY}:${stack.accessKey}`));
  const kubectlPaths: KubectlPath[] = [
    { label: "direct", path: direct, kubeconfig: directKubeconfig, cacheDir: join(dir, "cache-direct"), env: kubeEnv },
    { label: "gateway", path: viaGateway, kubeconfig: stack.kubeconfig, cacheDir: join(dir, "cache-gateway"), env: kubeEnv },
    { label: "gateway (token kubeconfig)", path: viaGateway, kubeconfig: gatewayTokenKubeconfig, cacheDir: join(dir, "cache-gateway-token"), env: kubeEnv },
  ];
  for (const k of kubectlPaths) mkdirSync(k.cacheDir, { recursive: true });

  // Every path answers before anything is timed; kubectl's discovery caches are filled.
  if (ONLY.has("kubectl")) {
    for (const k of kubectlPaths) await kubectlRuns(k, 1);
    // What a run with the warm cache sends (kubectl -v=6 logs each request with its status).
    for (const k of kubectlPaths) {
      const out = await run("kubectl", ["--kubeconfig", k.kubeconfig, "--cache-dir", k.cacheDir, "get", "pods", "-A", "-v=6"], k.env);
      const sent = out.stderr.split("\n").filter((l) => /\b(GET|POST|PUT|PATCH|DELETE) https:\/\/\S+ \d{3}/.test(l)).map((l) => /\b(?:GET|POST|PUT|PATCH|DELETE) https:\/\/\S+ \d{3}/.exec(l)![0]);
      kubectlRequests[k.label] = sent;
      console.error(`kubectl get pods -A ${k.label}, warm cache, sends ${sent.length} request(s): ${sent.join("; ")}`);
    }
  }
  for (const p of paths) {
    const out = await httpsGet(p, false, `/api/v1/namespaces/${GET_POD.namespace}/pods/${GET_POD.name}`);
    if (out.status !== 200) throw new Error(`GET through ${p.label}: ${out.status} ${out.body.slice(0, 500)}`);
  }

  // Interleaved rounds, so background load on the machine spreads over every path alike.
  for (let round = 0; round < ROUNDS; round++) {
    if (ONLY.has("kubectl")) {
      const share = Math.ceil(KUBECTL_RUNS / ROUNDS);
      for (const k of kubectlPaths) {
        await settle(allPids);
        const { ms, cpu } = await kubectlRuns(k, share);
        const acc = kubectlRaw.get(k.label) ?? { ms: [], cpu: {}, runs: 0 };
        acc.ms.push(...ms);
        acc.runs += ms.length;
        for (const [name, s] of Object.entries(cpu ?? {})) acc.cpu[name] = (acc.cpu[name] ?? 0) + s;
        kubectlRaw.set(k.label, acc);
        console.error(`round ${round + 1} kubectl get pods -A ${k.label}: median ${fmt(median(ms), 0)} ms of ${ms.length} (load average ${loadAverage()})`);
      }
      const plugin = await execPluginRuns(stack.gatehouse, kubeEnv, share);
      execPluginMs.push(...plugin);
      console.error(`round ${round + 1} gatehouse token --exec-credential alone: median ${fmt(median(plugin), 0)} ms of ${plugin.length} (load average ${loadAverage()})`);
    }
    if (ONLY.has("get")) {
      for (const p of paths) {
        const r = await getLoad(p);
        getRuns.set(p.label, [...(getRuns.get(p.label) ?? []), r]);
        console.error(`round ${round + 1} GET ×${r.requests} c${CONCURRENCY} ${p.label}: ${fmt(r.perSecond)} req/s, p50 ${fmt(r.p50Ms, 2)} ms, p99 ${fmt(r.p99Ms, 2)} ms (load average ${loadAverage()})`);
      }
    }
    if (ONLY.has("logs")) {
      for (const p of paths) {
        const r = await logRead(p, api.logBytes);
        logRuns.set(p.label, [...(logRuns.get(p.label) ?? []), r]);
        console.error(`round ${round + 1} logs ${fmt(r.bytes / 1e6)} MB ${p.label}: ${fmt(r.MBps)} MB/s (load average ${loadAverage()})`);
      }
    }
  }
} finally {
  for (const cleanup of cleanups) await cleanup().catch((err: unknown) => console.error("cleanup:", err));
}

// ---------------------------------------------------------------- report

const kubectl: Record<string, KubectlResult> = Object.fromEntries(
  [...kubectlRaw].map(([label, r]) => [label, { runs: r.runs, medianMs: median(r.ms), p90Ms: percentile(r.ms, 0.9), ...(Object.keys(r.cpu).length ? { cpuMsPerRun: mapValues(r.cpu, (s) => (s * 1e3) / r.runs) } : {}) }]),
);
const get: Record<string, GetResult> = Object.fromEntries([...getRuns].map(([label, runs]) => [label, medianBy(runs, (r) => r.perSecond)]));
const logs: Record<string, LogResult> = Object.fromEntries([...logRuns].map(([label, runs]) => [label, medianBy(runs, (r) => r.MBps)]));
const loadAtEnd = loadAverage();

const row = (cells: string[], widths: number[]) => console.log(cells.map((c, i) => c.padEnd(widths[i] ?? 14)).join(""));
console.log(
  `test API server ${api?.url ?? "-"} (own process); recording ${RECORDING ?? "default (strict)"}; ${ROUNDS} interleaved round(s); kubectl get pods -A ×${KUBECTL_RUNS} per path (pooled), --cache-dir warm; GET ×${REQUESTS} at c${CONCURRENCY} after ${WARMUP} warm-up (median round); log ${fmt((api?.logBytes ?? LOG_BYTES) / 1e6)} MB of ${LOG_LINE_BYTES}-byte lines (median round); load average ${loadAtStart} at the start, ${loadAtEnd} at the end`,
);
const widths = [40, 12, 12, 28, 16];
const d = (k: string) => kubectl[k];
row(["workload", "direct", "gateway", "gateway (token kubeconfig)", "gateway / direct"], widths);
if (Object.keys(kubectl).length) {
  row(["kubectl get pods -A median ms", fmt(d("direct")?.medianMs), fmt(d("gateway")?.medianMs), fmt(d("gateway (token kubeconfig)")?.medianMs), `${fmt(ratio(d("gateway")?.medianMs, d("direct")?.medianMs), 2)} (token: ${fmt(ratio(d("gateway (token kubeconfig)")?.medianMs, d("direct")?.medianMs), 2)})`], widths);
  if (execPluginMs.length) row(["  of it: the exec plugin alone, median ms", "", fmt(median(execPluginMs)), "", ""], widths);
  row(["kubectl get pods -A p90 ms", fmt(d("direct")?.p90Ms), fmt(d("gateway")?.p90Ms), fmt(d("gateway (token kubeconfig)")?.p90Ms), ""], widths);
}
if (Object.keys(get).length) {
  row([`GET pod ×${REQUESTS} c${CONCURRENCY} req/s`, fmt(get.direct?.perSecond), fmt(get.gateway?.perSecond), "", fmt(ratio(get.gateway?.perSecond, get.direct?.perSecond), 2)], widths);
  row(["GET p50 ms", fmt(get.direct?.p50Ms, 2), fmt(get.gateway?.p50Ms, 2), "", fmt(ratio(get.gateway?.p50Ms, get.direct?.p50Ms), 2)], widths);
  row(["GET p99 ms", fmt(get.direct?.p99Ms, 2), fmt(get.gateway?.p99Ms, 2), "", fmt(ratio(get.gateway?.p99Ms, get.direct?.p99Ms), 2)], widths);
}
if (Object.keys(logs).length) row([`logs ${fmt((api?.logBytes ?? LOG_BYTES) / 1e6)} MB MB/s`, fmt(logs.direct?.MBps), fmt(logs.gateway?.MBps), "", fmt(ratio(logs.gateway?.MBps, logs.direct?.MBps), 2)], widths);

console.log("");
const cpuWidths = [50, 12, 12, 12, 12];
row(["CPU (user + system, all threads)", "gateway", "connector", "API server", "client"], cpuWidths);
for (const [label, r] of Object.entries(kubectl)) if (r.cpuMsPerRun) row([`ms per kubectl run, ${label}`, fmt(r.cpuMsPerRun.gateway, 1), fmt(r.cpuMsPerRun.connector, 1), fmt(r.cpuMsPerRun["API server"], 1), "-"], cpuWidths);
for (const [label, r] of Object.entries(get)) row([`µs per GET, ${label}`, fmt(r.cpuUsPerRequest.gateway), fmt(r.cpuUsPerRequest.connector), fmt(r.cpuUsPerRequest["API server"]), fmt(r.cpuUsPerRequest.client)], cpuWidths);
for (const [label, r] of Object.entries(logs)) row([`ms per MB of log, ${label}`, fmt(r.cpuMsPerMB.gateway, 1), fmt(r.cpuMsPerMB.connector, 1), fmt(r.cpuMsPerMB["API server"], 1), fmt(r.cpuMsPerMB.client, 1)], cpuWidths);
console.log("");

console.log(
  JSON.stringify({
    bench: "kubernetes",
    recording: RECORDING ?? "default (strict)",
    quick: QUICK,
    rounds: ROUNDS,
    kubectlRuns: KUBECTL_RUNS,
    requests: REQUESTS,
    warmup: WARMUP,
    concurrency: CONCURRENCY,
    logBytes: api?.logBytes ?? LOG_BYTES,
    logLineBytes: LOG_LINE_BYTES,
    loadAverage: { start: Number(loadAtStart), end: Number(loadAtEnd) },
    kubectlRequestsPerRun: mapValues(kubectlRequests, (sent) => sent.length),
    results: { kubectl, execPlugin: execPluginMs.length ? { runs: execPluginMs.length, medianMs: median(execPluginMs), p90Ms: percentile(execPluginMs, 0.9) } : null, get, logs },
    ratio: {
      kubectlMedian: ratio(d("gateway")?.medianMs, d("direct")?.medianMs),
      kubectlMedianTokenKubeconfig: ratio(d("gateway (token kubeconfig)")?.medianMs, d("direct")?.medianMs),
      getPerSecond: ratio(get.gateway?.perSecond, get.direct?.perSecond),
      getP50: ratio(get.gateway?.p50Ms, get.direct?.p50Ms),
      getP99: ratio(get.gateway?.p99Ms, get.direct?.p99Ms),
      logsMBps: ratio(logs.gateway?.MBps, logs.direct?.MBps),
    },
  }),
);

import cluster, { type Worker } from "node:cluster";
import { availableParallelism } from "node:os";
import { AggregatorRegistry } from "prom-client";
import type { GatewayConfig } from "../config/schema.js";
import { loadConfigFile } from "../config/load.js";
import { adminTokenHash, ensureDataDir, removeState, writeState } from "../data-dir.js";
import { GatewayError } from "../errors.js";
import type { Logger } from "../logger.js";
import { PROMETHEUS_CONTENT_TYPE } from "../metrics/gateway-metrics.js";
import { UsageError } from "./command.js";

// `gatehouse gateway --workers N`: one Node process uses one core for its JavaScript, so a gateway
// that must use more of its host runs N workers (node:cluster). The supervisor (this process)
// accepts nothing itself: node:cluster shares every listening socket, and hands each new
// connection to the next worker in turn. Each worker is a whole gateway with its own journal and
// signing key (DATA_DIR/workers/I) on the shared Postgres store, so what holds for several
// gateways on one store holds for the workers: seals verify anywhere, and a connector keeps a
// link to each worker (it learns the count from the tunnel upgrade's Gatehouse-Workers header).

/** Environment a worker is started with: which one it is and how many there are. */
export const WORKER_INDEX_ENV = "GATEHOUSE_WORKER_INDEX";
export const WORKER_COUNT_ENV = "GATEHOUSE_WORKER_COUNT";

/** A worker that exits on its own is started again after this long (its journal is recovered then). */
const RESPAWN_DELAY_MS = 1_000;
/** ... doubled for each death in a row within this long of its start, up to RESPAWN_MAX_DELAY_MS. */
const EARLY_DEATH_MS = 30_000;
const RESPAWN_MAX_DELAY_MS = 30_000;

/** The supervisor tells a worker to stop (drain; `now`: end open sessions at once). */
export interface StopMessage {
  type: "gatehouse:stop";
  now: boolean;
}

/** What a worker tells the supervisor once its listeners are up. */
export interface WorkerStarted {
  type: "gatehouse:worker-started";
  index: number;
  apiUrl: string;
  metricsUrl: string;
  postgres: unknown;
  mysql: unknown;
  ssh: unknown;
  kubernetes: unknown;
  tcp: Record<string, unknown>;
}

/** A worker asks for the metrics of all workers, for its /metrics answer. */
interface MetricsRequest {
  type: "gatehouse:metrics-req";
  id: number;
}
interface MetricsResponse {
  type: "gatehouse:metrics-res";
  id: number;
  text?: string;
  error?: string;
}

/**
 * What one worker knows only of itself and the API must answer for all: the connector links
 * (GET /api/v1/connectors) and readiness (/readyz). The worker answering asks the supervisor
 * (`gather`), which collects each live worker's own (`collect` / `report`) and answers.
 */
export type GatherTopic = "links" | "readiness";
interface GatherAsk {
  type: "gatehouse:gather-ask";
  id: number;
  topic: GatherTopic;
}
interface GatherAnswer {
  type: "gatehouse:gather-answer";
  id: number;
  reports: WorkerReport[];
}
interface CollectRequest {
  type: "gatehouse:collect";
  id: number;
  topic: GatherTopic;
}
interface CollectReport {
  type: "gatehouse:report";
  id: number;
  value: unknown;
}
/** One worker's own answer on a topic. */
export interface WorkerReport {
  worker: number;
  value: unknown;
}
/** How long the supervisor waits for a worker's report before answering without it. */
const COLLECT_TIMEOUT_MS = 2_000;

/** "auto" is one worker per core; a number is taken as it is. */
export function parseWorkers(value: string | undefined): number {
  if (value === undefined) return 1;
  if (value === "auto") return availableParallelism();
  if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 64) throw new UsageError("--workers: expected a number from 1 to 64, or auto");
  return Number(value);
}

/** This process's worker slot, when the supervisor started it as one. */
export function workerSlot(env: NodeJS.ProcessEnv): { index: number; count: number } | undefined {
  if (!cluster.isWorker || env[WORKER_INDEX_ENV] === undefined) return undefined;
  return { index: Number(env[WORKER_INDEX_ENV]), count: Number(env[WORKER_COUNT_ENV]) };
}

/**
 * Checks what N workers need, before any starts: a Postgres store (the embedded one is a single
 * process's), and an admin token in the data directory that every worker reads rather than each
 * generating its own.
 */
export function prepareWorkers(config: GatewayConfig, count: number, onAdminTokenGenerated: (token: string, file: string) => void): void {
  if (!config.store.url) {
    throw new GatewayError("CONFIG_INVALID", `--workers ${count}: store.url must name a Postgres store; the embedded store serves one process`, {
      problems: ["store.url: required with --workers above 1"],
    });
  }
  const dataDir = ensureDataDir(config.dataDir);
  const admin = adminTokenHash(dataDir, config.api.adminTokenSha256);
  if (admin.generated) onAdminTokenGenerated(admin.generated, `${dataDir}/admin-token`);
}

/**
 * Runs N workers until SIGTERM/SIGINT, which each worker then handles as a single gateway does
 * (drain, seal, ship, exit); a second signal cuts their grace short. SIGHUP is checked here and
 * passed on. A worker that dies is started again. Resolves with the exit code.
 */
export async function superviseWorkers(config: GatewayConfig, configFile: string, count: number, logger: Logger): Promise<number> {
  cluster.schedulingPolicy = cluster.SCHED_RR;
  const dataDir = ensureDataDir(config.dataDir);
  const workers = new Map<number, Worker>();
  /** Workers that have said they started: only these are asked for reports, reloads and stops. */
  const announced = new Set<Worker>();
  /** Per worker number: how many times in a row it died soon after starting (the respawn backs off). */
  const earlyDeaths = new Map<number, number>();
  let stopping = false;
  const aggregator = new AggregatorRegistry();

  const fork = (index: number): Promise<WorkerStarted> => {
    const worker = cluster.fork({ [WORKER_INDEX_ENV]: String(index), [WORKER_COUNT_ENV]: String(count) });
    const forkedAt = Date.now();
    workers.set(index, worker);
    // A send to a worker that just died is an 'error' on it: logged, never the supervisor's end.
    worker.on("error", (error: Error) => logger.warn({ worker: index, err: error }, "gateway worker channel error"));
    worker.on("message", (message: MetricsRequest | GatherAsk | CollectReport) => {
      if (message?.type === "gatehouse:report") {
        reportWaiters.get(`${index}:${message.id}`)?.(message.value);
        return;
      }
      if (message?.type === "gatehouse:gather-ask") {
        void collect(message.topic).then((reports) => sendTo(worker, { type: "gatehouse:gather-answer", id: message.id, reports } satisfies GatherAnswer));
        return;
      }
      if (message?.type !== "gatehouse:metrics-req") return;
      aggregator.clusterMetrics().then(
        (text) => sendTo(worker, { type: "gatehouse:metrics-res", id: message.id, text } satisfies MetricsResponse),
        (error: Error) => sendTo(worker, { type: "gatehouse:metrics-res", id: message.id, error: error.message } satisfies MetricsResponse),
      );
    });
    const started = new Promise<WorkerStarted>((resolve, reject) => {
      const onMessage = (message: WorkerStarted) => {
        if (message?.type !== "gatehouse:worker-started") return;
        worker.off("message", onMessage);
        announced.add(worker);
        // Asked to stop while it was starting: it stops now.
        if (stopping) sendTo(worker, { type: "gatehouse:stop", now: false } satisfies StopMessage);
        resolve(message);
      };
      worker.on("message", onMessage);
      worker.once("exit", (code, signal) => reject(new Error(`worker ${index} exited (${signal ?? code}) before it started`)));
    });
    worker.once("exit", (code, signal) => {
      announced.delete(worker);
      if (workers.get(index) === worker) workers.delete(index);
      if (stopping) return;
      // A worker that keeps dying at once (a store it cannot reach, a port taken) is started again less and less often.
      const early = Date.now() - forkedAt < EARLY_DEATH_MS ? (earlyDeaths.get(index) ?? 0) + 1 : 0;
      earlyDeaths.set(index, early);
      const respawnInMs = Math.min(RESPAWN_MAX_DELAY_MS, RESPAWN_DELAY_MS * 2 ** early);
      logger.error({ worker: index, code, signal, respawnInMs }, "gateway worker died; starting it again");
      setTimeout(() => {
        if (stopping) return;
        fork(index).then(
          () => logger.info({ worker: index }, "gateway worker started again"),
          (error: Error) => logger.error({ worker: index, err: error }, "gateway worker could not start again"),
        );
      }, respawnInMs);
    });
    return started;
  };

  let collectId = 0;
  /** Collections waiting for a worker's report, by "worker:id" (each worker's message handler routes them). */
  const reportWaiters = new Map<string, (value: unknown) => void>();
  /**
   * Every worker's report on `topic`: an announced worker's own answer (null when it did not answer
   * within COLLECT_TIMEOUT_MS), and for the others "starting" (forked, not yet started) or "down".
   */
  const collect = async (topic: GatherTopic): Promise<WorkerReport[]> => {
    const id = collectId++;
    const reports = Array.from({ length: count }, (_, index) => {
      const worker = workers.get(index);
      if (worker === undefined) return Promise.resolve<WorkerReport>({ worker: index, value: "down" });
      if (!announced.has(worker)) return Promise.resolve<WorkerReport>({ worker: index, value: "starting" });
      return new Promise<WorkerReport>((resolve) => {
        const key = `${index}:${id}`;
        const done = (value: unknown) => {
          clearTimeout(timer);
          reportWaiters.delete(key);
          resolve({ worker: index, value });
        };
        const timer = setTimeout(() => done(null), COLLECT_TIMEOUT_MS);
        reportWaiters.set(key, done);
        if (!sendTo(worker, { type: "gatehouse:collect", id, topic } satisfies CollectRequest)) done(null);
      });
    });
    return Promise.all(reports);
  };

  // Stops go to the workers as messages, not signals: under a service manager that signals the whole
  // process group, each worker also gets the SIGTERM itself, and a second signal would cut its grace.
  const stopAll = (signal: NodeJS.Signals) => {
    const now = stopping;
    if (now) logger.info({ signal }, "second signal: the workers end their open sessions now");
    else logger.info({ signal, workers: count }, "gateway stopping");
    stopping = true;
    for (const worker of announced) sendTo(worker, { type: "gatehouse:stop", now } satisfies StopMessage);
  };
  const reload = () => {
    try {
      loadConfigFile(configFile);
    } catch (error) {
      logger.error({ file: configFile, reason: (error as Error).message, problems: (error as GatewayError).problems }, "config reload rejected; the running config stays");
      return;
    }
    for (const worker of announced) worker.process.kill("SIGHUP");
  };
  // Installed before the first fork: a signal during the start must not kill the supervisor alone.
  process.on("SIGTERM", stopAll);
  process.on("SIGINT", stopAll);
  process.on("SIGHUP", reload);

  const allExited = () =>
    new Promise<void>((resolve) => {
      const check = () => (workers.size === 0 ? resolve() : setTimeout(check, 50));
      check();
    });
  try {
    // The first alone: it migrates the store and generates the TLS material and SSH host key
    // that the others then read from the data directory rather than each making its own.
    const first = await fork(0);
    const rest = stopping ? [] : await Promise.all(Array.from({ length: count - 1 }, (_, i) => fork(i + 1)));
    if (stopping) {
      await allExited();
      return 0;
    }
    writeState(dataDir, { pid: process.pid, apiUrl: first.apiUrl, startedAt: new Date().toISOString() });
    const { type: _type, index: _index, ...addresses } = first;
    logger.info({ ...addresses, dataDir, store: "postgres", workers: [first, ...rest].map((w) => w.index) }, "gateway started");
  } catch (error) {
    // A worker that could not start (it exited): the others stop as they would on SIGTERM.
    const wasStopping = stopping;
    stopping = true;
    for (const worker of workers.values()) {
      if (announced.has(worker)) sendTo(worker, { type: "gatehouse:stop", now: false } satisfies StopMessage);
      else worker.process.kill("SIGKILL");
    }
    await allExited();
    if (wasStopping) return 0;
    throw error;
  }
  await new Promise<void>((resolve) => {
    const wait = () => (stopping && workers.size === 0 ? resolve() : setTimeout(wait, 50));
    wait();
  });
  removeState(dataDir, process.pid);
  process.off("SIGTERM", stopAll);
  process.off("SIGINT", stopAll);
  process.off("SIGHUP", reload);
  logger.info("gateway stopped");
  return 0;
}

/** Sends over a worker's channel unless it is gone; false when it is (a failed send is the worker's 'error', logged). */
function sendTo(worker: Worker, message: unknown): boolean {
  if (!worker.isConnected()) return false;
  worker.send(message as object, (error: Error | null) => {
    if (error) worker.emit("error", error);
  });
  return true;
}

/** In a worker: sends to the supervisor while the channel is there; nothing once it is gone. */
export function sendToSupervisor(message: unknown): boolean {
  if (!process.connected || !process.send) return false;
  process.send(message, undefined, undefined, () => undefined);
  return true;
}

/**
 * In a worker: a request to the supervisor and its answer, matched by id. `unavailable` answers
 * when there is no supervisor to ask.
 */
function supervisorRequests<Q extends { type: string }, A extends { type: string; id: number }, R>(
  answerType: A["type"],
  toResult: (answer: A) => R,
  unavailable: () => R,
): (request: Q) => Promise<R> {
  let next = 0;
  const pending = new Map<number, (answer: A) => void>();
  process.on("message", (message: A) => {
    if (message?.type !== answerType) return;
    pending.get(message.id)?.(message);
    pending.delete(message.id);
  });
  return (request) =>
    new Promise<R>((resolve, reject) => {
      const id = next++;
      pending.set(id, (answer) => {
        try {
          resolve(toResult(answer));
        } catch (error) {
          reject(error);
        }
      });
      if (!sendToSupervisor({ ...request, id })) {
        pending.delete(id);
        try {
          resolve(unavailable());
        } catch (error) {
          reject(error);
        }
      }
    });
}

/**
 * In a worker: the metrics of every worker, aggregated by the supervisor (counters and histograms
 * summed; a per-process gauge such as memory summed too), so /metrics says the same whichever worker
 * the scrape reached.
 */
export function clusterMetrics(): () => Promise<{ contentType: string; text: string }> {
  const ask = supervisorRequests<Omit<MetricsRequest, "id">, MetricsResponse, { contentType: string; text: string }>(
    "gatehouse:metrics-res",
    (answer) => {
      if (answer.text === undefined) throw new Error(answer.error ?? "no metrics");
      return { contentType: PROMETHEUS_CONTENT_TYPE, text: answer.text };
    },
    () => {
      throw new Error("the gateway's supervisor is gone");
    },
  );
  return () => ask({ type: "gatehouse:metrics-req" });
}

/** In a worker: hands its registry to the supervisor's aggregation and says it has started. */
export function announceWorker(registry: import("prom-client").Registry, started: Omit<WorkerStarted, "type">): void {
  AggregatorRegistry.setRegistries([registry]);
  sendToSupervisor({ type: "gatehouse:worker-started", ...started } satisfies WorkerStarted);
}

/**
 * In a worker, before its gateway starts: answers the supervisor's metrics collection from the start
 * (empty until announceWorker hands it the registry, rather than a scrape waiting out a timeout), and
 * keeps the process alive, to drain, if the supervisor goes away (Node's cluster would exit at once).
 */
export function prepareWorkerProcess(): void {
  new AggregatorRegistry(); // installs the worker's side of prom-client's aggregation protocol
  AggregatorRegistry.setRegistries([]);
  if (cluster.worker) cluster.worker.exitedAfterDisconnect = true;
}

/**
 * In a worker: answers the supervisor's collections from `local` (this worker's own view of each
 * topic), and returns `gather`, which asks for every worker's.
 */
export function workerGather(local: { [T in GatherTopic]?: () => unknown }): (topic: GatherTopic) => Promise<WorkerReport[]> {
  process.on("message", (message: CollectRequest) => {
    if (message?.type === "gatehouse:collect") {
      sendToSupervisor({ type: "gatehouse:report", id: message.id, value: local[message.topic]?.() ?? null } satisfies CollectReport);
    }
  });
  const ask = supervisorRequests<Omit<GatherAsk, "id">, GatherAnswer, WorkerReport[]>("gatehouse:gather-answer", (answer) => answer.reports, () => []);
  return (topic) => ask({ type: "gatehouse:gather-ask", topic });
}

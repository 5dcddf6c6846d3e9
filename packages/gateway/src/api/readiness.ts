import { isOutOfSpace, type RecordingProblem } from "../errors.js";
import type { ListenerState } from "../listeners/server-watch.js";
import type { RecordingMode } from "../sessions/recorder.js";

/** What readiness is judged from: states the gateway already knows, so /readyz never waits on the store. */
export interface ReadinessInputs {
  recordingMode: RecordingMode;
  /** Why the journal takes no new work, if it does not (Journal.problem()). */
  journalProblem: RecordingProblem | undefined;
  /** The store failed its last use (shipping the journal, reading access keys). */
  storeFailing: boolean;
  /** For how long the shipper has been failing to reach the store (seconds), when it is. */
  storeDownForSeconds?: number | undefined;
  /** Each configured listener by its config key (listen.postgres, connections[echo].listen…), the api's own excepted. */
  listeners?: Readonly<Record<string, ListenerState>>;
}

export type ListenerCheck = ListenerState["state"];

export interface Readiness {
  ready: boolean;
  /**
   * The /readyz body. Read by anyone who can reach the api listener, so it names states, never the
   * store's address, database, user or error text.
   */
  body: {
    status: "ready" | "not_ready";
    /** Why new sessions would fail, when they would. */
    reason?: string;
    checks: {
      recording: "ok" | "journal_full" | "disk_full" | "journal_unwritable";
      /** unreachable: sessions go on; only logins of identities whose keys are not in memory fail. */
      store: "ok" | "unreachable";
      /** The running configuration was read and validated (always so once the gateway answers). */
      config: "loaded";
      /** Each listener: listening, starting, stopping (the gateway stops), down (it failed or closed by itself). */
      listeners: Record<string, ListenerCheck>;
    };
    /** With `gateway --workers N`: each worker's status by number (starting, down: being started again). */
    workers?: Record<string, "ready" | "not_ready" | "starting" | "down">;
  };
}

/**
 * Not ready when new sessions would fail: a listener that is down (it failed, or closed without the
 * gateway closing it), a gateway that is stopping, or strict recording whose journal takes no new
 * work — which, with a healthy disk, means the store has been unreachable for as long as the journal
 * could hold (recording.journal.maxBytes). A store that does not answer is reported but keeps the
 * gateway ready while the journal has room: sessions are journaled, and access keys are checked
 * against the identity's keys as last read.
 */
export function readiness(inputs: ReadinessInputs): Readiness {
  const problem = inputs.journalProblem;
  const recording = problem === undefined ? "ok" : problem.reason === "journal_full" ? "journal_full" : isOutOfSpace(problem) ? "disk_full" : "journal_unwritable";
  const listeners: Record<string, ListenerCheck> = {};
  for (const [key, state] of Object.entries(inputs.listeners ?? {})) listeners[key] = state.state;
  const checks = { recording, store: inputs.storeFailing ? "unreachable" : "ok", config: "loaded", listeners } as const;
  const notReady = (reason: string): Readiness => ({ ready: false, body: { status: "not_ready", reason, checks } });

  const down = Object.entries(inputs.listeners ?? {}).filter((entry): entry is [string, Extract<ListenerState, { state: "down" }>] => entry[1].state === "down");
  if (down.length > 0) return notReady(`new sessions are refused: ${down.map(([key, state]) => `${key} is not listening (${state.reason})`).join("; ")}`);
  if (Object.values(listeners).includes("stopping")) return notReady("the gateway is stopping: it takes no new sessions");

  if (recording === "ok" || inputs.recordingMode !== "strict") return { ready: true, body: { status: "ready", checks } };
  if (recording === "journal_full" && inputs.storeFailing) {
    const since = inputs.storeDownForSeconds === undefined ? "" : ` for ${Math.round(inputs.storeDownForSeconds)} s`;
    return notReady(`new sessions are refused: the store has been unreachable${since}, past what the recording journal holds (recording.journal.maxBytes); they are taken again once the store takes the journal's backlog`);
  }
  return notReady(
    {
      journal_full: "new sessions are refused: the recording journal is full (recording.journal.maxBytes) until the store takes its backlog",
      disk_full: "new sessions are refused: the disk under the recording journal is full",
      journal_unwritable: "new sessions are refused: the recording journal cannot be written (a disk error)",
    }[recording],
  );
}

/** One worker's answer, as the supervisor collected it: its readiness, none in time (null), or not running. */
export type WorkerReadiness = Readiness | null | "starting" | "down";

/**
 * The readiness of a gateway run with --workers: the workers share one socket, so a balancer cannot
 * route around one that is not ready, or that does not answer — the host is ready only when none is
 * so, and the reason names the worker. A worker not running (being started again after it died) gets
 * no connections, so it does not count, as long as one worker is ready. The checks shown are the
 * first not-ready worker's, else the first ready one's.
 */
export function workersReadiness(reports: ReadonlyArray<{ worker: number; value: WorkerReadiness }>): Readiness {
  const status = (value: WorkerReadiness) => (value === null ? "not_ready" : typeof value === "string" ? value : value.body.status);
  const workers = Object.fromEntries(reports.map((r) => [String(r.worker), status(r.value)]));
  const answered = reports.filter((r): r is { worker: number; value: Readiness } => r.value !== null && typeof r.value === "object");
  const silent = reports.filter((r) => r.value === null);
  const notReady = answered.filter((r) => !r.value.ready);
  const readyOnes = answered.filter((r) => r.value.ready);
  const shown = (notReady[0] ?? readyOnes[0])?.value;
  const checks = shown?.body.checks ?? { recording: "ok", store: "ok", config: "loaded", listeners: {} };
  const reasons = [
    ...notReady.map((r) => `worker ${r.worker}: ${r.value.body.reason ?? "not ready"}`),
    ...silent.map((r) => `worker ${r.worker} did not answer`),
  ];
  if (readyOnes.length === 0 && reasons.length === 0) reasons.push("no gateway worker is running");
  if (reasons.length === 0) return { ready: true, body: { ...shown!.body, workers } };
  return { ready: false, body: { status: "not_ready", reason: reasons.join("; "), checks, workers } };
}

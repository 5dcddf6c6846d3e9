import { isOutOfSpace, type RecordingProblem } from "../errors.js";
import type { RecordingMode } from "../sessions/recorder.js";

/** What readiness is judged from: states the gateway already knows, so /readyz never waits on the store. */
export interface ReadinessInputs {
  recordingMode: RecordingMode;
  /** Why the journal takes no new work, if it does not (Journal.problem()). */
  journalProblem: RecordingProblem | undefined;
  /** The store failed its last use (shipping the journal, reading access keys). */
  storeFailing: boolean;
}

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
    };
  };
}

/**
 * Not ready only when new sessions would fail: strict recording whose journal takes no new work.
 * A store that does not answer is reported but keeps the gateway ready: sessions are journaled, and
 * access keys are checked against the identity's keys as last read.
 */
export function readiness(inputs: ReadinessInputs): Readiness {
  const problem = inputs.journalProblem;
  const recording = problem === undefined ? "ok" : problem.reason === "journal_full" ? "journal_full" : isOutOfSpace(problem) ? "disk_full" : "journal_unwritable";
  const checks = { recording, store: inputs.storeFailing ? "unreachable" : "ok", config: "loaded" } as const;
  if (recording === "ok" || inputs.recordingMode !== "strict") return { ready: true, body: { status: "ready", checks } };
  const reason = {
    journal_full: "new sessions are refused: the recording journal is full (recording.journal.maxBytes) until the store takes its backlog",
    disk_full: "new sessions are refused: the disk under the recording journal is full",
    journal_unwritable: "new sessions are refused: the recording journal cannot be written (a disk error)",
  }[recording];
  return { ready: false, body: { status: "not_ready", reason, checks } };
}

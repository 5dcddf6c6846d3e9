import type { Socket } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import type { HostPort } from "../config/address.js";
import type { GatewayConfig } from "../config/schema.js";
import type { Clock } from "../clock.js";
import { GatewayError, isOutOfSpace, type RecordingProblem } from "../errors.js";
import { AuthThrottle } from "../identity/auth-throttle.js";
import type { Logger } from "../logger.js";
import type { Recorder } from "../sessions/recorder.js";
import { RefusalRecords, cutClaim } from "../sessions/refusal-records.js";
import { recordRefusal, type Refusal } from "../sessions/session-broker.js";
import { AdmissionLimits, type Admission } from "./admission-limits.js";
import { drainListener, OpenSessions } from "./drain.js";
import { SocketServer } from "./socket-server.js";
import type { ListenerState } from "./server-watch.js";

/**
 * The steps every protocol listener takes alike, whatever its wire: admission limits and the
 * authentication throttle (shared across listeners when the gateway passes them in), refusal
 * records, the rate-limited line when a limit refuses a client, and how a recording failure is
 * told apart. Each listener keeps its own wire forms (what the client is answered).
 */
export interface ListenerStepsDeps {
  config: () => GatewayConfig;
  recorder: Recorder;
  clock: Clock;
  logger: Logger;
  /** Waits out an authentication delay; tests may pass a faster one. Rejects when `signal` aborts. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Shared with the gateway's other listeners, so limits and lockouts count across protocols. Default: this listener's own. */
  limits?: AdmissionLimits;
  throttle?: AuthThrottle;
}

export class ListenerSteps {
  /** Counters a later /metrics reads: `limits.counters`, `throttle.counters`, `refusals.counters`. */
  readonly limits: AdmissionLimits;
  readonly throttle: AuthThrottle;
  readonly refusals: RefusalRecords;
  readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  /** The sessions a graceful stop ends; the listener adds each with how its protocol says goodbye. */
  readonly openSessions = new OpenSessions();
  private readonly server: SocketServer;
  private readonly limitLog = new Map<string, { atMs: number; refused: number }>();

  constructor(
    private readonly deps: ListenerStepsDeps,
    protocol: string,
    serve: (socket: Socket) => Promise<void>,
  ) {
    this.server = new SocketServer(serve);
    const limits = () => deps.config().limits;
    this.limits = deps.limits ?? new AdmissionLimits(limits);
    this.throttle = deps.throttle ?? new AuthThrottle(() => limits().authThrottle, () => deps.clock() / 1000);
    this.refusals = new RefusalRecords(deps.recorder, () => limits().refusalRecords, deps.clock, deps.logger.child({ protocol }));
    this.sleep = deps.sleep ?? ((ms, signal) => sleep(ms, undefined, { signal }));
  }

  listen(at: HostPort): Promise<HostPort> {
    return this.server.listen(at);
  }

  /** Whether the listener takes clients (for /readyz). */
  get state(): ListenerState {
    return this.server.state;
  }

  async close(): Promise<void> {
    await this.server.close();
    await this.refusals.flush();
  }

  /** Graceful stop: no new clients; sessions still open when `grace` aborts end as their protocol's shutdown does (drain.ts). */
  async drain(grace: AbortSignal): Promise<void> {
    await drainListener(this.server, this.openSessions, grace);
    await this.refusals.flush();
  }

  /**
   * A warn line when a limit refuses a client: at most one a second per limit, with the count
   * since the last. `refusedWith` names the protocol's error (53300, 1040) for the reader.
   */
  logLimit(refused: Extract<Admission, { ok: false }>, log: Logger, refusedWith: string, fields: Record<string, unknown> = {}): void {
    const nowMs = this.deps.clock() / 1000;
    const last = this.limitLog.get(refused.limit) ?? { atMs: -Infinity, refused: 0 };
    last.refused++;
    this.limitLog.set(refused.limit, last);
    if (nowMs - last.atMs < 1_000) return;
    log.warn({ ...fields, limit: refused.limit, max: refused.max, refused: last.refused, inHandshake: this.limits.inHandshake, counters: this.limits.counters }, `too many connections: refused (${refusedWith})`);
    last.atMs = nowMs;
    last.refused = 0;
  }

  /** An authenticated client refused: recorded at once, the connection and application cut (still only names it sent). */
  async recordAuthenticated(refusal: Refusal): Promise<void> {
    const { maxClaimedChars } = this.deps.config().limits.refusalRecords;
    const clientApplication = refusal.clientApplication === null ? null : cutClaim(refusal.clientApplication, maxClaimedChars);
    await recordRefusal(this.deps.recorder, { ...refusal, connection: cutClaim(refusal.connection, maxClaimedChars), clientApplication }).catch((err: unknown) =>
      this.deps.logger.error({ err }, "could not record a refused attempt"),
    );
  }
}

export function isCredentialsUnavailable(error: unknown): error is GatewayError {
  return error instanceof GatewayError && error.code === "CREDENTIALS_UNAVAILABLE";
}

export function isRecordingUnavailable(error: unknown): error is GatewayError & { recording: RecordingProblem } {
  return error instanceof GatewayError && error.code === "RECORDING_UNAVAILABLE" && error.recording !== undefined;
}

/** Why strict recording refused (for the client's message), and whether it was for want of space (each protocol has a code for that). */
export function recordingRefusalReason(error: Error): { outOfSpace: boolean; why: string } {
  const problem = isRecordingUnavailable(error) ? error.recording : { reason: "journal_unwritable" as const };
  const why = problem.reason === "journal_full" ? "its journal is full" : isOutOfSpace(problem) ? "the disk under its journal is full" : "its journal cannot be written";
  return { outOfSpace: isOutOfSpace(problem), why };
}

/**
 * What the server's replies complete is recorded right after the reply is on its way to the
 * client (the relay writes the chunk once the observer returns), not before: recording an event
 * takes tens of µs, and a client waiting for its answer should not wait for that too. In their
 * order; `flush` before the session's own disconnect event.
 */
export function deferredRecords(): { record: (event: () => Promise<void>) => void; flush: () => void } {
  let pending: (() => Promise<void>)[] = [];
  const flush = () => {
    const records = pending;
    pending = [];
    for (const record of records) void record().catch(() => undefined);
  };
  const record = (event: () => Promise<void>) => {
    if (pending.push(event) === 1) queueMicrotask(flush);
  };
  return { record, flush };
}

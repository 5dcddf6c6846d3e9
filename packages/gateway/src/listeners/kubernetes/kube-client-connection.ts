import type { TunnelStream } from "@gatehouse/proto";
import type { Identity } from "@gatehouse/store";
import type { ConnectionConfig } from "../../config/schema.js";
import type { Logger } from "../../logger.js";
import type { RecordedSession } from "../../sessions/recorder.js";
import type { OpenFailure } from "../../sessions/session-broker.js";
import type { PasswordCheck } from "../../identity/credential-checker.js";
import { refusal, type Refusal } from "./kube-replies.js";

/** A recorded session of one client connection, for one identity and connection, and its main stream. */
export interface KubeSession {
  session: RecordedSession;
  connection: ConnectionConfig;
  identity: Identity;
  main: TunnelStream;
  /** Bytes of every request and response relayed in this session. */
  bytes: { up: number; down: number };
  /** The main stream failed (the connector's link went away): the session's end says so. */
  error?: Error;
  release(): void;
}

export type SessionOpening = { ok: true; value: KubeSession } | { ok: false; refused: Refusal };

/**
 * One client TCP connection (kubectl keeps one per process, sending its requests one after
 * another on it): the sessions it opened — one per identity and connection it used, normally one
 * — the requests still running, and the credential it last proved (a bearer token is checked once
 * per connection, and again when it changes or its token expires).
 */
export class KubeClientConnection {
  private readonly sessions = new Map<string, Promise<SessionOpening>>();
  private readonly running = new Set<Promise<unknown>>();
  private ended = false;
  lastCredential: { credential: string; check: PasswordCheck & { ok: true } } | undefined;
  /** Called as each request arrives (the listener clears its first-request deadline). */
  firstRequest: () => void = () => undefined;

  constructor(
    readonly clientAddress: string | null,
    readonly log: Logger,
  ) {}

  get closed(): boolean {
    return this.ended;
  }

  /** The session for this identity and connection, opened once (the first request's `open` opens it). */
  session(identity: Identity, connection: string, open: () => Promise<SessionOpening>): Promise<SessionOpening> {
    const key = `${identity.name}\u0000${identity.method}\u0000${connection}`;
    let opening = this.sessions.get(key);
    if (!opening) {
      opening = open().catch((error: unknown): SessionOpening => {
        this.log.error({ err: error }, "kubernetes session could not be opened");
        return { ok: false, refused: refusal("InternalError", "internal gateway error") };
      });
      this.sessions.set(key, opening);
      // A refused session is not kept: the next request tries again (and is recorded again).
      void opening.then((opened) => {
        if (!opened.ok && this.sessions.get(key) === opening) this.sessions.delete(key);
      });
    }
    return opening;
  }

  /** A request in progress: the connection's end waits for it to record its event. */
  track<T>(work: Promise<T>): Promise<T> {
    this.running.add(work);
    void work.finally(() => this.running.delete(work)).catch(() => undefined);
    return work;
  }

  /** The client connection closed: wait for its requests, then end each session's record. */
  async end(end: (session: KubeSession) => Promise<void>): Promise<void> {
    this.ended = true;
    while (this.running.size > 0) await Promise.allSettled([...this.running]);
    for (const opening of this.sessions.values()) {
      const opened = await opening;
      if (opened.ok) await end(opened.value);
    }
  }
}

/** What kubectl is told for each way a session can fail to reach the cluster. */
export function openFailureRefusal(failure: OpenFailure): Refusal {
  switch (failure.code) {
    case "denied":
      return refusal("Forbidden", `gatehouse: access denied: ${failure.message}`);
    case "connector_unavailable":
      return refusal("ServiceUnavailable", `gatehouse: connector unavailable: ${failure.message}`);
    case "target_refused":
      return refusal("ServiceUnavailable", `gatehouse: the cluster could not be reached: ${failure.message}`);
  }
}

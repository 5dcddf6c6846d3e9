import type { Socket } from "node:net";
import { randomBytes } from "node:crypto";
import type { Duplex } from "node:stream";
import {
  decodeDialResult,
  encodeDialRequest,
  errorResponse,
  errorResponseFor,
  isPostgresProtocolError,
  PostgresObserver,
  SqlState,
  type ClientStartupEvent,
} from "@gatehouse/protocols/postgres";
import { TunnelError } from "@gatehouse/proto";
import type { Identity } from "@gatehouse/store";
import type { ConnectionConfig, GatewayConfig } from "../../config/schema.js";
import { isLoopback, type HostPort } from "../../config/address.js";
import type { Clock } from "../../clock.js";
import type { AccessKeys, ScramCandidates } from "../../identity/access-keys.js";
import type { AuthThrottle } from "../../identity/auth-throttle.js";
import type { CredentialChecker, PasswordCheck } from "../../identity/credential-checker.js";
import type { Logger } from "../../logger.js";
import type { EventKind } from "../../sessions/event-kinds.js";
import type { Recorder, RecordedSession } from "../../sessions/recorder.js";
import { relay } from "../../sessions/relay.js";
import { timedInspector } from "../../sessions/command-timing.js";
import { cutClaim, type RefusalRecords } from "../../sessions/refusal-records.js";
import type { OpenFailure, SessionBroker } from "../../sessions/session-broker.js";
import type { TlsMaterial } from "../../tls-material.js";
import { REFUSAL_REPORT_DEADLINE_MS, type AdmissionLimits, type Admission } from "../admission-limits.js";
import { ListenerSteps, deferredRecords, isCredentialsUnavailable, isRecordingUnavailable, recordingRefusalReason } from "../listener-steps.js";
import type { ListenerState } from "../server-watch.js";
import { CancelKeys, cancelRouteKey, type CancelRoute } from "./cancel-keys.js";
import type { PeerCancels } from "../peer-cancels.js";
import { certificateBinding } from "./channel-binding.js";
import { ClientChannel, closeSilently, isEnded, replyAndClose, type Ended } from "./client-channel.js";
import { commandDraft, commandEvent } from "./command-events.js";
import type { GatewayError } from "../../errors.js";

/** Client startup parameters the connector forwards to the server; user and database are the connection's own. */
const NOT_FORWARDED = new Set(["user", "database", "replication"]);

export interface PostgresListenerDeps {
  config: () => GatewayConfig;
  broker: SessionBroker;
  recorder: Recorder;
  accessKeys: AccessKeys;
  credentials: CredentialChecker;
  tls: TlsMaterial;
  clock: Clock;
  logger: Logger;
  /** Waits out an authentication delay; tests may pass a faster one. Rejects when `signal` aborts. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Shared with the gateway's other listeners, so limits and lockouts count across protocols. Default: this listener's own. */
  limits?: AdmissionLimits;
  throttle?: AuthThrottle;
  /** Cancels across gateways sharing the store (peer-cancels.ts); left out: cancels reach only this gateway's sessions. */
  peers?: PeerCancels;
}

type StartupEvent = Extract<ClientStartupEvent, { type: "startup" }>;

/** Who a client proved to be, and what it asked for at startup. */
interface Authenticated {
  readonly identity: Identity;
  readonly first: StartupEvent;
}

/**
 * The Postgres endpoint: terminates the client's protocol (TLS, startup,
 * authentication with access keys or tokens), opens the session through the
 * connection's connector, then relays with an observer that records every
 * statement and its outcome.
 *
 * One client goes through steps that each return their result or how the
 * client's attempt `Ended`: accept (TLS + startup) → authenticate → pick the
 * connection → admit (limits) → open → relay → end. The handshake (until the
 * client has authenticated) has one deadline, `limits.handshakeTimeoutMs`.
 */
export class PostgresListener {
  readonly cancelKeys = new CancelKeys();
  /** For SCRAM-SHA-256-PLUS over TLS (postgres.tlsAuth: scram). */
  private readonly channelBinding: Uint8Array | undefined;
  /** Makes failed SCRAM attempts for unknown identities look alike across connections. */
  private readonly mockSecret = randomBytes(32);
  /** Counters a later /metrics reads: `limits.counters`, `throttle.counters`, `refusals.counters`. */
  readonly limits: AdmissionLimits;
  readonly throttle: AuthThrottle;
  readonly refusals: RefusalRecords;
  private readonly steps: ListenerSteps;

  constructor(private readonly deps: PostgresListenerDeps) {
    this.steps = new ListenerSteps(deps, "postgres", (socket) => this.serve(socket));
    ({ limits: this.limits, throttle: this.throttle, refusals: this.refusals } = this.steps);
    this.channelBinding = certificateBinding(deps.tls.cert);
    deps.peers?.onPostgresCancel((routeKey, from) => this.cancelForwarded(routeKey, from));
  }

  listen(at: HostPort): Promise<HostPort> {
    return this.steps.listen(at);
  }

  /** Whether it takes clients (for /readyz). */
  get state(): ListenerState {
    return this.steps.state;
  }

  close(): Promise<void> {
    return this.steps.close();
  }

  /** Graceful stop: no new clients; sessions still open when `grace` aborts end with FATAL 57P01 (see drain.ts). */
  drain(grace: AbortSignal): Promise<void> {
    return this.steps.drain(grace);
  }

  /** One client, from accept to the end of its session. */
  private async serve(socket: Socket): Promise<void> {
    socket.on("error", () => undefined);
    const clientAddress = socket.remoteAddress ?? null;
    const log = this.deps.logger.child({ protocol: "postgres", clientAddress });
    const handshake = this.limits.enterHandshake(clientAddress);
    if (!handshake.ok) {
      this.steps.logLimit(handshake, log, "53300");
      return this.refuseHandshake(socket, log);
    }
    const channel = new ClientChannel(socket, this.deps.tls, AbortSignal.timeout(this.deps.config().limits.handshakeTimeoutMs), log);
    let releaseSession = () => {};
    try {
      const first = await this.accept(channel, log);
      if (isEnded(first)) return channel.close(first);
      const authenticated = await this.authenticate(channel, first, clientAddress, log);
      handshake.release();
      if (isEnded(authenticated)) return channel.close(authenticated);
      const connection = await this.pickConnection(channel, authenticated, clientAddress);
      if (isEnded(connection)) return channel.close(connection);
      const session = this.limits.openSession(authenticated.identity.name);
      if (!session.ok) return channel.close(await this.tooManySessions(channel, authenticated, connection, clientAddress, session, log));
      releaseSession = session.release;
      await this.openAndRelay(channel, authenticated, connection, clientAddress);
    } catch (error) {
      channel.close(this.unexpected(error, log));
    } finally {
      handshake.release();
      releaseSession();
    }
  }

  /**
   * A client over a handshake limit: 53300, after its TLS and startup as Postgres answers it
   * (libpq shows no error sent before TLS), within a short deadline and a few at a time; past
   * those, at once.
   */
  private async refuseHandshake(socket: Socket, log: Logger): Promise<void> {
    const tooMany = "sorry, too many clients already";
    const report = this.limits.enterRefusalReport();
    if (!report.ok) {
      socket.end(tooManyConnections(tooMany));
      setTimeout(() => socket.destroy(), 2_000).unref();
      return;
    }
    const deadline = Math.min(REFUSAL_REPORT_DEADLINE_MS, this.deps.config().limits.handshakeTimeoutMs);
    const channel = new ClientChannel(socket, this.deps.tls, AbortSignal.timeout(deadline), log);
    try {
      const first = await this.accept(channel, log);
      channel.close(isEnded(first) ? first : replyAndClose(channel.startup.fail({ code: SqlState.tooManyConnections, message: tooMany })));
    } catch (error) {
      channel.close(this.unexpected(error, log));
    } finally {
      report.release();
    }
  }

  /** Up to the StartupMessage: TLS (both ways in), GSSAPI encryption refusal, cancel requests. */
  private async accept(channel: ClientChannel, log: Logger): Promise<StartupEvent | Ended> {
    for (;;) {
      const event = await channel.next();
      if (isEnded(event)) return event;
      switch (event.type) {
        case "write":
          channel.write(event.bytes);
          break;
        case "sslRequest": {
          const ended = channel.startTls();
          if (ended) return ended;
          break;
        }
        case "directTls": {
          const ended = await channel.startDirectTls(event.bytes);
          if (ended) return ended;
          break;
        }
        case "cancelRequest":
          await this.cancel(event.processId, event.secretKey, log);
          channel.stream.end();
          return closeSilently;
        case "startup":
          return event;
        case "terminate":
          channel.stream.end();
          return closeSilently;
        case "abandon":
          // Postgres logs "invalid length of startup packet" and closes without a word.
          log.info({ reason: event.reason }, "no startup packet; closing without a reply");
          return closeSilently;
        case "password":
        case "authenticated":
        case "authenticationFailed":
          throw new Error(`unexpected startup event ${event.type}`);
      }
    }
  }

  /**
   * Proves who the client is before anything else is said about the connection it asked for,
   * so an unauthenticated client learns nothing about which connections exist. Over TLS the
   * client sends its key (or token) in cleartext; in plaintext it proves its key with
   * SCRAM-SHA-256 and the key never crosses the wire. Failures are throttled per address and
   * per claimed identity.
   */
  private async authenticate(channel: ClientChannel, first: StartupEvent, clientAddress: string | null, log: Logger): Promise<Authenticated | Ended> {
    const { user } = first;
    const config = this.deps.config();
    const oidc = config.identity.oidc !== undefined;
    const mode = config.postgres.requireTls;
    const mustUseTls = mode === "always" || (mode === "non-loopback" && !isLoopback(clientAddress ?? ""));
    if (mustUseTls && !first.tls) {
      const message = `TLS is required for connections from ${clientAddress} (use sslmode=require)`;
      return this.refuseUnauthenticated(channel, first, clientAddress, { reason: "tls_required", message }, { code: SqlState.invalidAuthorizationSpecification, message });
    }
    const badPassword = (hint?: string) => ({ code: SqlState.invalidPassword, message: `password authentication failed for user "${user}"`, ...(hint ? { hint } : {}) });

    const throttled = this.throttle.verdict(clientAddress, user);
    if (throttled.locked) {
      // Debug: a guessing client would write a line per attempt; the lockout itself was a warn line.
      log.debug({ identity: cutClaim(user, 64), by: throttled.by, retryAfterMs: throttled.retryAfterMs, lockedOut: this.throttle.counters.lockedOut }, "attempt refused during a lockout");
      return this.refuseUnauthenticated(channel, first, clientAddress, { reason: "locked_out", by: throttled.by, retryAfterMs: throttled.retryAfterMs }, badPassword());
    }
    const failed = async (details: Record<string, unknown>, hint?: string): Promise<Ended> => {
      if (this.throttle.failed(clientAddress, user)) log.warn({ identity: cutClaim(user, 64), lockouts: this.throttle.counters.lockouts }, "repeated authentication failures; locking out");
      return this.refuseUnauthenticated(channel, first, clientAddress, details, badPassword(hint));
    };
    // The delay is waited before any verdict is answered, so how soon it comes tells nothing.
    const waitOutDelay = () => (throttled.delayMs > 0 ? this.steps.sleep(throttled.delayMs, channel.deadline).then(() => undefined, () => closeSilently) : Promise.resolve(undefined));

    // Over TLS with postgres.tlsAuth: password the client sends its key or token in cleartext;
    // otherwise it proves its key with SCRAM and the key never crosses the wire (over TLS with
    // SCRAM-SHA-256-PLUS offered, bound to our certificate).
    if (first.tls && config.postgres.tlsAuth === "password") {
      channel.write(channel.startup.requestPassword());
      const answer = await channel.next();
      if (isEnded(answer)) return answer;
      if (answer.type === "terminate") {
        channel.stream.end();
        return closeSilently;
      }
      if (answer.type !== "password") throw new Error(`expected a password, got ${answer.type}`);
      const late = await waitOutDelay();
      if (late) return late;
      let check: PasswordCheck;
      try {
        check = await this.deps.credentials.check(user, answer.password);
      } catch (error) {
        if (isCredentialsUnavailable(error)) return this.credentialsUnavailable(channel, first, clientAddress, error, log);
        throw error;
      }
      if (!check.ok) return failed({ reason: check.reason, method: check.method, ...check.details });
      this.throttle.succeeded(clientAddress, user);
      return { identity: check.identity, first };
    }

    let verifiers: ScramCandidates["verifiers"];
    try {
      ({ verifiers } = await this.deps.accessKeys.scramCandidates(user));
    } catch (error) {
      if (isCredentialsUnavailable(error)) return this.credentialsUnavailable(channel, first, clientAddress, error, log);
      throw error;
    }
    // SCRAM announces one salt before the client proves anything; all of an identity's keys
    // share it, so the proof is checked against every live key (rotation keeps the old one working).
    const channelBinding = first.tls ? this.channelBinding : undefined;
    channel.write(channel.startup.requestScram({ verifiers: verifiers.map((v) => v.verifier), mockSecret: this.mockSecret, ...(channelBinding ? { channelBinding } : {}) }));
    for (;;) {
      const answer = await channel.next();
      if (isEnded(answer)) return answer;
      switch (answer.type) {
        case "write":
          channel.write(answer.bytes);
          break;
        case "authenticated": {
          const late = await waitOutDelay();
          if (late) return late;
          const matched = verifiers[answer.verifier];
          if (matched) this.deps.accessKeys.touch(matched.keyId);
          this.throttle.succeeded(clientAddress, user);
          return { identity: { name: user, method: "access_key" }, first };
        }
        case "authenticationFailed": {
          const late = await waitOutDelay();
          if (late) return late;
          // SCRAM never shows the password: a token sent here cannot be told from a wrong key. An
          // identity without keys can only have meant a token, which needs TLS; every client is
          // told so (the same hint for all, so it says nothing about which identities have keys).
          const hint = oidc ? "an OIDC access token is accepted only over TLS (sslmode=require); without TLS only access keys are" : undefined;
          if (verifiers.length === 0 && oidc) {
            return failed({ reason: "token_needs_tls", method: answer.method, message: "no access key for this identity, and an OIDC token is not accepted without TLS" }, hint);
          }
          return failed({ reason: verifiers.length > 0 ? "wrong_key" : "no_key", method: answer.method }, hint);
        }
        case "terminate":
          channel.stream.end();
          return closeSilently;
        default:
          throw new Error(`unexpected event ${answer.type} during SCRAM`);
      }
    }
  }

  /** The connection the authenticated client asked for, if it exists and can serve it. */
  private async pickConnection(channel: ClientChannel, { identity, first }: Authenticated, clientAddress: string | null): Promise<ConnectionConfig | Ended> {
    const refuse = async (kind: EventKind, endReason: string, details: Record<string, unknown>, code: string, message: string) => {
      await this.steps.recordAuthenticated({ connection: first.database, protocol: "postgres", identity, clientAddress, clientApplication: first.params.application_name ?? null, kind, endReason, details });
      return replyAndClose(channel.startup.fail({ code, message }));
    };
    const { database, params } = first;
    const connection = this.deps.config().connections.find((c) => c.name === database && c.protocol === "postgres");
    if (!connection) {
      const message = `connection "${database}" does not exist`;
      return refuse("denied", "unknown_connection", { code: "unknown_connection", message }, SqlState.invalidCatalogName, message);
    }
    if (params.replication !== undefined && params.replication !== "false" && params.replication !== "0") {
      const message = "replication connections are not supported through the gateway";
      return refuse("denied", "unsupported", { code: "replication", message }, SqlState.featureNotSupported, message);
    }
    return connection;
  }

  /** An identity over `limits.maxSessionsPerIdentity`: 53300, as Postgres answers a role over its connection limit. */
  private async tooManySessions(channel: ClientChannel, { identity, first }: Authenticated, connection: ConnectionConfig, clientAddress: string | null, refused: Extract<Admission, { ok: false }>, log: Logger): Promise<Ended> {
    this.steps.logLimit(refused, log, "53300", { identity: identity.name });
    const message = `too many connections for identity "${identity.name}"`;
    await this.steps.recordAuthenticated({
      connection: connection.name,
      protocol: "postgres",
      identity,
      clientAddress,
      clientApplication: first.params.application_name ?? null,
      kind: "denied",
      endReason: "too_many_sessions",
      details: { code: "too_many_sessions", limit: refused.limit, max: refused.max, message },
    });
    return replyAndClose(channel.startup.fail({ code: SqlState.tooManyConnections, message }));
  }

  /** Policy, a recorded session and a stream to the server through the connector; then the relay. */
  private async openAndRelay(channel: ClientChannel, { identity, first }: Authenticated, connection: ConnectionConfig, clientAddress: string | null): Promise<void> {
    const forwarded: Record<string, string> = {};
    for (const [name, value] of Object.entries(first.params)) if (!NOT_FORWARDED.has(name)) forwarded[name] = value;
    const opened = await this.deps.broker.open({
      connection,
      identity,
      clientAddress,
      clientApplication: first.params.application_name ?? null,
      params: encodeDialRequest({ startup: forwarded }),
    });
    if (!opened.ok) return channel.close(replyAndClose(channel.startup.fail(failureResponse(opened.failure))));

    // Admit: finish the client's startup with what the server reported through the connector.
    const { session, stream: upstream } = opened;
    const server = decodeDialResult(opened.opened.params ?? {});
    const clientKey = server.backendKey ? this.cancelKeys.issue({ session, serverKey: server.backendKey }) : undefined;
    const routeKey = clientKey ? cancelRouteKey(clientKey) : undefined;
    if (routeKey) this.deps.peers?.publish(routeKey, { protocol: "postgres", sessionId: session.id, identity: session.meta.identity.name });
    channel.write(channel.startup.complete({ parameters: server.parameters, ...(clientKey ? { backendKey: clientKey } : {}) }));
    const early = channel.handOver();
    try {
      await this.relaySession(channel.stream, upstream, session, early, server.parameters);
    } finally {
      if (clientKey) this.cancelKeys.release(clientKey);
      if (routeKey) this.deps.peers?.release(routeKey);
    }
  }

  /** A client that has not proved who it is: recorded as unauthenticated under the names it claimed (cut), in bursts. */
  private async refuseUnauthenticated(channel: ClientChannel, first: StartupEvent, clientAddress: string | null, details: Record<string, unknown>, error: { code: string; message: string; hint?: string }): Promise<Ended> {
    const reply = channel.startup.fail(error);
    await this.refusals.record({
      connection: first.database,
      protocol: "postgres",
      identity: { name: first.user, method: null },
      clientAddress,
      clientApplication: first.params.application_name ?? null,
      kind: "auth_failed",
      endReason: "auth_failed",
      details,
    });
    return replyAndClose(reply);
  }

  /**
   * The identity's keys are not in memory and the store does not answer: 57P03 (cannot_connect_now),
   * as Postgres answers while it starts; recorded like any refusal (the journal does not need the store).
   */
  private async credentialsUnavailable(channel: ClientChannel, first: StartupEvent, clientAddress: string | null, error: GatewayError, log: Logger): Promise<Ended> {
    log.warn({ identity: cutClaim(first.user, 64), reason: error.message }, "login refused: the identity's access keys cannot be checked now (the store is not answering)");
    return this.refuseUnauthenticated(channel, first, clientAddress, { reason: "credentials_unavailable", message: error.message }, {
      code: SqlState.cannotConnectNow,
      message: "the gateway cannot check credentials right now; try again shortly",
    });
  }

  /** What went wrong that was not the client's doing, as the client's last message. */
  private unexpected(error: unknown, log: Logger): Ended {
    if (isRecordingUnavailable(error)) {
      log.warn({ reason: error.recording }, "session refused: recording unavailable");
      return replyAndClose(recordingRefusal(error));
    }
    if (isPostgresProtocolError(error)) {
      log.info({ err: error }, "protocol violation during startup");
      return replyAndClose(errorResponseFor(error));
    }
    log.error({ err: error }, "postgres session failed");
    return replyAndClose(errorResponse({ severity: "FATAL", code: SqlState.internalError, message: "internal gateway error" }));
  }

  private async relaySession(client: Duplex, upstream: Duplex, session: RecordedSession, early: Buffer[] | Uint8Array[], parameters: Readonly<Record<string, string>>): Promise<void> {
    const { clock, config } = this.deps;
    // Outcomes are recorded once the reply is on its way, in order (listener-steps.ts).
    const { record, flush: flushRecords } = deferredRecords();
    // The client said goodbye (Terminate): it ended the session, whichever socket closes first.
    let clientTerminated = false;
    const observer = new PostgresObserver(
      {
        // Write-ahead: journaled before the chunk that runs it is forwarded (see `up` below).
        commandStarted: (command) => session.commandStarted(command, commandDraft(command)),
        commandCompleted: (command, outcome) => record(() => session.commandCompleted(command, commandEvent(command, outcome))),
        notification: (n) => record(() => session.record({ kind: "notification", timeUs: n.at, command: null, details: { channel: n.channel, payload: n.payload, processId: n.processId } })),
        serverError: (e, at) => record(() => session.record({ kind: "server_error", timeUs: at, outcome: "error", details: { sqlstate: e.code, message: e.message, severity: e.severity } })),
        terminated: () => (clientTerminated = true),
      },
      {
        now: clock,
        maxParamBytes: config().recording.maxParamBytes,
        standardConformingStrings: parameters.standard_conforming_strings !== "off",
      },
    );
    // A stopping gateway ends the session as Postgres's own shutdown does: FATAL 57P01, sent
    // only between the server's messages (inside one the client could not parse it).
    let endedForShutdown = false;
    const endForShutdown = () => {
      if (endedForShutdown) return;
      endedForShutdown = true;
      if (!client.destroyed && !client.writableEnded) client.end(ADMIN_SHUTDOWN);
      upstream.destroy();
    };
    const forgetSession = this.steps.openSessions.add(() => {
      if (observer.backendAtMessageBoundary) endForShutdown();
    });
    // Strict recording: a chunk that starts commands waits until their records are durable.
    const up = timedInspector(session, (chunk: Buffer | Uint8Array) => {
      observer.frontend(chunk);
      return session.writeAhead();
    });
    let refused: Error | undefined;
    for (const chunk of early) {
      // A protocol violation throws here, out of the session, as before; only the wait is a refusal.
      const wait = up(chunk);
      try {
        await wait;
      } catch (error) {
        refused = error as Error;
        break;
      }
      upstream.write(chunk);
    }
    const result = refused
      ? (client.end(recordingRefusal(refused)), upstream.destroy(), { bytesUp: 0, bytesDown: 0, error: refused, violation: "up" as const, endedBy: "client" as const })
      : await relay(client, upstream, {
          up,
          down: (chunk) => {
            observer.backend(chunk);
            // The relay writes this chunk right after we return; the farewell follows it.
            if (this.steps.openSessions.shuttingDown && !endedForShutdown && observer.backendAtMessageBoundary) queueMicrotask(endForShutdown);
          },
          onViolation: (error, direction) =>
            isRecordingUnavailable(error)
              ? recordingRefusal(error)
              : isPostgresProtocolError(error)
                ? direction === "up"
                  ? errorResponseFor(error)
                  : errorResponse({ severity: "FATAL", code: SqlState.protocolViolation, message: "the server sent a malformed message; the session was closed" })
                : undefined,
          // The connector went away mid-session: tell the client why, as a server would
          // (only between the server's messages; inside one the client could not parse it).
          onResourceError: (error) =>
            error instanceof TunnelError && observer.backendAtMessageBoundary
              ? errorResponse({ severity: "FATAL", code: SqlState.connectionFailure, message: `the connection to the resource was lost: connector "${session.meta.connector}" went away (${error.message})` })
              : undefined,
        });
    try {
      observer.end();
    } catch {
      // A broken observer already said why through the relay result.
    }
    forgetSession();
    flushRecords();
    await session.endRelay({ ...result, shutdown: this.steps.openSessions.shuttingDown, clientSaidGoodbye: clientTerminated });
  }

  /**
   * Routes a CancelRequest to the session's connector, which sends it to the server with the real
   * key. A key this gateway did not issue may be another gateway's (they share the store): it is
   * looked up there and handed to its gateway, which checks it again (peer-cancels.ts).
   */
  private async cancel(processId: number, secretKey: Uint8Array, log: Logger): Promise<void> {
    const route = this.cancelKeys.find({ processId, secretKey });
    if (!route) {
      const peers = this.deps.peers;
      const forwarded = peers ? await peers.forwardPostgresCancel(cancelRouteKey({ processId, secretKey })).catch((err: unknown) => (log.warn({ err }, "could not look the cancel key up in the store"), false)) : false;
      if (forwarded) log.info({ processId }, "cancel request for another gateway's session handed to it");
      else log.info({ processId }, "cancel request for an unknown key ignored");
      return;
    }
    await this.sendCancel(route);
  }

  /** A cancel another gateway received for one of this gateway's keys (it found `routeKey` in the store). */
  private async cancelForwarded(routeKey: string, from: string): Promise<void> {
    const route = this.cancelKeys.findByRouteKey(routeKey);
    if (!route) {
      this.deps.logger.info({ protocol: "postgres", from }, "a forwarded cancel names no session of this gateway (it ended); ignored");
      return;
    }
    await this.sendCancel(route, { forwardedBy: from });
  }

  private async sendCancel(route: CancelRoute, details?: Record<string, unknown>): Promise<void> {
    const opened = await this.deps.broker.openAuxiliary(route.session, { purpose: "cancel", params: encodeDialRequest({ startup: {}, cancel: route.serverKey }), ...(details ? { details } : {}) });
    if (!opened.ok) return;
    // The connector sends the CancelRequest once it has dialed; nothing comes back.
    opened.stream.resume();
    opened.stream.end();
  }
}

/**
 * Strict recording could not make the record durable: the command (or session) does not run, and
 * the client gets disk_full (53100) for a full journal, io_error (58030) for an unwritable one.
 */
function recordingRefusal(error: Error): Uint8Array {
  const { outOfSpace, why } = recordingRefusalReason(error);
  return errorResponse({
    severity: "FATAL",
    code: outOfSpace ? SqlState.diskFull : IO_ERROR,
    message: `the gateway cannot record this session (${why}); the command was not run`,
  });
}

/** The FATAL 53300 a client over a limit gets, before or after its startup (a client reads it either way). */
function tooManyConnections(message: string): Uint8Array {
  return errorResponse({ severity: "FATAL", code: SqlState.tooManyConnections, message });
}

/** What Postgres itself sends its clients when it shuts down (`pg_ctl stop -m fast`). */
const ADMIN_SHUTDOWN = errorResponse({ severity: "FATAL", code: SqlState.adminShutdown, message: "terminating connection due to administrator command" });

/** SQLSTATE 58030 io_error (errcodes.txt); not in the protocols package's table. */
const IO_ERROR = "58030";

/** The SQLSTATE a client sees for each way a session can fail to reach its resource. */
function failureResponse(failure: OpenFailure) {
  switch (failure.code) {
    case "denied":
      return { code: SqlState.invalidAuthorizationSpecification, message: failure.message };
    case "connector_unavailable":
      return { code: SqlState.connectionFailure, message: `connector unavailable: ${failure.message}` };
    case "target_refused":
      return { code: SqlState.connectionFailure, message: `the resource could not be reached: ${failure.message}` };
  }
}


import type { Socket } from "node:net";
import { TLSSocket } from "node:tls";
import { randomBytes } from "node:crypto";
import type { Duplex } from "node:stream";
import {
  ClientStartup,
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
import type { GatewayConfig } from "../../config/schema.js";
import { isLoopback, type HostPort } from "../../config/address.js";
import type { Clock } from "../../clock.js";
import type { AccessKeys } from "../../identity/access-keys.js";
import type { PasswordAuthenticator } from "../../identity/authenticator.js";
import type { Logger } from "../../logger.js";
import type { Recorder, RecordedSession } from "../../sessions/recorder.js";
import { relay } from "../../sessions/relay.js";
import { recordRefusal, type OpenFailure, type SessionBroker } from "../../sessions/session-broker.js";
import type { TlsMaterial } from "../../tls-material.js";
import { ChunkSource } from "../chunk-source.js";
import { SocketServer } from "../socket-server.js";
import { drainListener, OpenSessions } from "../drain.js";
import { CancelKeys } from "./cancel-keys.js";
import { certificateBinding } from "./channel-binding.js";
import { commandDraft, commandEvent } from "./command-events.js";
import { GatewayError, type RecordingProblem } from "../../errors.js";

/** Postgres's own authentication_timeout default. */
const STARTUP_TIMEOUT_MS = 60_000;

/** Client startup parameters the connector forwards to the server; user and database are the connection's own. */
const NOT_FORWARDED = new Set(["user", "database", "replication"]);

export interface PostgresListenerDeps {
  config: () => GatewayConfig;
  broker: SessionBroker;
  recorder: Recorder;
  accessKeys: AccessKeys;
  passwords: PasswordAuthenticator;
  tls: TlsMaterial;
  clock: Clock;
  logger: Logger;
}

class Refused extends Error {
  constructor(readonly response: Uint8Array) {
    super("refused");
  }
}

/**
 * The Postgres endpoint: terminates the client's protocol (TLS, startup,
 * authentication with access keys), opens the session through the
 * connection's connector, then relays with an observer that records every
 * statement and its outcome.
 */
export class PostgresListener {
  private readonly server = new SocketServer((socket) => this.handle(socket));
  private readonly openSessions = new OpenSessions();
  readonly cancelKeys = new CancelKeys();
  /** Makes failed SCRAM attempts for unknown identities look alike across connections. */
  private readonly mockSecret = randomBytes(32);
  /** For SCRAM-SHA-256-PLUS over TLS (postgres.tlsAuth: scram). */
  private readonly channelBinding: Uint8Array | undefined;

  constructor(private readonly deps: PostgresListenerDeps) {
    this.channelBinding = certificateBinding(deps.tls.cert);
  }

  listen(at: HostPort): Promise<HostPort> {
    return this.server.listen(at);
  }

  close(): Promise<void> {
    return this.server.close();
  }

  /** Graceful stop: no new clients; sessions still open when `grace` aborts end with FATAL 57P01 (see drain.ts). */
  drain(grace: AbortSignal): Promise<void> {
    return drainListener(this.server, this.openSessions, grace);
  }

  private async handle(socket: Socket): Promise<void> {
    socket.on("error", () => undefined);
    const clientAddress = socket.remoteAddress ?? null;
    const log = this.deps.logger.child({ protocol: "postgres", clientAddress });
    let stream: Duplex = socket;
    let source = new ChunkSource(socket);
    const startup = new ClientStartup();

    const nextEvent = async (): Promise<ClientStartupEvent> => {
      for (;;) {
        const event = startup.next();
        if (event) return event;
        startup.push(await source.next(STARTUP_TIMEOUT_MS));
      }
    };

    try {
      // Phase 1: up to the StartupMessage (TLS, GSSAPI encryption refusal, cancel requests).
      let first: Extract<ClientStartupEvent, { type: "startup" }> | undefined;
      while (!first) {
        const event = await nextEvent();
        switch (event.type) {
          case "write":
            stream.write(event.bytes);
            break;
          case "sslRequest": {
            stream.write(startup.answerSsl(true));
            source.detach();
            const secure = new TLSSocket(socket, { isServer: true, secureContext: this.deps.tls.context });
            secure.on("error", () => undefined);
            stream = secure;
            source = new ChunkSource(secure);
            break;
          }
          case "directTls": {
            // libpq 17's sslnegotiation=direct: the ClientHello comes first, without an SSLRequest.
            // Its bytes, already read, go back in front of the socket: TLSSocket takes what a
            // socket has buffered before it reads the rest.
            socket.unshift(Buffer.concat([...event.bytes, ...source.detach()]));
            const secure = new TLSSocket(socket, { isServer: true, secureContext: this.deps.tls.context, ALPNProtocols: [POSTGRES_ALPN] });
            secure.on("error", () => undefined);
            // A client that stalls mid-handshake is cut off like one that stalls in the startup.
            const stalled = setTimeout(() => secure.destroy(), STARTUP_TIMEOUT_MS);
            await new Promise<void>((resolve, reject) => {
              secure.once("secure", resolve);
              secure.once("close", () => reject(new Error("client closed during the TLS handshake")));
            }).finally(() => clearTimeout(stalled));
            // As Postgres 17 does: direct TLS without ALPN "postgresql" could be another protocol's client.
            if (secure.alpnProtocol !== POSTGRES_ALPN) {
              log.info({ alpn: secure.alpnProtocol || null }, "direct TLS without the postgresql ALPN protocol; closing");
              secure.destroy();
              return;
            }
            stream = secure;
            source = new ChunkSource(secure);
            break;
          }
          case "cancelRequest":
            await this.cancel(event.processId, event.secretKey, log);
            socket.end();
            return;
          case "startup":
            first = event;
            break;
          case "terminate":
            socket.end();
            return;
          default:
            throw new Error(`unexpected startup event ${event.type}`);
        }
      }

      const { user, database, params } = first;
      const application = params.application_name ?? null;
      let identity: Identity = { name: user, method: first.tls ? null : "access_key" };
      const refuse = async (kind: string, endReason: string, details: Record<string, unknown>, response: Uint8Array): Promise<never> => {
        await recordRefusal(this.deps.recorder, { connection: database, protocol: "postgres", identity, clientAddress, clientApplication: application, kind, endReason, details }).catch(
          (err: unknown) => log.error({ err }, "could not record a refused attempt"),
        );
        throw new Refused(response);
      };

      // Phase 2: which connection, and is the channel acceptable for a password?
      const config = this.deps.config();
      const connection = config.connections.find((c) => c.name === database && c.protocol === "postgres");
      if (!connection) {
        const message = `connection "${database}" does not exist`;
        await refuse("denied", "unknown_connection", { code: "unknown_connection", message }, startup.fail({ code: SqlState.invalidCatalogName, message }));
        return;
      }
      if (params.replication !== undefined && params.replication !== "false" && params.replication !== "0") {
        const message = "replication connections are not supported through the gateway";
        await refuse("denied", "unsupported", { code: "replication", message }, startup.fail({ code: SqlState.featureNotSupported, message }));
      }
      const mode = config.postgres.requireTls;
      const mustUseTls = mode === "always" || (mode === "non-loopback" && !isLoopback(clientAddress ?? ""));
      if (mustUseTls && !first.tls) {
        const message = `TLS is required for connections from ${clientAddress} (use sslmode=require)`;
        await refuse("auth_failed", "auth_failed", { reason: "tls_required", message }, startup.fail({ code: SqlState.invalidAuthorizationSpecification, message }));
      }

      // Phase 3: authenticate the identity. Over TLS (postgres.tlsAuth: password) the client sends
      // its key or token in cleartext; otherwise it proves its key with SCRAM and the key never
      // crosses the wire — over TLS with SCRAM-SHA-256-PLUS offered, bound to our certificate.
      const badPassword = () => startup.fail({ code: SqlState.invalidPassword, message: `password authentication failed for user "${user}"` });
      if (first.tls && config.postgres.tlsAuth === "password") {
        stream.write(startup.requestPassword());
        const answer = await nextEvent();
        if (answer.type === "terminate") return void stream.end();
        if (answer.type !== "password") throw new Error(`expected a password, got ${answer.type}`);
        const check = await this.deps.passwords.check(user, answer.password);
        if (!check.ok) await refuse("auth_failed", "auth_failed", { reason: check.reason, method: check.method, ...check.details }, badPassword());
        else identity = check.identity;
      } else {
        const { verifiers } = await this.deps.accessKeys.scramCandidates(user);
        // SCRAM announces one salt before the client proves anything; all of an identity's keys
        // share it, so the proof is checked against every live key (rotation keeps the old one working).
        identity = { name: user, method: "access_key" };
        const channelBinding = first.tls ? this.channelBinding : undefined;
        stream.write(startup.requestScram({ verifiers: verifiers.map((v) => v.verifier), mockSecret: this.mockSecret, ...(channelBinding ? { channelBinding } : {}) }));
        for (;;) {
          const answer = await nextEvent();
          if (answer.type === "write") stream.write(answer.bytes);
          else if (answer.type === "authenticated") {
            const matched = verifiers[answer.verifier];
            if (matched) this.deps.accessKeys.touch(matched.keyId);
            break;
          } else if (answer.type === "authenticationFailed") {
            await refuse("auth_failed", "auth_failed", { reason: verifiers.length > 0 ? "wrong_key" : "no_key", method: answer.method }, badPassword());
          } else if (answer.type === "terminate") return void stream.end();
          else throw new Error(`unexpected event ${answer.type} during SCRAM`);
        }
      }

      // Phase 4: policy, session, and a stream to the server through the connector.
      const forwarded: Record<string, string> = {};
      for (const [name, value] of Object.entries(params)) if (!NOT_FORWARDED.has(name)) forwarded[name] = value;
      const opened = await this.deps.broker.open({
        connection,
        identity,
        clientAddress,
        clientApplication: application,
        params: encodeDialRequest({ startup: forwarded }),
      });
      if (!opened.ok) throw new Refused(startup.fail(failureResponse(opened.failure)));

      const { session, stream: upstream, link } = opened;
      const server = decodeDialResult(opened.opened.params ?? {});
      const clientKey = server.backendKey
        ? this.cancelKeys.issue({ session, connection, link, serverKey: server.backendKey })
        : undefined;
      stream.write(startup.complete({ parameters: server.parameters, ...(clientKey ? { backendKey: clientKey } : {}) }));
      const early = [...startup.remaining(), ...source.detach()];
      try {
        await this.relaySession(stream, upstream, session, early, server.parameters);
      } finally {
        if (clientKey) this.cancelKeys.release(clientKey);
      }
    } catch (error) {
      if (error instanceof Refused) {
        stream.end(error.response);
      } else if (isRecordingUnavailable(error)) {
        log.warn({ reason: error.recording }, "session refused: recording unavailable");
        stream.end(recordingRefusal(error));
      } else if (isPostgresProtocolError(error)) {
        log.info({ err: error }, "protocol violation during startup");
        stream.end(errorResponseFor(error));
      } else if (error instanceof Error && /client closed|no data from the client/.test(error.message)) {
        log.debug({ reason: error.message }, "client left during startup");
        stream.destroy();
      } else {
        log.error({ err: error }, "postgres session failed");
        stream.end(errorResponse({ severity: "FATAL", code: SqlState.internalError, message: "internal gateway error" }));
      }
      setTimeout(() => socket.destroy(), 2_000).unref();
    }
  }

  private async relaySession(client: Duplex, upstream: Duplex, session: RecordedSession, early: Buffer[] | Uint8Array[], parameters: Readonly<Record<string, string>>): Promise<void> {
    const { clock, config } = this.deps;
    // What the server's replies complete is recorded right after the reply is on its way to the
    // client (the relay writes the chunk once the observer returns), not before: recording an
    // event takes tens of µs, and a client waiting for its answer should not wait for that too.
    // In their order, and all before the session's own disconnect event (flushRecords).
    let pendingRecords: (() => Promise<void>)[] = [];
    const flushRecords = () => {
      const records = pendingRecords;
      pendingRecords = [];
      for (const record of records) void record().catch(() => undefined);
    };
    const record = (event: () => Promise<void>) => {
      if (pendingRecords.push(event) === 1) queueMicrotask(flushRecords);
    };
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
    const forgetSession = this.openSessions.add(() => {
      if (observer.backendAtMessageBoundary) endForShutdown();
    });
    let refused: Error | undefined;
    for (const chunk of early) {
      observer.frontend(chunk);
      try {
        await session.writeAhead();
      } catch (error) {
        refused = error as Error;
        break;
      }
      upstream.write(chunk);
    }
    const result = refused
      ? (client.end(recordingRefusal(refused)), upstream.destroy(), { bytesUp: 0, bytesDown: 0, error: refused, violation: "up" as const, endedBy: "client" as const })
      : await relay(client, upstream, {
          // Strict recording: a chunk that starts commands waits until their records are durable.
          up: (chunk) => {
            observer.frontend(chunk);
            return session.writeAhead();
          },
          down: (chunk) => {
            observer.backend(chunk);
            // The relay writes this chunk right after we return; the farewell follows it.
            if (this.openSessions.shuttingDown && !endedForShutdown && observer.backendAtMessageBoundary) queueMicrotask(endForShutdown);
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
    forgetSession();
    try {
      observer.end();
    } catch {
      // A broken observer already said why through the relay result.
    }
    flushRecords();
    const error = result.error;
    const shutdown = this.openSessions.shuttingDown && !clientTerminated;
    const endedBy = shutdown ? "gateway" : clientTerminated && !error ? "client" : result.endedBy;
    const reason = shutdown ? "gateway_shutdown" : isRecordingUnavailable(error) ? "recording_unavailable" : result.violation ? "protocol_violation" : error instanceof TunnelError ? "connector_lost" : error ? "error" : `${endedBy}_closed`;
    await session
      .record({
        kind: "disconnect",
        outcome: error ? "error" : "ok",
        details: { bytesUp: result.bytesUp, bytesDown: result.bytesDown, endedBy, ...(error ? { error: error.message } : {}) },
      })
      .catch(() => undefined);
    await session.close(reason).catch((err: unknown) => session.logger.error({ err }, "could not close the session record"));
  }

  /** Routes a CancelRequest to the session's connector, which sends it to the server with the real key. */
  private async cancel(processId: number, secretKey: Uint8Array, log: Logger): Promise<void> {
    const route = this.cancelKeys.find({ processId, secretKey });
    if (!route) {
      log.info({ processId }, "cancel request for an unknown key ignored");
      return;
    }
    const started = this.deps.clock();
    let outcome: "ok" | "error" = "ok";
    let message: string | undefined;
    try {
      const { stream } = await route.link.mux.open({
        sessionId: route.session.id,
        connection: route.connection.name,
        protocol: "postgres",
        target: { host: route.connection.target.host, port: route.connection.target.port, options: {} },
        credential: { user: "", passwordRef: "" },
        params: encodeDialRequest({ startup: {}, cancel: route.serverKey }),
      });
      stream.resume();
      stream.end();
    } catch (error) {
      outcome = "error";
      message = (error as Error).message;
    }
    await route.session
      .record({ kind: "cancel", timeUs: started, outcome, durationUs: this.deps.clock() - started, details: message ? { message } : { sent: true } })
      .catch(() => undefined);
  }
}

function isRecordingUnavailable(error: unknown): error is GatewayError & { recording: RecordingProblem } {
  return error instanceof GatewayError && error.code === "RECORDING_UNAVAILABLE" && error.recording !== undefined;
}

/**
 * Strict recording could not make the record durable: the command (or session) does not run, and
 * the client gets disk_full (53100) for a full journal, io_error (58030) for an unwritable one.
 */
function recordingRefusal(error: Error): Uint8Array {
  const problem = isRecordingUnavailable(error) ? error.recording : { reason: "journal_unwritable" as const };
  return errorResponse({
    severity: "FATAL",
    code: problem.reason === "journal_full" ? SqlState.diskFull : IO_ERROR,
    message: `the gateway cannot record this session (${problem.reason === "journal_full" ? "its journal is full" : "its journal cannot be written"}); the command was not run`,
  });
}

/** What Postgres itself sends its clients when it shuts down (`pg_ctl stop -m fast`). */
const ADMIN_SHUTDOWN = errorResponse({ severity: "FATAL", code: SqlState.adminShutdown, message: "terminating connection due to administrator command" });

/** The ALPN protocol a direct-TLS Postgres client offers (and requires the server to pick). */
const POSTGRES_ALPN = "postgresql";

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


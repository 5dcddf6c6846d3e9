import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import {
  Capability,
  MysqlObserver,
  MysqlProtocolError,
  ServerError,
  decodeDialResult,
  decodeKillResult,
  encodeDialRequest,
  encodeErrPacket,
  encodeOkPacket,
  encodePacket,
  isMysqlProtocolError,
  type ClientLogin,
  type MysqlObservedCommand,
  type ServerErrorFields,
} from "@gatehouse/protocols/mysql";
import { TunnelError } from "@gatehouse/proto";
import type { Identity } from "@gatehouse/store";
import type { ConnectionConfig, GatewayConfig } from "../../config/schema.js";
import { isLoopback, type HostPort } from "../../config/address.js";
import type { Clock } from "../../clock.js";
import type { AccessKeys } from "../../identity/access-keys.js";
import type { AuthThrottle } from "../../identity/auth-throttle.js";
import type { CredentialChecker, PasswordCheck } from "../../identity/credential-checker.js";
import type { Logger } from "../../logger.js";
import type { Recorder, RecordedSession } from "../../sessions/recorder.js";
import { timedInspector } from "../../sessions/command-timing.js";
import { relay, type Rewrite } from "../../sessions/relay.js";
import { cutClaim, type RefusalRecords } from "../../sessions/refusal-records.js";
import type { OpenFailure, SessionBroker } from "../../sessions/session-broker.js";
import type { TlsMaterial } from "../../tls-material.js";
import type { AdmissionLimits, Admission } from "../admission-limits.js";
import { ListenerSteps, deferredRecords, isCredentialsUnavailable, isRecordingUnavailable, recordingRefusalReason } from "../listener-steps.js";
import type { ListenerState } from "../server-watch.js";
import type { GatewayError } from "../../errors.js";
import { MysqlClientChannel, closeSilently, isEnded, replyAndClose, type Ended } from "./client-channel.js";
import { commandDraft, commandEvent } from "./command-events.js";
import { GreetingProfiles } from "./greeting-profile.js";
import { ThreadIds, type ThreadRoute } from "./thread-ids.js";
import type { ForwardedKill, KillAnswer, PeerCancels } from "../peer-cancels.js";
import { loginNames } from "./login-names.js";
import { KILL_STATEMENT, serveGatewayOnly } from "./gateway-only-session.js";

export interface MysqlListenerDeps {
  config: () => GatewayConfig;
  broker: SessionBroker;
  recorder: Recorder;
  accessKeys: AccessKeys;
  credentials: CredentialChecker;
  /** The Postgres listener's certificate material (postgres.tls), offered through CLIENT_SSL. */
  tls: TlsMaterial;
  clock: Clock;
  logger: Logger;
  /** Waits out an authentication delay; tests may pass a faster one. Rejects when `signal` aborts. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Shared with the gateway's other listeners, so limits and lockouts count across protocols. Default: this listener's own. */
  limits?: AdmissionLimits;
  throttle?: AuthThrottle;
  /** KILLs across gateways sharing the store (peer-cancels.ts); left out: a KILL reaches only this gateway's sessions. */
  peers?: PeerCancels;
}

/** Who a client proved to be, and its login. */
interface Authenticated {
  readonly identity: Identity;
  readonly login: NamedLogin;
}

/**
 * The client's login as the gateway reads it (login-names.ts): `user` the identity, `database` the
 * connection, whether the client named them as user and database or as `IDENTITY#CONNECTION`.
 */
interface NamedLogin extends ClientLogin {
  /** The resource's initial database the client asked for with `IDENTITY#CONNECTION`; undefined: target.database. */
  readonly initialDatabase: string | undefined;
}

/** The MySQL errors this listener answers with (errno + SQLSTATE as MySQL/MariaDB use them); see docs/configuration.md. */
export const MysqlRefusal = {
  badCredentials: ServerError.ER_ACCESS_DENIED_ERROR,
  tlsRequired: ServerError.ER_SECURE_TRANSPORT_REQUIRED,
  notAllowed: ServerError.ER_DBACCESS_DENIED_ERROR,
  unknownConnection: ServerError.ER_BAD_DB_ERROR,
  /** A session without a connection (a KILL-only login) asked for anything but KILL, PING, QUIT: ER_NO_DB_ERROR. */
  noConnection: { errno: 1046, sqlState: "3D000" },
  tooManyConnections: ServerError.ER_CON_COUNT_ERROR,
  /** The connector or the resource could not be reached: ER_CONNECT_TO_FOREIGN_DATA_SOURCE. */
  unreachable: { errno: 1429, sqlState: "HY000" },
  /** The connector went away mid-session: ER_NET_READ_ERROR. */
  lost: ServerError.ER_NET_READ_ERROR,
  /** Strict recording: the journal (or its disk) is full. */
  recordingFull: ServerError.ER_DISK_FULL,
  /** Strict recording: the journal cannot be written: ER_GET_ERRNO. */
  recordingUnwritable: { errno: 1030, sqlState: "HY000" },
  credentialsUnavailable: ServerError.ER_UNKNOWN_ERROR,
  killDenied: ServerError.ER_KILL_DENIED_ERROR,
  noSuchThread: ServerError.ER_NO_SUCH_THREAD,
  notSupported: ServerError.ER_NOT_SUPPORTED_YET,
  malformed: ServerError.ER_MALFORMED_PACKET,
  outOfOrder: ServerError.ER_NET_PACKETS_OUT_OF_ORDER,
  shutdown: ServerError.ER_SERVER_SHUTDOWN,
} as const;


/**
 * The MySQL/MariaDB endpoint: terminates the client's protocol (greeting, TLS through the SSL
 * capability, authentication with access keys or tokens), opens the session through the
 * connection's connector, then relays with the MySQL observer recording every command.
 *
 * The same steps as the Postgres listener: accept (greeting, TLS, login) → authenticate → pick
 * the connection (the login's database) → admit (limits) → open → relay → end. The handshake
 * has one deadline, `limits.handshakeTimeoutMs`.
 */
export class MysqlListener {
  readonly threadIds = new ThreadIds();
  readonly profiles = new GreetingProfiles();
  readonly limits: AdmissionLimits;
  readonly throttle: AuthThrottle;
  readonly refusals: RefusalRecords;
  private readonly steps: ListenerSteps;

  constructor(private readonly deps: MysqlListenerDeps) {
    this.steps = new ListenerSteps(deps, "mysql", (socket) => this.serve(socket));
    ({ limits: this.limits, throttle: this.throttle, refusals: this.refusals } = this.steps);
    deps.peers?.onMysqlKill((kill) => this.killForwarded(kill));
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

  /** Graceful stop: no new clients; sessions still open when `grace` aborts end with ERR 1053 (server shutdown). */
  drain(grace: AbortSignal): Promise<void> {
    return this.steps.drain(grace);
  }

  /** One client, from accept to the end of its session. */
  private async serve(socket: Socket): Promise<void> {
    socket.on("error", () => undefined);
    const clientAddress = socket.remoteAddress ?? null;
    const log = this.deps.logger.child({ protocol: "mysql", clientAddress });
    const config = this.deps.config();
    const threadId = this.threadIds.next();
    const channel = new MysqlClientChannel(socket, this.deps.tls, this.greeting(threadId), AbortSignal.timeout(config.limits.handshakeTimeoutMs), log);
    const handshake = this.limits.enterHandshake(clientAddress);
    if (!handshake.ok) {
      // MySQL answers a client over max_connections with ERR 1040 in place of the greeting.
      this.steps.logLimit(handshake, log, "1040");
      return channel.close(replyAndClose(channel.handshake.fail({ ...MysqlRefusal.tooManyConnections, message: "Too many connections" })));
    }
    let releaseSession = () => {};
    try {
      channel.write(channel.handshake.start());
      const accepted = await this.accept(channel);
      if (isEnded(accepted)) return channel.close(accepted);
      const names = loginNames(accepted.user, accepted.database);
      const login: NamedLogin = { ...accepted, user: names.identity, database: names.connection, initialDatabase: names.database };
      const authenticated = await this.authenticate(channel, login, clientAddress, log);
      handshake.release();
      if (isEnded(authenticated)) return channel.close(authenticated);
      if (authenticated.login.database === undefined) return await this.serveWithoutConnection(channel, authenticated, clientAddress);
      const connection = await this.pickConnection(channel, authenticated, clientAddress);
      if (isEnded(connection)) return channel.close(connection);
      const session = this.limits.openSession(authenticated.identity.name);
      if (!session.ok) return channel.close(await this.tooManySessions(channel, authenticated, connection, clientAddress, session, log));
      releaseSession = session.release;
      await this.openAndRelay(channel, authenticated, connection, clientAddress, threadId);
    } catch (error) {
      channel.close(this.unexpected(channel, error, log));
    } finally {
      handshake.release();
      releaseSession();
    }
  }

  private greeting(connectionId: number) {
    const config = this.deps.config();
    const names = config.connections.filter((c) => c.protocol === "mysql").map((c) => c.name);
    const greeting = this.profiles.greeting(names, config.mysql.serverVersion);
    return { ...greeting, connectionId, capabilities: (greeting.capabilities | Capability.CLIENT_SSL) >>> 0 };
  }

  /** Up to the login: TLS when the client asks for it. */
  private async accept(channel: MysqlClientChannel): Promise<ClientLogin | Ended> {
    for (;;) {
      const event = await channel.next();
      if (isEnded(event)) return event;
      switch (event.type) {
        case "sslRequest": {
          const ended = channel.startTls();
          if (ended) return ended;
          break;
        }
        case "login":
          return event;
        default:
          throw new Error(`unexpected handshake event ${event.type}`);
      }
    }
  }

  /**
   * Proves who the client is before anything is said about the connection it named. Over TLS the
   * client sends its access key or OIDC token in cleartext (caching_sha2_password's full
   * authentication, or mysql_clear_password); in plaintext it proves its access key with
   * mysql_native_password against the key's SHA1(SHA1(key)) verifier. Failures are throttled.
   */
  private async authenticate(channel: MysqlClientChannel, login: NamedLogin, clientAddress: string | null, log: Logger): Promise<Authenticated | Ended> {
    const { user } = login;
    const config = this.deps.config();
    const mode = config.mysql.requireTls;
    const mustUseTls = mode === "always" || (mode === "non-loopback" && !isLoopback(clientAddress ?? ""));
    if (mustUseTls && !login.tls) {
      const message = `Connections using insecure transport are prohibited: TLS is required for connections from ${clientAddress} (use --ssl / ssl-mode=REQUIRED)`;
      return this.refuseUnauthenticated(channel, login, clientAddress, { reason: "tls_required", message }, { ...MysqlRefusal.tlsRequired, message });
    }
    const denied = (hint?: string): ServerErrorFields => ({
      ...MysqlRefusal.badCredentials,
      message: `Access denied for user '${cutClaim(user, 64)}'${hint ? ` (${hint})` : ""}`,
    });
    const throttled = this.throttle.verdict(clientAddress, user);
    if (throttled.locked) {
      log.debug({ identity: cutClaim(user, 64), by: throttled.by, retryAfterMs: throttled.retryAfterMs }, "attempt refused during a lockout");
      return this.refuseUnauthenticated(channel, login, clientAddress, { reason: "locked_out", by: throttled.by, retryAfterMs: throttled.retryAfterMs }, denied());
    }
    const failed = async (details: Record<string, unknown>, hint?: string): Promise<Ended> => {
      if (this.throttle.failed(clientAddress, user)) log.warn({ identity: cutClaim(user, 64), lockouts: this.throttle.counters.lockouts }, "repeated authentication failures; locking out");
      return this.refuseUnauthenticated(channel, login, clientAddress, details, denied(hint));
    };
    const waitOutDelay = () => (throttled.delayMs > 0 ? this.steps.sleep(throttled.delayMs, channel.deadline).then(() => undefined, () => closeSilently) : Promise.resolve(undefined));

    if (login.tls) {
      channel.write(channel.handshake.requestPassword());
      for (;;) {
        const answer = await channel.next();
        if (isEnded(answer)) return answer;
        if (answer.type === "write") {
          channel.write(answer.bytes);
          continue;
        }
        if (answer.type !== "password") throw new Error(`expected a password, got ${answer.type}`);
        const late = await waitOutDelay();
        if (late) return late;
        let check: PasswordCheck;
        try {
          check = await this.deps.credentials.check(user, answer.password);
        } catch (error) {
          if (isCredentialsUnavailable(error)) return this.credentialsUnavailable(channel, login, clientAddress, error, log);
          throw error;
        }
        if (!check.ok) return failed({ reason: check.reason, method: check.method, plugin: answer.plugin, ...check.details });
        this.throttle.succeeded(clientAddress, user);
        return { identity: check.identity, login };
      }
    }

    let candidates: Awaited<ReturnType<AccessKeys["nativeCandidates"]>>;
    try {
      candidates = await this.deps.accessKeys.nativeCandidates(user);
    } catch (error) {
      if (isCredentialsUnavailable(error)) return this.credentialsUnavailable(channel, login, clientAddress, error, log);
      throw error;
    }
    const { verifiers, withoutNative } = candidates;
    const switchRequest = channel.handshake.checkNativePassword(verifiers.map((v) => v.verifier));
    if (switchRequest) channel.write(switchRequest);
    const answer = await channel.next();
    if (isEnded(answer)) return answer;
    const late = await waitOutDelay();
    if (late) return late;
    if (answer.type === "authenticated") {
      const matched = verifiers[answer.verifier];
      if (matched) this.deps.accessKeys.touch(matched.keyId);
      this.throttle.succeeded(clientAddress, user);
      return { identity: { name: user, method: "access_key" }, login };
    }
    if (answer.type !== "authenticationFailed") throw new Error(`expected a verdict, got ${answer.type}`);
    // Native auth never shows the password: a token cannot be told from a wrong key. Keys made
    // before MySQL support have no native verifier; they, and tokens, need TLS. Every client is
    // told so alike, so the hint says nothing about which identities have keys.
    const hint = "without TLS only access keys made since MySQL support are accepted; use TLS for older keys and OIDC tokens";
    if (verifiers.length === 0) {
      return failed({ reason: "no_key", method: "access_key", plugin: "mysql_native_password", ...(withoutNative > 0 ? { message: `the identity's ${withoutNative} live key(s) have no mysql_native_password verifier (made before MySQL support): use TLS` } : {}) }, hint);
    }
    return failed({ reason: "wrong_key", method: "access_key", plugin: "mysql_native_password" }, hint);
  }

  /** The connection the client named (as its database, or after `#` in its user): it must exist and speak MySQL. */
  private async pickConnection(channel: MysqlClientChannel, { identity, login }: Authenticated, clientAddress: string | null): Promise<ConnectionConfig | Ended> {
    const name = login.database ?? "";
    const connection = this.deps.config().connections.find((c) => c.name === name && c.protocol === "mysql");
    if (connection) return connection;
    const message = login.database === undefined ? "name the connection: -D CONNECTION, or user IDENTITY#CONNECTION" : `Unknown connection '${cutClaim(name, 64)}'`;
    await this.steps.recordAuthenticated({
      connection: name,
      protocol: "mysql",
      identity,
      clientAddress,
      clientApplication: clientApplication(login),
      kind: "denied",
      endReason: "unknown_connection",
      details: { reason: "unknown_connection", code: "unknown_connection", message },
    });
    return replyAndClose(channel.handshake.fail({ ...MysqlRefusal.unknownConnection, message }));
  }

  /**
   * An authenticated login that named no connection (the mariadb client's Ctrl-C connection,
   * which sends `KILL QUERY <id>` with the user only): admitted as a gateway-only session, recorded
   * with connection "" and no connector, answering KILL, PING and QUIT itself (gateway-only-session.ts).
   * Not counted against `maxSessionsPerIdentity`: a KILL must get through when the identity is at its limit.
   */
  private async serveWithoutConnection(channel: MysqlClientChannel, { identity, login }: Authenticated, clientAddress: string | null): Promise<void> {
    const session = await this.deps.recorder.open({ identity, connection: "", protocol: "mysql", connector: null, clientAddress, clientApplication: clientApplication(login) });
    await session.record({ kind: "connect", outcome: "ok", details: { gatewayOnly: true } });
    channel.write(channel.handshake.complete({ statusFlags: 0x2 }));
    const early = channel.handOver();
    let endSession = () => {};
    const forgetSession = this.steps.openSessions.add(() => endSession());
    const who = { identity, capabilities: login.capabilities };
    const result = await serveGatewayOnly(channel.stream, early, {
      session,
      capabilities: login.capabilities,
      noConnection: { ...MysqlRefusal.noConnection, message: "No database selected: name the connection: -D CONNECTION, or user IDENTITY#CONNECTION" },
      kill: (command, sequenceId) => this.killThread(command, sequenceId, who, session),
      violation: (error) => this.violationReply(error, "up"),
      onEnder: (end) => (endSession = end),
    });
    forgetSession();
    await session.endRelay({ bytesUp: result.bytesUp, bytesDown: result.bytesDown, endedBy: "client", shutdown: this.steps.openSessions.shuttingDown, clientSaidGoodbye: result.clientQuit, ...(result.error ? { error: result.error } : {}), ...(result.violation ? { violation: result.violation } : {}) });
  }

  /** An identity over `limits.maxSessionsPerIdentity`: ERR 1040. */
  private async tooManySessions(channel: MysqlClientChannel, { identity, login }: Authenticated, connection: ConnectionConfig, clientAddress: string | null, refused: Extract<Admission, { ok: false }>, log: Logger): Promise<Ended> {
    this.steps.logLimit(refused, log, "1040", { identity: identity.name });
    const message = `Too many connections for identity '${identity.name}'`;
    await this.steps.recordAuthenticated({
      connection: connection.name,
      protocol: "mysql",
      identity,
      clientAddress,
      clientApplication: clientApplication(login),
      kind: "denied",
      endReason: "too_many_sessions",
      details: { code: "too_many_sessions", limit: refused.limit, max: refused.max, message },
    });
    return replyAndClose(channel.handshake.fail({ ...MysqlRefusal.tooManyConnections, message }));
  }

  /** Policy, a recorded session and a logged-in stream to the server through the connector; then the relay. */
  private async openAndRelay(channel: MysqlClientChannel, { identity, login }: Authenticated, connection: ConnectionConfig, clientAddress: string | null, threadId: number): Promise<void> {
    // LOAD DATA LOCAL INFILE: a client without CLIENT_LOCAL_FILES is refused by the server itself
    // (ERR 1148), cleanly, before any file is asked for; so the capability goes on only where allowed.
    const capabilities = connection.allowLocalInfile ? login.capabilities : (login.capabilities & ~Capability.CLIENT_LOCAL_FILES) >>> 0;
    const opened = await this.deps.broker.open({
      connection,
      identity,
      clientAddress,
      clientApplication: clientApplication(login),
      params: encodeDialRequest({
        client: {
          capabilities,
          mariadbCapabilities: login.mariadbCapabilities,
          characterSet: login.characterSet,
          maxPacketSize: login.maxPacketSize,
          attributes: login.attributes,
          ...(login.initialDatabase !== undefined ? { database: login.initialDatabase } : {}),
        },
      }),
      // Not a COM_INIT_DB the observer sees: the session starting elsewhere than target.database is recorded here.
      ...(login.initialDatabase !== undefined ? { connectDetails: { database: login.initialDatabase } } : {}),
    });
    if (!opened.ok) return channel.close(replyAndClose(channel.handshake.fail(failureError(opened.failure))));

    const { session, stream: upstream } = opened;
    const server = decodeDialResult(opened.opened.params ?? {});
    this.profiles.learn(connection.name, server);
    let endSession = () => {};
    this.threadIds.bind(threadId, { session, identity: identity.name, serverThreadId: server.connectionId, end: () => endSession() });
    this.deps.peers?.publish(`mysql:${threadId}`, { protocol: "mysql", sessionId: session.id, identity: identity.name });
    channel.write(channel.handshake.complete({ statusFlags: server.statusFlags }));
    const early = channel.handOver();
    try {
      await this.relaySession(channel.stream, upstream, session, early, { identity, capabilities, threadId, allowLocalInfile: connection.allowLocalInfile }, (end) => (endSession = end));
    } finally {
      this.threadIds.release(threadId);
      this.deps.peers?.release(`mysql:${threadId}`);
    }
  }

  private async relaySession(
    client: Duplex,
    upstream: Duplex,
    session: RecordedSession,
    early: Uint8Array[],
    who: { identity: Identity; capabilities: number; threadId: number; allowLocalInfile: boolean },
    onEnder: (end: () => void) => void,
  ): Promise<void> {
    const { clock, config } = this.deps;
    // As the Postgres listener: outcomes are recorded right after the reply is on its way, in order.
    const { record, flush: flushRecords } = deferredRecords();
    let clientQuit = false;
    /** Commands the listener answers itself (KILL): recorded with the listener's outcome, not the observer's "refused". */
    const answered = new Set<MysqlObservedCommand>();
    const observer = new MysqlObserver(
      {
        commandStarted: (command) => session.commandStarted(command, commandDraft(command)),
        commandCompleted: (command, outcome) => {
          if (!answered.has(command)) record(() => session.commandCompleted(command, commandEvent(command, outcome)));
        },
        screen: (commands) => screen(commands),
        serverError: (e, at) => record(() => session.record({ kind: "server_error", timeUs: at, outcome: "error", details: { errno: e.errno, sqlstate: e.sqlState, message: e.message } })),
        terminated: () => (clientQuit = true),
        // The server was not told the client may send files (no CLIENT_LOCAL_FILES): a request for
        // one anyway is not passed on; the session ends before the client could answer it.
        localInfileRequested: (_command, fileName) => {
          if (!who.allowLocalInfile) throw new MysqlProtocolError("PROTOCOL_VIOLATION", `the server asked for the local file '${fileName}' though LOAD DATA LOCAL INFILE is not allowed on this connection`);
        },
      },
      { now: clock, capabilities: who.capabilities, maxParamBytes: config().recording.maxParamBytes },
    );
    const screen = (commands: readonly MysqlObservedCommand[]): ServerErrorFields | undefined => {
      if (commands.some((c) => c.kind === "change_user")) {
        return { ...MysqlRefusal.notSupported, message: "COM_CHANGE_USER is not supported through the gateway: connect again as the other identity" };
      }
      const kills = commands.filter((c) => c.kind === "kill");
      if (kills.length === 0) return undefined;
      if (commands.length > 1) return { ...MysqlRefusal.notSupported, message: "KILL through the gateway must be sent alone, not with other statements" };
      // Answered by the listener (killThread); this placeholder is never sent.
      answered.add(kills[0]!);
      return { ...MysqlRefusal.killDenied, message: "answered by the gateway" };
    };

    let endedForShutdown = false;
    const endSession = (farewell?: Uint8Array) => {
      if (!client.destroyed && !client.writableEnded) client.end(farewell);
      upstream.destroy();
    };
    onEnder(() => endSession());
    // A stopping gateway ends the session as MySQL's own shutdown does: a running command gets ERR
    // 1053 as its reply (sequence 1: sent only between the server's packets, in practice before its
    // reply began); an idle client is just closed (its next command finds the server gone).
    const forgetSession = this.steps.openSessions.add(() => {
      if (endedForShutdown) return;
      endedForShutdown = true;
      const running = observer.pendingCount > 0 && observer.serverAtPacketBoundary;
      endSession(running ? encodePacket(1, encodeErrPacket({ ...MysqlRefusal.shutdown, message: "Server shutdown in progress" })) : undefined);
    });

    /** One client chunk: observed (commands journaled write-ahead), then what goes on and what the client is answered. */
    const up = timedInspector(session, async (chunk: Uint8Array): Promise<Rewrite | undefined> => {
      const forward: Uint8Array[] = [];
      const answers: Uint8Array[] = [];
      let rest: Uint8Array[] = [chunk];
      while (rest.length > 0) {
        const next = rest.shift()!;
        const atBoundary = observer.clientAtPacketBoundary;
        const refusal = observer.client(next);
        if (!refusal) {
          forward.push(next);
          continue;
        }
        // The refused packet is not forwarded: the packets before it in this chunk are, those after it are observed next.
        const consumed = next.byteLength - refusal.rest.reduce((n, r) => n + r.byteLength, 0);
        const start = atBoundary ? lastPacketStart(next, consumed) : undefined;
        if (start === undefined) throw new MysqlProtocolError("PROTOCOL_VIOLATION", "a refused command arrived split across chunks with others; the session was closed");
        if (start > 0) forward.push(next.subarray(0, start));
        if (answered.has(refusal.command)) {
          await session.writeAhead();
          answers.push(await this.killThread(refusal.command, refusal.sequenceId, who, session));
        } else answers.push(encodePacket(refusal.sequenceId, encodeErrPacket(refusal.error)));
        rest = [...refusal.rest, ...rest];
      }
      await session.writeAhead();
      if (answers.length === 0 && forward.length === 1 && forward[0] === chunk) return undefined;
      return { forward: Buffer.concat(forward), answer: Buffer.concat(answers) };
    });

    let refused: Error | undefined;
    for (const chunk of early) {
      try {
        const rewrite = await up(chunk);
        if (rewrite?.answer?.byteLength) client.write(rewrite.answer);
        const bytes = rewrite ? rewrite.forward : chunk;
        if (bytes.byteLength > 0) upstream.write(bytes);
      } catch (error) {
        refused = error as Error;
        break;
      }
    }
    const result = refused
      ? (endSession(this.violationReply(refused, "up")), { bytesUp: 0, bytesDown: 0, error: refused, violation: "up" as const, endedBy: "client" as const })
      : await relay(client, upstream, {
          up: (chunk) => up(chunk).then((rewrite) => rewrite ?? undefined),
          down: (chunk) => {
            observer.server(chunk);
          },
          onViolation: (error, direction) => this.violationReply(error, direction),
          onResourceError: (error) =>
            error instanceof TunnelError && observer.serverAtPacketBoundary
              ? encodePacket(0, encodeErrPacket({ ...MysqlRefusal.lost, message: `the connection to the resource was lost: connector "${session.meta.connector}" went away (${error.message})` }))
              : undefined,
        });
    try {
      observer.end();
    } catch {
      // A broken observer already said why through the relay result.
    }
    forgetSession();
    flushRecords();
    await session.endRelay({ ...result, shutdown: this.steps.openSessions.shuttingDown, clientSaidGoodbye: clientQuit });
  }

  /**
   * `KILL [QUERY|CONNECTION] <gateway id>` (or COM_PROCESS_KILL): only a session of the same
   * identity; KILL QUERY goes to its connector as an auxiliary stream, which runs `KILL QUERY
   * <real thread id>` on its own connection; KILL CONNECTION ends that session at the gateway.
   * Another identity's id, or one the gateway does not know: ERR 1095 / 1094. An id this gateway
   * did not issue is looked up in the store and the KILL handed to its gateway (peer-cancels.ts),
   * whose answer comes back. Returns the answer.
   */
  private async killThread(command: MysqlObservedCommand, sequenceId: number, who: { identity: Identity; capabilities: number }, session: RecordedSession): Promise<Uint8Array> {
    const started = session.now();
    const reply = (outcome: "ok" | "error", error: ServerErrorFields | undefined, details: Record<string, unknown>): Uint8Array => {
      void session
        .commandCompleted(command, {
          kind: "kill",
          command: command.text === "" ? `KILL ${command.connectionId ?? ""}` : command.text,
          params: null,
          outcome,
          timeUs: command.startedAt,
          durationUs: session.now() - started,
          details: { ...details, ...(error ? { errno: error.errno, sqlstate: error.sqlState, message: error.message } : {}) },
        })
        .catch(() => undefined);
      return encodePacket(sequenceId, error ? encodeErrPacket(error) : encodeOkPacket({ statusFlags: 0x2, info: "" }, who.capabilities));
    };
    const parsed = command.connectionId !== undefined ? { id: command.connectionId, query: false } : parseKill(command.text);
    if (!parsed) return reply("error", { ...MysqlRefusal.notSupported, message: "only KILL [QUERY|CONNECTION] <connection id> is supported through the gateway" }, { reason: "unsupported" });
    const target = this.threadIds.find(parsed.id);
    if (target) {
      const answer = await this.killLocal(target, parsed.id, parsed.query, who.identity.name);
      return answerReply(answer, { connectionId: parsed.id });
    }
    // Not one of this gateway's sessions: perhaps another gateway's on the same store.
    const forwarded = this.deps.peers
      ? await this.deps.peers.forwardMysqlKill(parsed.id, who.identity.name, parsed.query).catch((err: unknown) => {
          session.logger.warn({ err }, "could not look the KILL's thread id up in the store");
          return { found: false as const };
        })
      : ({ found: false } as const);
    if (!forwarded.found) return reply("error", { ...MysqlRefusal.noSuchThread, message: `Unknown thread id: ${parsed.id}` }, { connectionId: parsed.id, reason: "unknown_thread" });
    const via = { connectionId: parsed.id, targetSession: forwarded.sessionId, gateway: forwarded.gateway };
    const { answer } = forwarded;
    // Another identity's session (refused here, or by its gateway): its id and gateway stay out of this identity's record, as for a local one.
    if (!answer.ok && answer.reason === "not_owner") return reply("error", { ...MysqlRefusal.killDenied, message: `You are not owner of thread ${parsed.id}` }, { connectionId: parsed.id, reason: "not_owner" });
    if ("errno" in answer || answer.ok) return answerReply(answer, via);
    return reply("error", { ...MysqlRefusal.unreachable, message: `the KILL could not reach the session's gateway (no answer from ${forwarded.gateway})` }, { ...via, reason: "no_answer" });

    function answerReply(answer: KillAnswer, details: Record<string, unknown>): Uint8Array {
      if (answer.ok) return reply("ok", undefined, { ...details, targetSession: answer.targetSession, scope: parsed!.query ? "query" : "connection" });
      const { errno, sqlState, message, reason, targetSession } = answer;
      return reply("error", { errno, sqlState, message }, { ...details, ...(targetSession ? { targetSession } : {}), ...(reason === "server" ? { scope: "query" } : { reason }) });
    }
  }

  /**
   * A KILL for one of this gateway's sessions, from a session here or one on another gateway:
   * only the same identity; KILL QUERY through the session's connector, KILL CONNECTION ends it here.
   */
  private async killLocal(target: ThreadRoute, id: number, query: boolean, identity: string, details?: Record<string, unknown>): Promise<KillAnswer> {
    if (target.identity !== identity) return { ok: false, ...MysqlRefusal.killDenied, message: `You are not owner of thread ${id}`, reason: "not_owner" };
    if (!query) {
      target.end();
      return { ok: true, targetSession: target.session.id };
    }
    const opened = await this.deps.broker.openAuxiliary(target.session, { purpose: "kill", params: encodeDialRequest({ kill: { connectionId: target.serverThreadId } }), ...(details ? { details } : {}) });
    if (!opened.ok) return { ok: false, ...MysqlRefusal.unreachable, message: `the KILL could not reach the resource: ${opened.message}`, reason: "unreachable", targetSession: target.session.id };
    // The connector ran the KILL before it answered the open; its outcome is in the answer.
    opened.stream.resume();
    opened.stream.destroy();
    const killed = decodeKillResult(opened.opened.params ?? {});
    if (!killed.ok) return { ok: false, errno: killed.errno, sqlState: killed.sqlState, message: killed.message, reason: "server", targetSession: target.session.id };
    return { ok: true, targetSession: target.session.id };
  }

  /** A KILL a session on another gateway sent for one of this gateway's thread ids. */
  private async killForwarded(kill: ForwardedKill): Promise<KillAnswer> {
    const target = this.threadIds.find(kill.threadId);
    if (!target) return { ok: false, ...MysqlRefusal.noSuchThread, message: `Unknown thread id: ${kill.threadId}`, reason: "unknown_thread" };
    this.deps.logger.info({ protocol: "mysql", from: kill.from, sessionId: target.session.id, query: kill.query }, "KILL forwarded by another gateway");
    return this.killLocal(target, kill.threadId, kill.query, kill.identity, { forwardedBy: kill.from });
  }

  /** The ERR a client gets when the relay stops on a violation or a recording failure, before it is closed. */
  private violationReply(error: Error, direction: "up" | "down"): Uint8Array | undefined {
    if (isRecordingUnavailable(error)) return encodePacket(1, encodeErrPacket(recordingRefusal(error)));
    if (isMysqlProtocolError(error)) {
      if (direction === "down") return encodePacket(1, encodeErrPacket({ ...MysqlRefusal.malformed, message: `the server sent a packet the gateway does not relay (${error.message}); the session was closed` }));
      const fields = error.code === "PACKETS_OUT_OF_ORDER" ? MysqlRefusal.outOfOrder : MysqlRefusal.malformed;
      return encodePacket(1, encodeErrPacket({ ...fields, message: `Malformed communication packet: ${error.message}` }));
    }
    return undefined;
  }

  /** A client that has not proved who it is: recorded as unauthenticated under the names it claimed (cut), in bursts. */
  private async refuseUnauthenticated(channel: MysqlClientChannel, login: ClientLogin, clientAddress: string | null, details: Record<string, unknown>, error: ServerErrorFields): Promise<Ended> {
    const reply = channel.handshake.fail(error);
    await this.refusals.record({
      connection: login.database ?? "",
      protocol: "mysql",
      identity: { name: login.user, method: null },
      clientAddress,
      clientApplication: clientApplication(login),
      kind: "auth_failed",
      endReason: "auth_failed",
      details: { ...details, errno: error.errno, sqlstate: error.sqlState },
    });
    return replyAndClose(reply);
  }

  private async credentialsUnavailable(channel: MysqlClientChannel, login: ClientLogin, clientAddress: string | null, error: GatewayError, log: Logger): Promise<Ended> {
    log.warn({ identity: cutClaim(login.user, 64), reason: error.message }, "login refused: the identity's access keys cannot be checked now (the store is not answering)");
    return this.refuseUnauthenticated(channel, login, clientAddress, { reason: "credentials_unavailable", message: error.message }, {
      ...MysqlRefusal.credentialsUnavailable,
      message: "the gateway cannot check credentials right now; try again shortly",
    });
  }

  private unexpected(channel: MysqlClientChannel, error: unknown, log: Logger): Ended {
    if (isRecordingUnavailable(error)) {
      log.warn({ reason: error.recording }, "session refused: recording unavailable");
      return replyAndClose(channel.handshake.fail(recordingRefusal(error)));
    }
    if (isMysqlProtocolError(error)) {
      log.info({ err: error }, "protocol violation during the mysql handshake");
      return replyAndClose(channel.handshake.fail(error));
    }
    log.error({ err: error }, "mysql session failed");
    return replyAndClose(channel.handshake.fail({ ...ServerError.ER_UNKNOWN_ERROR, message: "internal gateway error" }));
  }
}

/** The client program, from its connection attributes (program_name, else the library's name). */
function clientApplication(login: ClientLogin): string | null {
  const attributes = new Map(login.attributes);
  return attributes.get("program_name") ?? attributes.get("_client_name") ?? null;
}

/** Where the last whole packet ending at `end` starts in `bytes` (which starts at a packet boundary); undefined if none does. */
function lastPacketStart(bytes: Uint8Array, end: number): number | undefined {
  let at = 0;
  while (at + 4 <= end) {
    const length = bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16);
    const next = at + 4 + length;
    if (next === end) return at;
    if (next > end) return undefined;
    at = next;
  }
  return undefined;
}

function parseKill(text: string): { id: number; query: boolean } | undefined {
  const match = KILL_STATEMENT.exec(text);
  if (!match) return undefined;
  const id = Number(match[2]);
  if (id > 0xffff_ffff) return undefined;
  return { id, query: (match[1] ?? "").toUpperCase() === "QUERY" };
}

/** Strict recording could not make the record durable: 1021 (disk full) for a full journal, 1030 otherwise. */
function recordingRefusal(error: Error): ServerErrorFields {
  const { outOfSpace, why } = recordingRefusalReason(error);
  return {
    ...(outOfSpace ? MysqlRefusal.recordingFull : MysqlRefusal.recordingUnwritable),
    message: `the gateway cannot record this session (${why}); the command was not run`,
  };
}

/** The MySQL error a client sees for each way a session can fail to reach its resource. */
function failureError(failure: OpenFailure): ServerErrorFields {
  switch (failure.code) {
    case "denied":
      return { ...MysqlRefusal.notAllowed, message: `Access denied: ${failure.message}` };
    case "connector_unavailable":
      return { ...MysqlRefusal.unreachable, message: `connector unavailable: ${failure.message}` };
    case "target_refused":
      return { ...MysqlRefusal.unreachable, message: `the resource could not be reached: ${failure.message}` };
  }
}

import type { Socket } from "node:net";
import ssh2, { type AuthContext, type ClientInfo, type Connection } from "ssh2";
import type { HostPort } from "../../config/address.js";
import type { GatewayConfig } from "../../config/schema.js";
import type { CredentialChecker } from "../../identity/credential-checker.js";
import type { Logger } from "../../logger.js";
import { cutClaim, type RefusalRecords } from "../../sessions/refusal-records.js";
import type { OpenFailure, SessionBroker } from "../../sessions/session-broker.js";
import type { AdmissionLimits } from "../admission-limits.js";
import type { AuthThrottle } from "../../identity/auth-throttle.js";
import { ListenerSteps, isRecordingUnavailable, recordingRefusalReason, type ListenerStepsDeps } from "../listener-steps.js";
import type { ListenerState } from "../server-watch.js";
import type { SshHostKey } from "./host-key.js";
import { servePortForward } from "./port-forward.js";
import { SshAuthentication, type SshAuthRefusal, type SshKeyLookup, type SshLogin } from "./ssh-auth.js";
import { SshConnectionState } from "./ssh-connection-state.js";
import { serveSessionChannel } from "./session-channel.js";

export interface SshListenerDeps extends ListenerStepsDeps {
  config: () => GatewayConfig;
  broker: SessionBroker;
  credentials: CredentialChecker;
  hostKey: SshHostKey;
  /** The identities' registered SSH public keys; left out: public keys are never accepted. */
  keys?: SshKeyLookup;
}

/** How long a refused client has to read why (on its channel's stderr) before its connection is closed (ms). */
const REFUSED_CONNECTION_LINGER_MS = 10_000;
/** How long a closed connection's channels have to record their events before the session's record closes (ms). */
const CHANNELS_SETTLE_MS = 5_000;

/**
 * The SSH endpoint: terminates the client's SSH with ssh2's server (the gateway's own host key),
 * authenticates `IDENTITY@CONNECTION` (public key, or an access key / OIDC token as password or
 * keyboard-interactive answer), opens the session through the connection's connector (the main
 * stream: the SSH connection's lifeline), then serves each channel the client opens as its own
 * tunnel stream (session-channel.ts, port-forward.ts). Global requests for remote forwarding are
 * refused. The same steps as the other listeners: admit → authenticate → open → relay → end.
 */
export class SshListener {
  readonly limits: AdmissionLimits;
  readonly throttle: AuthThrottle;
  readonly refusals: RefusalRecords;
  private readonly steps: ListenerSteps;
  /** ssh2's server, never listening itself: the shared SocketServer hands it each accepted socket. */
  private readonly ssh: ssh2.Server;
  /** Sockets handed to ssh2, waiting for its Connection (made once the client's version line is read). */
  private readonly arriving = new Map<Socket, (client: Connection, info: ClientInfo) => void>();

  constructor(private readonly deps: SshListenerDeps) {
    this.steps = new ListenerSteps(deps, "ssh", (socket) => this.serve(socket));
    ({ limits: this.limits, throttle: this.throttle, refusals: this.refusals } = this.steps);
    this.ssh = new ssh2.Server({ hostKeys: [deps.hostKey.privateKey], ident: "gatehouse" }, (client, info) => {
      const socket = (client as unknown as { _sock: Socket })._sock;
      const serve = this.arriving.get(socket);
      if (serve) serve(client, info);
      else client.end();
    });
    this.ssh.on("error", () => undefined);
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

  /** Graceful stop: no new clients; sessions still open when `grace` aborts are told on each channel's stderr, then closed. */
  drain(grace: AbortSignal): Promise<void> {
    return this.steps.drain(grace);
  }

  /** One client socket, from accept to the end of its session's record. */
  private async serve(socket: Socket): Promise<void> {
    socket.on("error", () => undefined);
    const clientAddress = socket.remoteAddress ?? null;
    const log = this.deps.logger.child({ protocol: "ssh", clientAddress });
    const handshake = this.limits.enterHandshake(clientAddress);
    if (!handshake.ok) {
      this.steps.logLimit(handshake, log, "connection closed");
      socket.destroy();
      return;
    }
    const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
    // The whole handshake (version exchange, key exchange, authentication) has one deadline.
    const deadline = AbortSignal.timeout(this.deps.config().limits.handshakeTimeoutMs);
    const onDeadline = () => socket.destroy();
    deadline.addEventListener("abort", onDeadline, { once: true });
    let served: Promise<void> = Promise.resolve();
    this.arriving.set(socket, (client, info) => {
      this.arriving.delete(socket);
      served = this.serveClient(client, info, clientAddress, deadline, log, () => {
        deadline.removeEventListener("abort", onDeadline);
        handshake.release();
      }).catch((error: unknown) => {
        log.error({ err: error }, "ssh session failed");
        socket.destroy();
      });
    });
    try {
      this.ssh.injectSocket(socket);
      await closed;
      await served;
    } finally {
      this.arriving.delete(socket);
      deadline.removeEventListener("abort", onDeadline);
      handshake.release();
    }
  }

  private async serveClient(client: Connection, info: ClientInfo, clientAddress: string | null, deadline: AbortSignal, log: Logger, handshakeDone: () => void): Promise<void> {
    client.on("error", (error: Error) => log.debug({ err: error }, "ssh client connection error"));
    const clientApplication = cutClaim(info.header.versions.software || info.header.identRaw, 64);
    const auth = new SshAuthentication(
      {
        credentials: this.deps.credentials,
        keys: this.deps.keys,
        throttle: this.throttle,
        delay: (ms) => this.steps.sleep(ms, deadline),
        log,
      },
      clientAddress,
      (refusal) => this.recordRefusal(refusal, clientAddress, clientApplication),
    );
    const closed = new Promise<void>((resolve) => client.once("close", () => resolve()));
    const login = await new Promise<SshLogin | undefined>((resolve) => {
      client.on("authentication", (ctx: AuthContext) => {
        auth.attempt(ctx).then(
          (accepted) => accepted && resolve(accepted),
          (error: unknown) => {
            log.error({ err: error }, "ssh authentication failed unexpectedly");
            ctx.reject();
          },
        );
      });
      void closed.then(() => resolve(undefined));
    });
    handshakeDone();
    if (!login) {
      // The client left without getting in. Keys it offered that no identity has are one refusal.
      const claimed = auth.claimed;
      if (claimed && auth.offeredKeys.size > 0) {
        this.recordRefusal({ identity: claimed.identity, connection: claimed.connection, details: { reason: "unknown_key", method: "ssh_key", fingerprints: [...auth.offeredKeys].slice(0, 8) } }, clientAddress, clientApplication);
      }
      return;
    }
    await this.serveSession(client, login, clientAddress, clientApplication, closed, log);
  }

  /** An authenticated client: its session through the broker, its channels, until either side ends. */
  private async serveSession(client: Connection, login: SshLogin, clientAddress: string | null, clientApplication: string, closed: Promise<void>, log: Logger): Promise<void> {
    const identity = login.identity;
    const end = () => client.end();
    const opening = this.open(login, clientAddress, clientApplication, log);
    const state = new SshConnectionState(opening, this.deps.broker, this.deps.config, log.child({ identity: identity.name, connection: login.connection }), end);
    client.on("session", (accept) => serveSessionChannel(accept, state));
    client.on("tcpip", (accept, reject, info) => void servePortForward(accept, reject, info, state));
    client.on("request", (_accept, reject, name, info) => {
      reject?.();
      if (name === "tcpip-forward") state.refuseRequest(name, "remote port forwarding (-R) is not supported by the gateway", { bind: `${(info as { bindAddr?: string }).bindAddr ?? ""}:${(info as { bindPort?: number }).bindPort ?? ""}` });
    });
    const opened = await opening;
    if (!opened.ok) {
      const timer = setTimeout(end, REFUSED_CONNECTION_LINGER_MS);
      await closed;
      clearTimeout(timer);
      return;
    }
    const { session } = opened;
    const main = opened.stream;
    const sessionLimit = opened.release;
    let endedBy: "client" | "resource" = "client";
    let clientOpen = true;
    let mainError: Error | undefined;
    // The main stream carries no bytes: its end is the resource's SSH connection ending.
    main.resume();
    main.on("error", (error: Error) => (mainError ??= error));
    main.on("close", () => {
      if (clientOpen) {
        endedBy = "resource";
        end();
      }
    });
    const forgetSession = this.steps.openSessions.add(() => state.endForShutdown());
    await closed;
    clientOpen = false;
    forgetSession();
    main.destroy();
    await state.channelsSettled(CHANNELS_SETTLE_MS);
    sessionLimit();
    await session.endRelay({ bytesUp: state.bytes.up, bytesDown: state.bytes.down, endedBy, error: mainError, shutdown: this.steps.openSessions.shuttingDown });
  }

  /** Policy, limits, the recorded session and its main stream; or why not, as a message for the client. */
  private async open(login: SshLogin, clientAddress: string | null, clientApplication: string, log: Logger) {
    const identity = login.identity;
    const connection = this.deps.config().connections.find((c) => c.name === login.connection && c.protocol === "ssh");
    if (!connection) {
      const message = `unknown connection "${cutClaim(login.connection, 64)}" (log in as IDENTITY@CONNECTION, with an ssh connection's name)`;
      await this.steps.recordAuthenticated({ connection: login.connection, protocol: "ssh", identity, clientAddress, clientApplication, kind: "denied", endReason: "unknown_connection", details: { reason: "unknown_connection", message } });
      return { ok: false as const, message };
    }
    const limit = this.limits.openSession(identity.name);
    if (!limit.ok) {
      this.steps.logLimit(limit, log, "session refused", { identity: identity.name });
      const message = `too many open sessions for identity "${identity.name}" (at most ${limit.max})`;
      await this.steps.recordAuthenticated({ connection: connection.name, protocol: "ssh", identity, clientAddress, clientApplication, kind: "denied", endReason: "too_many_sessions", details: { reason: "too_many_sessions", max: limit.max } });
      return { ok: false as const, message };
    }
    try {
      const result = await this.deps.broker.open({
        connection,
        identity,
        clientAddress,
        clientApplication,
        connectDetails: { method: login.method, ...(login.key ? { keyId: login.key.id, fingerprint: login.key.fingerprint } : {}) },
      });
      if (!result.ok) {
        limit.release();
        return { ok: false as const, message: failureMessage(result.failure) };
      }
      return { ok: true as const, session: result.session, connection, stream: result.stream, release: limit.release };
    } catch (error) {
      limit.release();
      if (isRecordingUnavailable(error)) {
        log.warn({ reason: error.recording }, "session refused: recording unavailable");
        return { ok: false as const, message: `the gateway cannot record this session (${recordingRefusalReason(error).why}); nothing was run` };
      }
      log.error({ err: error }, "ssh session could not be opened");
      return { ok: false as const, message: "internal gateway error" };
    }
  }

  private recordRefusal(refusal: SshAuthRefusal, clientAddress: string | null, clientApplication: string): void {
    void this.refusals
      .record({
        connection: refusal.connection,
        protocol: "ssh",
        identity: { name: refusal.identity, method: null },
        clientAddress,
        clientApplication,
        kind: "auth_failed",
        endReason: "auth_failed",
        details: refusal.details,
      })
      .catch(() => undefined);
  }
}

/** What an SSH client is told (on its channel's stderr) for each way a session can fail to reach its resource. */
function failureMessage(failure: OpenFailure): string {
  switch (failure.code) {
    case "denied":
      return `access denied: ${failure.message}`;
    case "connector_unavailable":
      return `connector unavailable: ${failure.message}`;
    case "target_refused":
      return `the resource could not be reached: ${failure.message}`;
  }
}

import type { IStreamOpened, TunnelStream } from "@gatehouse/proto";
import { TunnelError } from "@gatehouse/proto";
import { KUBE_TARGET_OPTIONS } from "@gatehouse/protocols/kubernetes";
import type { Identity } from "@gatehouse/store";
import type { ConnectionConfig } from "../config/schema.js";
import type { Logger } from "../logger.js";
import type { DenialReason, Policy } from "../policy.js";
import type { ConnectorLink, ConnectorRegistry } from "../tunnel/connector-registry.js";
import type { EventKind } from "./event-kinds.js";
import type { Recorder, RecordedSession } from "./recorder.js";

/** Why a session could not reach its resource, in terms every protocol can map to its own error. */
export type OpenFailure =
  | { code: "denied"; reason: DenialReason; message: string }
  | { code: "connector_unavailable"; message: string }
  | { code: "target_refused"; tunnelCode: string; message: string };

export interface OpenRequest {
  connection: ConnectionConfig;
  identity: Identity;
  clientAddress: string | null;
  clientApplication: string | null;
  /** Protocol parameters for the connector's dialer (startup parameters...). */
  params?: Record<string, string>;
  /** False only for protocols that carry no identity (raw tcp). */
  checkPolicy?: boolean;
  /** What the client chose about the session that the record must show, on the connect event (MySQL: the initial database). */
  connectDetails?: Record<string, unknown>;
}

/** What an auxiliary stream is for; each purpose is recorded as the session's event of that kind. */
export type AuxiliaryPurpose = Extract<EventKind, "cancel" | "kill">;

export interface AuxiliaryRequest {
  purpose: AuxiliaryPurpose;
  /** Protocol parameters for the connector's dialer (Postgres: the cancel key, encoded). */
  params: Record<string, string>;
  /** Added to the recorded event's details (a cancel forwarded by another gateway says which). */
  details?: Record<string, unknown>;
}

export type AuxiliaryResult = { ok: true; stream: TunnelStream; opened: IStreamOpened } | { ok: false; message: string };

export type OpenResult =
  | { ok: true; session: RecordedSession; stream: TunnelStream; opened: IStreamOpened; link: ConnectorLink }
  | { ok: false; session: RecordedSession; failure: OpenFailure };

/**
 * The path every protocol takes once it knows who the client is and which
 * connection it wants: policy, a recorded session, a stream through the
 * connection's connector. Every outcome, refused or not, is recorded.
 */
export class SessionBroker {
  /** Where each session opened here went: an auxiliary stream goes the same way, on the same link. */
  private readonly routes = new WeakMap<RecordedSession, { connection: ConnectionConfig; link: ConnectorLink }>();

  constructor(
    private readonly recorder: Recorder,
    private readonly registry: ConnectorRegistry,
    private readonly policy: Policy,
    private readonly logger: Logger,
  ) {}

  async open(request: OpenRequest): Promise<OpenResult> {
    const { connection, identity } = request;
    const session = await this.recorder.open({
      identity,
      connection: connection.name,
      protocol: connection.protocol,
      connector: connection.connector,
      clientAddress: request.clientAddress,
      clientApplication: request.clientApplication,
    });

    const fail = async (failure: OpenFailure, kind: EventKind): Promise<OpenResult> => {
      session.logger.info({ failure }, "session refused");
      await session.record({ kind, outcome: "error", details: { ...failure } });
      await session.close(failure.code);
      return { ok: false, session, failure };
    };

    if (request.checkPolicy !== false) {
      const decision = this.policy.decide(connection, identity);
      if (!decision.allowed) return fail({ code: "denied", reason: decision.reason, message: decision.message }, "denied");
    }
    const link = this.registry.pick(connection.connector);
    if (!link) {
      // Connected but draining (shutting down) is not "not connected": say which, it is what the operator looks at.
      const state = this.registry.has(connection.connector) ? "is draining (shutting down) and takes no new sessions" : "is not connected";
      return fail({ code: "connector_unavailable", message: `connector "${connection.connector}" ${state}` }, "connect");
    }
    const started = process.hrtime.bigint();
    try {
      const { stream, opened } = await link.mux.open(streamRequest(session, connection, request.params ?? {}));
      // Not waited for: the journal makes entries durable in order, so the first command's
      // write-ahead entry (which strict mode does wait for) is durable only after this one. Waiting
      // here cost every new session a journal round (≈ 0.7 ms) before its client heard back.
      void session.record({
        kind: "connect",
        outcome: "ok",
        durationUs: Number((process.hrtime.bigint() - started) / 1000n),
        details: { ...request.connectDetails, connector: link.name, connectorId: link.id, target: `${connection.target.host}:${connection.target.port}` },
      }, { waited: false }).catch((err: unknown) => session.logger.error({ err }, "could not record the session's connect event"));
      this.routes.set(session, { connection, link });
      session.logger.info({ connector: link.name, connectorId: link.id, clientAddress: request.clientAddress }, "session started");
      return { ok: true, session, stream, opened, link };
    } catch (error) {
      if (!(error instanceof TunnelError)) throw error;
      if (error.code === "LINK_CLOSED" || error.code === "DRAINING" || error.code === "OPEN_TIMEOUT") {
        return fail({ code: "connector_unavailable", message: `connector "${connection.connector}": ${error.message}` }, "connect");
      }
      return fail({ code: "target_refused", tunnelCode: error.code, message: error.message }, "connect");
    }
  }

  /**
   * A second stream for a session already admitted (policy was decided when it opened), to the
   * same resource through the same connector link: Postgres's cancel, MySQL's `KILL QUERY`. Recorded
   * as the session's event of kind `purpose`, with its outcome and how long the open took. Never throws.
   */
  async openAuxiliary(session: RecordedSession, request: AuxiliaryRequest): Promise<AuxiliaryResult> {
    const route = this.routes.get(session);
    const started = session.now();
    let result: AuxiliaryResult;
    if (!route) result = { ok: false, message: `session ${session.id} was not opened through this gateway's broker` };
    else {
      try {
        const { stream, opened } = await route.link.mux.open(streamRequest(session, route.connection, request.params));
        result = { ok: true, stream, opened };
      } catch (error) {
        result = { ok: false, message: (error as Error).message };
      }
    }
    await session
      .record({
        kind: request.purpose,
        timeUs: started,
        outcome: result.ok ? "ok" : "error",
        durationUs: session.now() - started,
        details: { ...request.details, ...(result.ok ? { sent: true } : { message: result.message }) },
      })
      .catch(() => undefined);
    return result;
  }

  /**
   * A stream for one channel of an admitted session (SSH: each session or direct-tcpip channel
   * the client opens), on the session's route like `openAuxiliary`, with the channel's `params`.
   * Not recorded here: the listener records what the channel does (exec, shell, port_forward).
   * Never throws.
   */
  async openChannel(session: RecordedSession, params: Record<string, string>): Promise<AuxiliaryResult> {
    const route = this.routes.get(session);
    if (!route) return { ok: false, message: `session ${session.id} was not opened through this gateway's broker` };
    try {
      const { stream, opened } = await route.link.mux.open(streamRequest(session, route.connection, params));
      return { ok: true, stream, opened };
    } catch (error) {
      return { ok: false, message: (error as Error).message };
    }
  }
}

/** The OpenStream for a session's stream to its connection's resource, main or auxiliary. */
function streamRequest(session: RecordedSession, connection: ConnectionConfig, params: Record<string, string>) {
  return {
    sessionId: session.id,
    connection: connection.name,
    protocol: connection.protocol,
    target: { host: connection.target.host, port: connection.target.port, options: targetOptions(connection) },
    credential: { user: connection.credential?.user ?? "", passwordRef: connection.credential?.password ?? "" },
    params,
  };
}

export interface Refusal {
  /** The connection the client asked for (it may not exist). */
  connection: string;
  protocol: string;
  identity: Identity;
  clientAddress: string | null;
  clientApplication: string | null;
  /** auth_failed, denied, ... (one of the closed list) */
  kind: EventKind;
  endReason: string;
  details: Record<string, unknown>;
}

/** Records an attempt refused before it reached a connection's policy (bad key, unknown connection...). */
export async function recordRefusal(recorder: Recorder, refusal: Refusal): Promise<void> {
  const session = await recorder.open({
    identity: refusal.identity,
    connection: refusal.connection,
    protocol: refusal.protocol,
    connector: null,
    clientAddress: refusal.clientAddress,
    clientApplication: refusal.clientApplication,
  });
  session.logger.info({ kind: refusal.kind, ...refusal.details }, "attempt refused");
  await session.record({ kind: refusal.kind, outcome: "error", details: refusal.details });
  await session.close(refusal.endReason);
}

function targetOptions(connection: ConnectionConfig): Record<string, string> {
  const { database, tls, ca, serverPublicKey, hostKey, kubeconfig, context } = connection.target;
  const options: Record<string, string> = {};
  // Kubernetes: where the connector finds its credentials, and whether it impersonates the identity.
  if (connection.protocol === "kubernetes") {
    if (kubeconfig !== undefined) options[KUBE_TARGET_OPTIONS.kubeconfig] = kubeconfig;
    if (context !== undefined) options[KUBE_TARGET_OPTIONS.context] = context;
    options[KUBE_TARGET_OPTIONS.impersonate] = String(connection.impersonate);
  }
  // SSH: the pinned host key, and a reference (never the key) to the connection's private key.
  if (hostKey !== undefined) options.hostKey = hostKey;
  if (connection.credential?.privateKey !== undefined) options.privateKey = connection.credential.privateKey;
  if (database !== undefined) options.database = database;
  if (tls !== undefined) options.tls = tls;
  if (ca !== undefined) options.ca = ca;
  if (serverPublicKey !== undefined) options.serverPublicKey = serverPublicKey;
  return options;
}

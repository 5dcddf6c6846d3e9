import type { TLSSocket } from "node:tls";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { PassThrough } from "node:stream";
import {
  decodeDialRequest,
  encodeCancelRequest,
  encodeDialResult,
  isPostgresProtocolError,
  ServerConnection,
  type ServerReady,

} from "@gatehouse/protocols/postgres";
import { ChunkSource, nextHandshakeEvent, type ReadFailures } from "@gatehouse/protocols/drive";
import { ConnectorError } from "../../errors.js";
import { connectTcp, formatTarget } from "../tcp/tcp-dialer.js";
import { parseTargetTls, upgradeTargetTls } from "../tls/target-tls.js";
import type { DialContext, DialResult, Dialer } from "../types.js";

// The connector's side of a Postgres stream: connect to the server, do TLS
// and authentication with the credential resolved here, and hand the gateway
// the server's ParameterStatus and BackendKeyData. The client never sees the
// credential; the gateway never holds it.

export const dialPostgres: Dialer = async (open, ctx) => {
  const host = open.target?.host ?? "";
  const port = open.target?.port ?? 5432;
  const where = formatTarget(host, port);
  const options = open.target?.options ?? {};
  const request = decodeDialRequest(open.params ?? {});

  if (request.cancel) return sendCancel(host, port, request.cancel, ctx);

  const tlsMode = parseTargetTls(options.tls, where);
  const user = open.credential?.user || "postgres";
  const database = options.database || open.connection;
  const server = new ServerConnection({
    user,
    ...(ctx.password === null ? {} : { password: ctx.password }),
    database,
    params: request.startup,
    tls: tlsMode === "verify-full" ? "require" : tlsMode,
  });

  // Before connecting: a startup the connector refuses to send (a NUL in a forwarded parameter) costs no connection.
  let firstBytes: Uint8Array;
  try {
    firstBytes = server.start();
  } catch (error) {
    throw asConnectorError(error, where);
  }
  let socket: Socket | TLSSocket = await connectTcp(host, port, ctx);
  // One deadline for the whole startup, TLS included; the link going away ends it too.
  const deadline = AbortSignal.any([ctx.signal, AbortSignal.timeout(ctx.timeoutMs)]);
  const failures: ReadFailures = {
    gone: (cause) =>
      cause
        ? new ConnectorError("TARGET_UNREACHABLE", `${where}: the connection to the server failed during startup: ${cause.message}`, { cause })
        : new ConnectorError("TARGET_UNREACHABLE", `${where}: the server closed the connection during startup`),
    timedOut: () =>
      ctx.signal.aborted
        ? new ConnectorError("TARGET_UNREACHABLE", `${where}: dial cancelled during the startup`, { cause: ctx.signal.reason })
        : new ConnectorError("TARGET_UNREACHABLE", `${where}: the server did not finish the startup within ${ctx.timeoutMs} ms`),
  };
  let source = new ChunkSource(socket, failures);
  try {
    socket.write(firstBytes);
    let ready: ServerReady | undefined;
    while (ready === undefined) {
      const event = await nextHandshakeEvent(server, source, deadline);
      switch (event.type) {
        case "write":
          socket.write(event.bytes);
          break;
        case "notice":
          ctx.logger.debug({ notice: event.fields.message }, "server notice during startup");
          break;
        case "upgradeTls": {
          source.detach();
          socket = await upgradeTargetTls(socket, host, tlsMode, options.ca, deadline, failures, where);
          source = new ChunkSource(socket, failures);
          socket.write(server.tlsEstablished());
          break;
        }
        case "ready":
          ready = event;
          break;
      }
    }

    // Server bytes that arrived with ReadyForQuery belong to the relay.
    const rest = [...server.remaining(), ...source.detach()];
    for (let i = rest.length - 1; i >= 0; i--) socket.unshift(Buffer.from(rest[i]!));
    ctx.logger.info({ target: where, database, user, auth: ready.authMethod ?? "trust", tls: ready.tls }, "postgres server ready");
    return {
      socket,
      params: encodeDialResult({ parameters: ready.parameters, backendKey: ready.backendKey, auth: ready.authMethod ?? "trust", tls: ready.tls }),
    } satisfies DialResult;
  } catch (error) {
    source.detach();
    socket.destroy();
    throw asConnectorError(error, where);
  }
};

/** A CancelRequest goes on a connection of its own, which the server closes without answering. */
async function sendCancel(host: string, port: number, key: { processId: number; secretKey: Uint8Array }, ctx: DialContext): Promise<DialResult> {
  const socket = await connectTcp(host, port, ctx);
  await new Promise<void>((resolve) => {
    socket.on("error", () => resolve());
    socket.on("close", () => resolve());
    socket.end(encodeCancelRequest(key));
    setTimeout(() => socket.destroy(), ctx.timeoutMs).unref();
  });
  ctx.logger.info({ target: formatTarget(host, port), processId: key.processId }, "cancel request sent to the server");
  const done: Duplex = new PassThrough();
  done.end();
  return { socket: done, params: { cancel: "sent" } };
}

/** Server refusals keep their SQLSTATE in the message the gateway records. */
function asConnectorError(error: unknown, where: string): unknown {
  if (error instanceof ConnectorError) return error;
  if (isPostgresProtocolError(error)) {
    const server = error.serverError;
    if (server) {
      const code = server.code.startsWith("28") ? "AUTH_FAILED" : "TARGET_UNREACHABLE";
      return new ConnectorError(code, `${where}: the server refused the connection: ${server.code} ${server.message}`, { cause: error });
    }
    if (error.code === "TLS_REQUIRED") return new ConnectorError("TARGET_UNREACHABLE", `${where}: the server does not support TLS, which the connection requires`, { cause: error });
    return new ConnectorError("PROTOCOL_ERROR", `${where}: ${error.message}`, { cause: error });
  }
  return error;
}


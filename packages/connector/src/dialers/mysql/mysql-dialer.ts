import { readFileSync } from "node:fs";
import type { Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import { PassThrough, type Duplex } from "node:stream";
import {
  Command,
  PacketHeader,
  PacketReader,
  ServerLogin,
  decodeDialRequest,
  decodeErrPacket,
  encodeDialResult,
  encodeKillResult,
  encodePacket,
  isMysqlProtocolError,
  type MysqlKillResult,
  type ServerErrorFields,
  type ServerLoginOptions,
  type ServerLoginReady,
} from "@gatehouse/protocols/mysql";
import { ChunkSource, nextHandshakeEvent, type ReadFailures } from "@gatehouse/protocols/drive";
import { ConnectorError, type ConnectorErrorCode } from "../../errors.js";
import { connectTcp, formatTarget } from "../tcp/tcp-dialer.js";
import { parseTargetTls, upgradeTargetTls } from "../tls/target-tls.js";
import type { DialContext, DialResult, Dialer } from "../types.js";

// The connector's side of a MySQL/MariaDB stream: connect to the server, do TLS and the login with
// the credential resolved here (`ServerLogin`, pure), and hand the gateway what the server showed
// (version, capabilities, status, thread id) so the client sees the resource. After the login the
// socket is relayed byte for byte: packets keep their sequence ids, and a packet over 16 MiB
// arrives as the server split it. The client never sees the credential; the gateway never holds it.

const DEFAULT_PORT = 3306;

/** The login account when the connection names none (the `mariadb` client's default is the OS user; a connector has none that means anything). */
const DEFAULT_USER = "root";

/** ERR numbers that mean "these credentials may not log in (here)": the rest are the resource's trouble. */
const AUTH_ERRNOS: ReadonlySet<number> = new Set([
  1044, // ER_DBACCESS_DENIED_ERROR: the account may not use target.database
  1045, // ER_ACCESS_DENIED_ERROR
  1251, // ER_NOT_SUPPORTED_AUTH_MODE
  1698, // ER_ACCESS_DENIED_NO_PASSWORD_ERROR
  1820, // ER_MUST_CHANGE_PASSWORD
  1862, // ER_MUST_CHANGE_PASSWORD_LOGIN
  4151, // ER_ACCOUNT_HAS_BEEN_LOCKED (MariaDB)
]);

export const dialMysql: Dialer = async (open, ctx) => {
  const request = decodeDialRequest(open.params ?? {});
  if (request.kill) return killQuery(open, request.kill.connectionId, ctx);
  const client = request.client;
  // The client's negotiated capabilities and charset, so client and server agree on every packet's format.
  const { socket, ready, where } = await logIn(
    open,
    ctx,
    client === undefined
      ? {}
      : {
          clientCapabilities: client.capabilities,
          mariadbCapabilities: client.mariadbCapabilities,
          characterSet: client.characterSet,
          ...(client.maxPacketSize > 0 ? { maxPacketSize: client.maxPacketSize } : {}),
          attributes: client.attributes,
          ...(client.database !== undefined ? { database: client.database } : {}),
        },
  );
  ctx.logger.info({ target: where, version: ready.serverVersion, connectionId: ready.connectionId, auth: ready.authPlugin, tls: ready.tls }, "mysql server ready");
  return {
    socket,
    params: encodeDialResult({
      serverVersion: ready.serverVersion,
      serverCapabilities: ready.serverCapabilities,
      serverMariadbCapabilities: ready.serverMariadbCapabilities,
      characterSet: ready.characterSet,
      capabilities: ready.capabilities,
      mariadbCapabilities: ready.mariadbCapabilities,
      statusFlags: ready.statusFlags,
      connectionId: ready.connectionId,
      authPlugin: ready.authPlugin,
      tls: ready.tls,
    }),
  } satisfies DialResult;
};

interface LoggedIn {
  readonly socket: Socket | TLSSocket;
  readonly ready: ServerLoginReady;
  readonly where: string;
}

/**
 * Connects and logs in to `open.target` under one deadline (TLS included). Resolves with the socket
 * paused, any server bytes that followed the final OK pushed back onto it for the relay.
 */
async function logIn(open: Parameters<Dialer>[0], ctx: DialContext, clientOptions: Partial<ServerLoginOptions>): Promise<LoggedIn> {
  const host = open.target?.host ?? "";
  const port = open.target?.port ?? DEFAULT_PORT;
  const where = formatTarget(host, port);
  const options = open.target?.options ?? {};
  const tlsMode = parseTargetTls(options.tls, where);

  // The client's own initial database (it named its connection as IDENTITY#CONNECTION) over the
  // connection's default: what it may read is the credential's MySQL account's to decide.
  const database = clientOptions.database ?? options.database;
  // Before connecting: a login the connector refuses to send (a NUL in the user or database) costs no connection.
  let login: ServerLogin;
  try {
    login = new ServerLogin({
      ...clientOptions,
      user: open.credential?.user || DEFAULT_USER,
      ...(ctx.password === null ? {} : { password: ctx.password }),
      ...(database ? { database } : {}),
      tls: tlsMode === "verify-full" ? "require" : tlsMode,
      ...serverPublicKey(options.serverPublicKey, where),
    });
  } catch (error) {
    throw asConnectorError(error, where);
  }

  let socket: Socket | TLSSocket = await connectTcp(host, port, ctx);
  // One deadline for the whole login, TLS included; the link going away ends it too.
  const deadline = AbortSignal.any([ctx.signal, AbortSignal.timeout(ctx.timeoutMs)]);
  const failures = readFailures(where, ctx, "login");
  let source = new ChunkSource(socket, failures);
  try {
    for (;;) {
      const event = await nextHandshakeEvent(login, source, deadline);
      switch (event.type) {
        case "write":
          socket.write(event.bytes);
          break;
        case "startTls":
          source.detach();
          socket = await upgradeTargetTls(socket, host, tlsMode, options.ca, deadline, failures, where);
          source = new ChunkSource(socket, failures);
          socket.write(login.tlsEstablished());
          break;
        case "failed":
          throw refusal(event.error, where);
        case "ready": {
          // Server bytes that arrived with the OK belong to the relay (none in practice: the client speaks next).
          const rest = [...login.remaining(), ...source.detach()];
          for (let i = rest.length - 1; i >= 0; i--) socket.unshift(Buffer.from(rest[i]!));
          return { socket, ready: event, where };
        }
      }
    }
  } catch (error) {
    source.detach();
    socket.destroy();
    throw asConnectorError(error, where);
  }
}

/**
 * The auxiliary stream of a `KILL QUERY` (the `mariadb` client's Ctrl-C, mapped by the gateway to the
 * session's real thread id): a login of its own, `KILL QUERY <id>`, the server's answer reported back,
 * and an ended stream. Like Postgres's cancel, the killer is a second connection because the first
 * is busy running the statement.
 */
async function killQuery(open: Parameters<Dialer>[0], connectionId: number, ctx: DialContext): Promise<DialResult> {
  const { socket, where } = await logIn(open, ctx, {});
  const deadline = AbortSignal.any([ctx.signal, AbortSignal.timeout(ctx.timeoutMs)]);
  const source = new ChunkSource(socket, readFailures(where, ctx, "KILL QUERY"));
  socket.resume(); // logIn left it paused for a relay; here the connector reads the answer itself.
  let result: MysqlKillResult;
  try {
    socket.write(encodePacket(0, Buffer.concat([Buffer.of(Command.COM_QUERY), Buffer.from(`KILL QUERY ${connectionId >>> 0}`)])));
    const reply = await readPacket(source, deadline);
    if (reply[0] === PacketHeader.OK) result = { ok: true };
    else if (reply[0] === PacketHeader.ERR) result = { ok: false, ...decodeErrPacket(reply) };
    else throw new ConnectorError("PROTOCOL_ERROR", `${where}: unexpected answer 0x${(reply[0] ?? 0).toString(16)} to KILL QUERY`);
  } catch (error) {
    throw asConnectorError(error, where);
  } finally {
    source.detach();
    socket.end(encodePacket(0, Buffer.of(Command.COM_QUIT)));
    setTimeout(() => socket.destroy(), ctx.timeoutMs).unref();
  }
  ctx.logger.info({ target: where, connectionId, outcome: result.ok ? "ok" : `${result.errno} ${result.message}` }, "KILL QUERY run on the server");
  const done: Duplex = new PassThrough();
  done.end();
  return { socket: done, params: encodeKillResult(result) };
}

/** One reply packet (an OK or ERR is small; anything bigger than 64 KiB here is refused, not buffered). */
async function readPacket(source: ChunkSource, deadline: AbortSignal): Promise<Uint8Array> {
  const reader = new PacketReader({ maxPacketSize: 1 << 16 });
  for (;;) {
    const packet = reader.read();
    if (packet !== undefined) return packet.payload;
    reader.push(await source.next(deadline));
  }
}

function readFailures(where: string, ctx: DialContext, phase: string): ReadFailures {
  return {
    gone: (cause) =>
      cause
        ? new ConnectorError("TARGET_UNREACHABLE", `${where}: the connection to the server failed during the ${phase}: ${cause.message}`, { cause })
        : new ConnectorError("TARGET_UNREACHABLE", `${where}: the server closed the connection during the ${phase}`),
    timedOut: () =>
      ctx.signal.aborted
        ? new ConnectorError("TARGET_UNREACHABLE", `${where}: dial cancelled during the ${phase}`, { cause: ctx.signal.reason })
        : new ConnectorError("TARGET_UNREACHABLE", `${where}: the server did not finish the ${phase} within ${ctx.timeoutMs} ms`),
  };
}

/** `target.options.serverPublicKey`: a PEM file with the server's RSA key, for caching_sha2_password full authentication without TLS. */
function serverPublicKey(path: string | undefined, where: string): Pick<ServerLoginOptions, "serverPublicKey"> {
  if (!path) return {};
  try {
    return { serverPublicKey: readFileSync(path, "utf8") };
  } catch (error) {
    throw new ConnectorError("TARGET_UNREACHABLE", `${where}: cannot read the server's public key file ${path}: ${(error as Error).message}`, { cause: error });
  }
}

/**
 * The server's ERR during login, in the form a MySQL client prints it (`ERROR 1045 (28000): …`), so
 * the gateway can pass errno, SQLSTATE and text on. The server's text names the account, never the password.
 */
function refusal(error: ServerErrorFields, where: string): ConnectorError {
  const code: ConnectorErrorCode = AUTH_ERRNOS.has(error.errno) || error.sqlState === "28000" ? "AUTH_FAILED" : "TARGET_UNREACHABLE";
  return new ConnectorError(code, `${where}: the server refused the login: ERROR ${error.errno} (${error.sqlState}): ${error.message}`);
}

function asConnectorError(error: unknown, where: string): unknown {
  if (error instanceof ConnectorError) return error;
  if (!isMysqlProtocolError(error)) return error;
  switch (error.code) {
    case "TLS_REQUIRED":
      // The server offers no TLS, or an auth plugin would need it (caching_sha2 full auth, cleartext).
      return new ConnectorError(error.context.plugin === undefined ? "TARGET_UNREACHABLE" : "AUTH_FAILED", `${where}: ${error.message}`, { cause: error });
    case "AUTH_FAILED":
      return new ConnectorError("AUTH_FAILED", `${where}: ${error.message}`, { cause: error });
    case "UNSUPPORTED_AUTH":
    case "UNSUPPORTED_CAPABILITY":
      return new ConnectorError("PROTOCOL_UNSUPPORTED", `${where}: ${error.message}`, { cause: error });
    case "SERVER_ERROR":
      if (error.serverError) return refusal(error.serverError, where);
      return new ConnectorError("PROTOCOL_ERROR", `${where}: ${error.message}`, { cause: error });
    default:
      return new ConnectorError("PROTOCOL_ERROR", `${where}: the server broke the MySQL protocol: ${error.message}`, { cause: error });
  }
}

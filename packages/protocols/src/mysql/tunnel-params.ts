/**
 * What the gateway and the connector tell each other about a MySQL stream, in the tunnel's
 * string maps (OpenStream.params and StreamOpened.params). One module owns the key names so
 * the two sides cannot drift apart.
 *
 *   gateway → connector (OpenStream.params)
 *     client.capabilities          the capabilities in force with the client (ClientLogin.capabilities:
 *                                  client ∩ greeting), decimal; the dialer passes them to ServerLogin
 *     client.mariadbCapabilities   ClientLogin.mariadbCapabilities, decimal
 *     client.charset               the client's collation id, decimal
 *     client.maxPacketSize         the client's max_packet_size, decimal
 *     client.database              the database to start in, in place of the connection's target.database
 *                                  (a client that named its connection as IDENTITY#CONNECTION and sent a
 *                                  database); absent: target.database
 *     attr.<name>                  a connection attribute of the client's to forward, in order
 *     kill.connectionId            present on an auxiliary stream: the real server's thread id; the
 *                                  connector runs `KILL QUERY <id>` on its own connection and ends
 *   connector → gateway (StreamOpened.params)
 *     server.version               the real server's version string
 *     server.capabilities          the greeting's capabilities, decimal
 *     server.mariadbCapabilities   the greeting's MariaDB extended capabilities, decimal
 *     server.charset               the greeting's collation id
 *     session.capabilities         the capabilities in force on the connector's connection
 *     session.mariadbCapabilities  … and the MariaDB ones
 *     session.statusFlags          status flags of the final OK (for the client's own final OK)
 *     session.connectionId         the server's thread id (what KILL QUERY names), kept at the gateway
 *     auth                         the plugin the connector authenticated with (mysql_native_password…)
 *     tls                          "on" or "off" between connector and server
 */

export interface MysqlDialRequest {
  /** Absent on a KILL stream. */
  readonly client?: {
    readonly capabilities: number;
    readonly mariadbCapabilities: number;
    readonly characterSet: number;
    readonly maxPacketSize: number;
    readonly attributes: ReadonlyArray<readonly [string, string]>;
    /** The initial database the client asked for; undefined: the connection's target.database. */
    readonly database?: string;
  };
  /** Present on an auxiliary stream: the real thread id whose running statement to kill. */
  readonly kill?: { readonly connectionId: number };
}

export interface MysqlDialResult {
  readonly serverVersion: string;
  readonly serverCapabilities: number;
  readonly serverMariadbCapabilities: number;
  readonly characterSet: number;
  readonly capabilities: number;
  readonly mariadbCapabilities: number;
  readonly statusFlags: number;
  readonly connectionId: number;
  readonly authPlugin: string;
  readonly tls: boolean;
}

/** A decimal uint32 (capabilities, ids); anything else reads as `fallback`. */
function uint(text: string | undefined, fallback: number): number {
  if (text === undefined || !/^\d{1,10}$/.test(text)) return fallback;
  const value = Number(text);
  return value <= 0xffffffff ? value : fallback;
}

export function encodeDialRequest(request: MysqlDialRequest): Record<string, string> {
  const out: Record<string, string> = {};
  if (request.client) {
    out["client.capabilities"] = String(request.client.capabilities >>> 0);
    out["client.mariadbCapabilities"] = String(request.client.mariadbCapabilities >>> 0);
    out["client.charset"] = String(request.client.characterSet);
    out["client.maxPacketSize"] = String(request.client.maxPacketSize >>> 0);
    if (request.client.database !== undefined) out["client.database"] = request.client.database;
    for (const [name, value] of request.client.attributes) out[`attr.${name}`] = value;
  }
  if (request.kill) out["kill.connectionId"] = String(request.kill.connectionId >>> 0);
  return out;
}

export function decodeDialRequest(params: Readonly<Record<string, string>>): MysqlDialRequest {
  const kill = params["kill.connectionId"];
  const killRequest = kill !== undefined && /^\d{1,10}$/.test(kill) && Number(kill) <= 0xffffffff ? { connectionId: Number(kill) } : undefined;
  if (params["client.capabilities"] === undefined) return killRequest ? { kill: killRequest } : {};
  const attributes: Array<readonly [string, string]> = [];
  for (const [key, value] of Object.entries(params)) {
    if (key.startsWith("attr.")) attributes.push([key.slice(5), value]);
  }
  const client = {
    capabilities: uint(params["client.capabilities"], 0),
    mariadbCapabilities: uint(params["client.mariadbCapabilities"], 0),
    characterSet: uint(params["client.charset"], 45),
    maxPacketSize: uint(params["client.maxPacketSize"], 0),
    attributes,
    ...(params["client.database"] !== undefined ? { database: params["client.database"] } : {}),
  };
  return killRequest ? { client, kill: killRequest } : { client };
}

export function encodeDialResult(result: MysqlDialResult): Record<string, string> {
  return {
    "server.version": result.serverVersion,
    "server.capabilities": String(result.serverCapabilities >>> 0),
    "server.mariadbCapabilities": String(result.serverMariadbCapabilities >>> 0),
    "server.charset": String(result.characterSet),
    "session.capabilities": String(result.capabilities >>> 0),
    "session.mariadbCapabilities": String(result.mariadbCapabilities >>> 0),
    "session.statusFlags": String(result.statusFlags),
    "session.connectionId": String(result.connectionId >>> 0),
    auth: result.authPlugin,
    tls: result.tls ? "on" : "off",
  };
}

export function decodeDialResult(params: Readonly<Record<string, string>>): MysqlDialResult {
  return {
    serverVersion: params["server.version"] ?? "",
    serverCapabilities: uint(params["server.capabilities"], 0),
    serverMariadbCapabilities: uint(params["server.mariadbCapabilities"], 0),
    characterSet: uint(params["server.charset"], 45),
    capabilities: uint(params["session.capabilities"], 0),
    mariadbCapabilities: uint(params["session.mariadbCapabilities"], 0),
    statusFlags: uint(params["session.statusFlags"], 0x2),
    connectionId: uint(params["session.connectionId"], 0),
    authPlugin: params.auth ?? "unknown",
    tls: params.tls === "on",
  };
}

/**
 * The connector → gateway answer on a KILL stream (StreamOpened.params), after it ran
 * `KILL QUERY <id>` on its own connection to the resource:
 *     kill.outcome   "ok" (the server accepted the KILL) or "error" (the server's ERR, below)
 *     kill.errno / kill.sqlstate / kill.message   the ERR's fields, e.g. 1094 "Unknown thread id"
 */
export type MysqlKillResult =
  | { readonly ok: true }
  | { readonly ok: false; readonly errno: number; readonly sqlState: string; readonly message: string };

export function encodeKillResult(result: MysqlKillResult): Record<string, string> {
  if (result.ok) return { "kill.outcome": "ok" };
  return { "kill.outcome": "error", "kill.errno": String(result.errno), "kill.sqlstate": result.sqlState, "kill.message": result.message };
}

export function decodeKillResult(params: Readonly<Record<string, string>>): MysqlKillResult {
  if (params["kill.outcome"] === "ok") return { ok: true };
  return {
    ok: false,
    errno: uint(params["kill.errno"], 0),
    sqlState: params["kill.sqlstate"] ?? "HY000",
    message: params["kill.message"] ?? "the connector did not report the KILL's outcome",
  };
}

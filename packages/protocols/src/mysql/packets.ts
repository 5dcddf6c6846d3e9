/**
 * Codecs for the packets of the connection phase and the generic response packets. Each
 * decoder takes one logical packet's payload (see framing.ts) and is named after the spec's
 * packet; each has an encoder. Decoders throw PROTOCOL_VIOLATION (`MysqlProtocolError`) on a
 * truncated or malformed payload.
 */
import { PayloadReader, PayloadWriter, concatBytes } from "./bytes.js";
import { Capability, PacketHeader, PROTOCOL_VERSION_10, hasCapability } from "./constants.js";
import { MysqlProtocolError, violation, type ServerErrorFields } from "./errors.js";

/**
 * HandshakeV10, the server's greeting.
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase_packets_protocol_handshake_v10.html
 * MariaDB's extended capabilities: https://mariadb.com/kb/en/connection/#initial-handshake-packet
 *
 *   int<1> protocol_version (10) | string<NUL> server_version | int<4> thread_id
 *   string[8] auth_plugin_data_part_1 | int<1> filler (0)
 *   int<2> capability_flags_1 (low) | int<1> character_set | int<2> status_flags
 *   int<2> capability_flags_2 (high) | int<1> auth_plugin_data_len (0 without CLIENT_PLUGIN_AUTH)
 *   string[6] reserved | int<4> MariaDB extended capabilities (when CLIENT_LONG_PASSWORD, "CLIENT_MYSQL", is clear; else reserved)
 *   string[max(13, auth_plugin_data_len - 8)] auth_plugin_data_part_2 (with CLIENT_SECURE_CONNECTION)
 *   string<NUL> auth_plugin_name (with CLIENT_PLUGIN_AUTH)
 */
export interface HandshakeV10 {
  readonly serverVersion: string;
  /** The connection (thread) id; `KILL QUERY <id>` names it. */
  readonly connectionId: number;
  /** The nonce (20 bytes from real servers), without the trailing NUL. */
  readonly scramble: Uint8Array;
  /** Low 32 capability bits, unsigned. */
  readonly capabilities: number;
  /** MariaDB's extended capability word; 0 when absent. */
  readonly mariadbCapabilities: number;
  /** The server's default collation id (low 8 bits). */
  readonly characterSet: number;
  readonly statusFlags: number;
  /** "" when the server did not name one (no CLIENT_PLUGIN_AUTH). */
  readonly authPluginName: string;
}

export function encodeHandshakeV10(greeting: HandshakeV10): Uint8Array {
  const caps = greeting.capabilities >>> 0;
  const scramble = greeting.scramble;
  const w = new PayloadWriter(128)
    .u8(PROTOCOL_VERSION_10)
    .nulString(greeting.serverVersion)
    .u32(greeting.connectionId)
    .bytes(scramble.subarray(0, 8))
    .zeros(8 - Math.min(8, scramble.byteLength))
    .u8(0)
    .u16(caps & 0xffff)
    .u8(greeting.characterSet)
    .u16(greeting.statusFlags)
    .u16(caps >>> 16)
    .u8(hasCapability(caps, Capability.CLIENT_PLUGIN_AUTH) ? scramble.byteLength + 1 : 0)
    .zeros(6);
  if (hasCapability(caps, Capability.CLIENT_LONG_PASSWORD)) w.zeros(4);
  else w.u32(greeting.mariadbCapabilities);
  if (hasCapability(caps, Capability.CLIENT_SECURE_CONNECTION)) {
    const part2 = scramble.subarray(8);
    w.bytes(part2).zeros(Math.max(13, part2.byteLength + 1) - part2.byteLength);
  }
  if (hasCapability(caps, Capability.CLIENT_PLUGIN_AUTH)) w.nulString(greeting.authPluginName);
  return w.finish();
}

export function decodeHandshakeV10(payload: Uint8Array): HandshakeV10 {
  const r = new PayloadReader(payload, "HandshakeV10");
  const version = r.u8("protocol_version");
  if (version !== PROTOCOL_VERSION_10) {
    throw new MysqlProtocolError("UNSUPPORTED_CAPABILITY", `server greeting with protocol version ${version}, expected 10`, { context: { version } });
  }
  const serverVersion = r.nulString("server_version");
  const connectionId = r.u32("thread_id");
  const part1 = r.bytesOf(8, "auth_plugin_data_part_1");
  r.skip(1);
  let capabilities = r.u16("capability_flags_1");
  // Pre-4.1 servers end here.
  let characterSet = 0;
  let statusFlags = 0;
  let authDataLength = 0;
  let mariadbCapabilities = 0;
  let scramble: Uint8Array = part1;
  let authPluginName = "";
  if (r.remaining > 0) {
    characterSet = r.u8("character_set");
    statusFlags = r.u16("status_flags");
    capabilities = (capabilities | (r.u16("capability_flags_2") << 16)) >>> 0;
    authDataLength = r.u8("auth_plugin_data_len");
    r.skip(6, "reserved");
    const extended = r.u32("reserved");
    if (!hasCapability(capabilities, Capability.CLIENT_LONG_PASSWORD)) mariadbCapabilities = extended;
    if (hasCapability(capabilities, Capability.CLIENT_SECURE_CONNECTION)) {
      const part2 = r.bytesOf(Math.min(r.remaining, Math.max(13, authDataLength - 8)), "auth_plugin_data_part_2");
      scramble = concatBytes([part1, part2]);
      if (scramble.byteLength > 8 && scramble[scramble.byteLength - 1] === 0) scramble = scramble.subarray(0, scramble.byteLength - 1);
    }
    if (hasCapability(capabilities, Capability.CLIENT_PLUGIN_AUTH)) authPluginName = r.nulStringOrRest("auth_plugin_name");
  }
  return { serverVersion, connectionId, scramble, capabilities, mariadbCapabilities, characterSet, statusFlags, authPluginName };
}

/**
 * SSLRequest: the first 32 bytes of a HandshakeResponse41 with CLIENT_SSL set, sent before the
 * TLS handshake. https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase_packets_protocol_ssl_request.html
 *
 *   int<4> client_flag | int<4> max_packet_size | int<1> character_set | string[19] filler
 *   int<4> MariaDB extended capabilities (when CLIENT_LONG_PASSWORD is clear; else filler)
 */
export interface SslRequest {
  readonly capabilities: number;
  readonly mariadbCapabilities: number;
  readonly maxPacketSize: number;
  readonly characterSet: number;
}

export const SSL_REQUEST_LENGTH = 32;

export function encodeSslRequest(request: SslRequest): Uint8Array {
  return writeResponsePrefix(new PayloadWriter(SSL_REQUEST_LENGTH), request).finish();
}

export function decodeSslRequest(payload: Uint8Array): SslRequest {
  const r = new PayloadReader(payload, "SSLRequest");
  const prefix = readResponsePrefix(r);
  if (!hasCapability(prefix.capabilities, Capability.CLIENT_SSL)) throw violation("SSLRequest without CLIENT_SSL");
  return prefix;
}

/** True when a client's first packet is an SSLRequest (a 32-byte HandshakeResponse41 prefix asking for TLS). */
export function isSslRequest(payload: Uint8Array): boolean {
  if (payload.byteLength !== SSL_REQUEST_LENGTH) return false;
  const flags = new DataView(payload.buffer, payload.byteOffset, payload.byteLength).getUint32(0, true);
  return hasCapability(flags, Capability.CLIENT_SSL);
}

function writeResponsePrefix(w: PayloadWriter, prefix: SslRequest): PayloadWriter {
  w.u32(prefix.capabilities).u32(prefix.maxPacketSize).u8(prefix.characterSet).zeros(19);
  if (hasCapability(prefix.capabilities, Capability.CLIENT_LONG_PASSWORD)) w.zeros(4);
  else w.u32(prefix.mariadbCapabilities);
  return w;
}

function readResponsePrefix(r: PayloadReader): SslRequest {
  const capabilities = r.u32("client_flag");
  if (!hasCapability(capabilities, Capability.CLIENT_PROTOCOL_41)) {
    throw new MysqlProtocolError("UNSUPPORTED_CAPABILITY", "client without CLIENT_PROTOCOL_41 (HandshakeResponse320)", {
      context: { capabilities },
    });
  }
  const maxPacketSize = r.u32("max_packet_size");
  const characterSet = r.u8("character_set");
  r.skip(19);
  const extended = r.u32("filler");
  const mariadbCapabilities = hasCapability(capabilities, Capability.CLIENT_LONG_PASSWORD) ? 0 : extended;
  return { capabilities, mariadbCapabilities, maxPacketSize, characterSet };
}

/**
 * HandshakeResponse41, the client's login.
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase_packets_protocol_handshake_response.html
 *
 *   (the 32-byte SSLRequest prefix) | string<NUL> username
 *   auth_response: string<lenenc> (CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA), or int<1> length + bytes
 *     (CLIENT_SECURE_CONNECTION), or string<NUL>
 *   string<NUL> database (CLIENT_CONNECT_WITH_DB) | string<NUL> client_plugin_name (CLIENT_PLUGIN_AUTH)
 *   int<lenenc> attributes length + (string<lenenc> key, string<lenenc> value)* (CLIENT_CONNECT_ATTRS)
 *   int<1> zstd_compression_level (CLIENT_ZSTD_COMPRESSION_ALGORITHM)
 */
export interface HandshakeResponse41 extends SslRequest {
  readonly username: string;
  readonly authResponse: Uint8Array;
  /** Present when CLIENT_CONNECT_WITH_DB is set. */
  readonly database: string | undefined;
  /** "" without CLIENT_PLUGIN_AUTH. */
  readonly authPluginName: string;
  /** Connection attributes in wire order (CLIENT_CONNECT_ATTRS); empty otherwise. */
  readonly attributes: ReadonlyArray<readonly [string, string]>;
  readonly zstdCompressionLevel?: number;
}

export function encodeHandshakeResponse41(response: HandshakeResponse41): Uint8Array {
  const caps = response.capabilities >>> 0;
  const w = writeResponsePrefix(new PayloadWriter(256), response).nulString(response.username);
  if (hasCapability(caps, Capability.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA)) w.lenencBytes(response.authResponse);
  else if (hasCapability(caps, Capability.CLIENT_SECURE_CONNECTION)) {
    if (response.authResponse.byteLength > 255) throw new RangeError("auth response longer than 255 bytes needs CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA");
    w.u8(response.authResponse.byteLength).bytes(response.authResponse);
  } else w.bytes(response.authResponse).u8(0);
  if (hasCapability(caps, Capability.CLIENT_CONNECT_WITH_DB)) w.nulString(response.database ?? "");
  if (hasCapability(caps, Capability.CLIENT_PLUGIN_AUTH)) w.nulString(response.authPluginName);
  if (hasCapability(caps, Capability.CLIENT_CONNECT_ATTRS)) {
    const attrs = new PayloadWriter();
    for (const [key, value] of response.attributes) attrs.lenencString(key).lenencString(value);
    w.lenencBytes(attrs.finish());
  }
  if (hasCapability(caps, Capability.CLIENT_ZSTD_COMPRESSION_ALGORITHM)) w.u8(response.zstdCompressionLevel ?? 3);
  return w.finish();
}

export function decodeHandshakeResponse41(payload: Uint8Array): HandshakeResponse41 {
  const r = new PayloadReader(payload, "HandshakeResponse41");
  const prefix = readResponsePrefix(r);
  const caps = prefix.capabilities;
  const username = r.nulString("username");
  let authResponse: Uint8Array;
  if (hasCapability(caps, Capability.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA)) authResponse = r.lenencBytes("auth_response");
  else if (hasCapability(caps, Capability.CLIENT_SECURE_CONNECTION)) authResponse = r.bytesOf(r.u8("auth_response_length"), "auth_response");
  else authResponse = r.nulBytes("auth_response");
  // Clients may stop after the fields they use; absent optional fields are empty.
  const database = hasCapability(caps, Capability.CLIENT_CONNECT_WITH_DB) ? (r.remaining > 0 ? r.nulStringOrRest("database") : "") : undefined;
  const authPluginName = hasCapability(caps, Capability.CLIENT_PLUGIN_AUTH) && r.remaining > 0 ? r.nulStringOrRest("client_plugin_name") : "";
  const attributes: Array<readonly [string, string]> = [];
  if (hasCapability(caps, Capability.CLIENT_CONNECT_ATTRS) && r.remaining > 0) {
    const attrs = new PayloadReader(r.lenencBytes("attributes length"), "connection attributes");
    while (attrs.remaining > 0) attributes.push([attrs.lenencString("attribute key"), attrs.lenencString("attribute value")]);
  }
  const zstdCompressionLevel = hasCapability(caps, Capability.CLIENT_ZSTD_COMPRESSION_ALGORITHM) && r.remaining > 0 ? r.u8("zstd_compression_level") : undefined;
  return {
    ...prefix,
    username,
    authResponse,
    database,
    authPluginName,
    attributes,
    ...(zstdCompressionLevel === undefined ? {} : { zstdCompressionLevel }),
  };
}

/**
 * AuthSwitchRequest: the server asks the client to use another plugin.
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase_packets_protocol_auth_switch_request.html
 *
 *   int<1> 0xFE | string<NUL> plugin name | string<EOF> auth plugin data
 */
export interface AuthSwitchRequest {
  readonly pluginName: string;
  /** The plugin's data (a new scramble), without the trailing NUL servers append. */
  readonly pluginData: Uint8Array;
}

export function encodeAuthSwitchRequest(request: AuthSwitchRequest): Uint8Array {
  // Servers send the 20-byte scramble followed by NUL; clients strip it.
  return new PayloadWriter(64).u8(PacketHeader.EOF).nulString(request.pluginName).bytes(request.pluginData).u8(0).finish();
}

export function decodeAuthSwitchRequest(payload: Uint8Array): AuthSwitchRequest {
  const r = new PayloadReader(payload, "AuthSwitchRequest");
  if (r.u8("status") !== PacketHeader.EOF) throw violation("AuthSwitchRequest must start with 0xFE");
  if (r.remaining === 0) {
    // The pre-4.1 "switch to old password" request (MySQL 4.0 hashes): never supported.
    throw new MysqlProtocolError("UNSUPPORTED_AUTH", "server asked for the pre-4.1 password hash", { context: { plugin: "mysql_old_password" } });
  }
  const pluginName = r.nulStringOrRest("plugin name");
  let pluginData = r.rest();
  if (pluginData.byteLength > 0 && pluginData[pluginData.byteLength - 1] === 0) pluginData = pluginData.subarray(0, pluginData.byteLength - 1);
  return { pluginName, pluginData };
}

/**
 * AuthMoreData: plugin-specific data from the server during authentication.
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase_packets_protocol_auth_more_data.html
 *
 *   int<1> 0x01 | string<EOF> data
 */
export function encodeAuthMoreData(data: Uint8Array): Uint8Array {
  return new PayloadWriter(data.byteLength + 1).u8(PacketHeader.AUTH_MORE_DATA).bytes(data).finish();
}

export function decodeAuthMoreData(payload: Uint8Array): Uint8Array {
  const r = new PayloadReader(payload, "AuthMoreData");
  if (r.u8("status") !== PacketHeader.AUTH_MORE_DATA) throw violation("AuthMoreData must start with 0x01");
  return r.rest();
}

/** One entry of an OK packet's session state information. */
export interface SessionStateChange {
  /** A SessionTrack value. */
  readonly type: number;
  /** The entry's data as sent (a view). */
  readonly data: Uint8Array;
  /** SESSION_TRACK_SCHEMA: the new default database. */
  readonly schema?: string;
  /** SESSION_TRACK_SYSTEM_VARIABLES: the variable and its new value. */
  readonly variable?: readonly [string, string];
}

/**
 * OK_Packet.
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_basic_ok_packet.html
 *
 *   int<1> 0x00 (or 0xFE ending a result set with CLIENT_DEPRECATE_EOF)
 *   int<lenenc> affected_rows | int<lenenc> last_insert_id
 *   int<2> status_flags | int<2> warnings (CLIENT_PROTOCOL_41)
 *   with CLIENT_SESSION_TRACK: string<lenenc> info, and string<lenenc> session state info when
 *     SERVER_SESSION_STATE_CHANGED; else string<EOF> info
 */
export interface OkPacket {
  readonly header: number;
  readonly affectedRows: number;
  readonly lastInsertId: number;
  readonly statusFlags: number;
  readonly warnings: number;
  readonly info: string;
  readonly sessionStateChanges: readonly SessionStateChange[];
}

export function encodeOkPacket(ok: Partial<OkPacket>, capabilities: number): Uint8Array {
  const w = new PayloadWriter()
    .u8(ok.header ?? PacketHeader.OK)
    .lenencInt(ok.affectedRows ?? 0)
    .lenencInt(ok.lastInsertId ?? 0);
  const statusFlags = ok.statusFlags ?? 0;
  if (hasCapability(capabilities, Capability.CLIENT_PROTOCOL_41)) w.u16(statusFlags).u16(ok.warnings ?? 0);
  const info = ok.info ?? "";
  if (hasCapability(capabilities, Capability.CLIENT_SESSION_TRACK)) {
    const changes = ok.sessionStateChanges ?? [];
    if (info !== "" || changes.length > 0) w.lenencString(info);
    if (changes.length > 0) {
      const state = new PayloadWriter();
      for (const change of changes) state.u8(change.type).lenencBytes(change.data);
      w.lenencBytes(state.finish());
    }
  } else w.string(info);
  return w.finish();
}

export function decodeOkPacket(payload: Uint8Array, capabilities: number): OkPacket {
  const r = new PayloadReader(payload, "OK_Packet");
  const header = r.u8("header");
  if (header !== PacketHeader.OK && header !== PacketHeader.EOF) throw violation(`OK_Packet with header 0x${header.toString(16)}`);
  const affectedRows = r.lenencInt("affected_rows");
  const lastInsertId = r.lenencInt("last_insert_id");
  let statusFlags = 0;
  let warnings = 0;
  if (hasCapability(capabilities, Capability.CLIENT_PROTOCOL_41)) {
    statusFlags = r.u16("status_flags");
    warnings = r.u16("warnings");
  }
  let info = "";
  let sessionStateChanges: SessionStateChange[] = [];
  if (hasCapability(capabilities, Capability.CLIENT_SESSION_TRACK)) {
    if (r.remaining > 0) info = r.lenencString("info");
    if ((statusFlags & 0x4000) !== 0 && r.remaining > 0) sessionStateChanges = decodeSessionState(r.lenencBytes("session state info"));
  } else info = r.restString();
  return { header, affectedRows, lastInsertId, statusFlags, warnings, info, sessionStateChanges };
}

/**
 * Session state info, decoded tolerantly: an entry whose data does not parse as its type is
 * kept raw rather than failing the OK (servers add types; the relay must not break on them).
 */
function decodeSessionState(bytes: Uint8Array): SessionStateChange[] {
  const r = new PayloadReader(bytes, "session state info");
  const out: SessionStateChange[] = [];
  while (r.remaining > 0) {
    const type = r.u8("session state type");
    const data = r.lenencBytes("session state data");
    const change: { type: number; data: Uint8Array; schema?: string; variable?: readonly [string, string] } = { type, data };
    try {
      const d = new PayloadReader(data, "session state entry");
      if (type === 1) change.schema = d.lenencString("schema");
      else if (type === 0) change.variable = [d.lenencString("name"), d.lenencString("value")];
    } catch {
      // Kept raw on purpose (see above).
    }
    out.push(change);
  }
  return out;
}

/**
 * ERR_Packet.
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_basic_err_packet.html
 *
 *   int<1> 0xFF | int<2> error_code | string[1] '#' sql_state_marker + string[5] sql_state
 *   (CLIENT_PROTOCOL_41; some servers omit them before authentication) | string<EOF> error_message
 */
export function encodeErrPacket(error: ServerErrorFields): Uint8Array {
  const sqlState = error.sqlState.length === 5 ? error.sqlState : "HY000";
  return new PayloadWriter(error.message.length + 9).u8(PacketHeader.ERR).u16(error.errno).string("#").string(sqlState).string(error.message).finish();
}

export function decodeErrPacket(payload: Uint8Array): ServerErrorFields {
  const r = new PayloadReader(payload, "ERR_Packet");
  if (r.u8("header") !== PacketHeader.ERR) throw violation("ERR_Packet must start with 0xFF");
  const errno = r.u16("error_code");
  let sqlState = "HY000";
  if (r.remaining >= 6 && payload[r.offset] === 0x23 /* '#' */) {
    r.skip(1);
    sqlState = new TextDecoder().decode(r.bytesOf(5, "sql_state"));
  }
  return { errno, sqlState, message: r.restString() };
}

/**
 * EOF_Packet (without CLIENT_DEPRECATE_EOF).
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_basic_eof_packet.html
 *
 *   int<1> 0xFE | int<2> warnings | int<2> status_flags (CLIENT_PROTOCOL_41)
 */
export interface EofPacket {
  readonly warnings: number;
  readonly statusFlags: number;
}

export function encodeEofPacket(eof: EofPacket, capabilities: number): Uint8Array {
  const w = new PayloadWriter(5).u8(PacketHeader.EOF);
  if (hasCapability(capabilities, Capability.CLIENT_PROTOCOL_41)) w.u16(eof.warnings).u16(eof.statusFlags);
  return w.finish();
}

export function decodeEofPacket(payload: Uint8Array, capabilities: number): EofPacket {
  const r = new PayloadReader(payload, "EOF_Packet");
  if (r.u8("header") !== PacketHeader.EOF || payload.byteLength >= 9) throw violation("not an EOF_Packet");
  if (!hasCapability(capabilities, Capability.CLIENT_PROTOCOL_41)) return { warnings: 0, statusFlags: 0 };
  return { warnings: r.u16("warnings"), statusFlags: r.u16("status_flags") };
}

/** An EOF_Packet is 0xFE with fewer than 9 bytes (a longer 0xFE packet is an OK or a length-encoded integer). */
export function isEofPacket(payload: Uint8Array): boolean {
  return payload[0] === PacketHeader.EOF && payload.byteLength < 9;
}

export function isErrPacket(payload: Uint8Array): boolean {
  return payload[0] === PacketHeader.ERR;
}

export function isOkPacket(payload: Uint8Array): boolean {
  return payload[0] === PacketHeader.OK && payload.byteLength >= 7;
}

/**
 * `@gatehouse/protocols/mysql` — the MySQL/MariaDB client/server protocol, pure (no sockets,
 * timers or storage). Layers: framing → packet codecs → handshake state machines
 * (ClientHandshake on the gateway side, ServerLogin on the connector side) → auth methods.
 * See README.md.
 */
export {
  AuthPlugin,
  CachingSha2,
  Capability,
  Collation,
  ColumnFlag,
  ColumnType,
  Command,
  MYSQL_PROTOCOL,
  MariadbCapability,
  PROTOCOL_VERSION_10,
  PacketHeader,
  SCRAMBLE_LENGTH,
  ServerError,
  ServerStatus,
  SessionTrack,
  commandName,
  hasCapability,
  withoutCapabilities,
} from "./constants.js";

// Errors
export { MysqlErrorCode, MysqlProtocolError, isMysqlProtocolError } from "./errors.js";
export type { MysqlProtocolErrorOptions, ServerErrorFields } from "./errors.js";

// Framing
export {
  DEFAULT_MAX_PACKET_SIZE,
  MAX_PACKET_PIECE,
  PACKET_HEADER_LENGTH,
  PacketReader,
  encodePacket,
  encodePacketChunks,
  expectSequenceId,
  nextSequenceId,
  pieceCount,
} from "./framing.js";
export type { Packet, PacketReaderOptions } from "./framing.js";

// Payload data types
export { LENENC_NULL, PayloadReader, PayloadWriter } from "./bytes.js";

// Packets
export {
  SSL_REQUEST_LENGTH,
  decodeAuthMoreData,
  decodeAuthSwitchRequest,
  decodeEofPacket,
  decodeErrPacket,
  decodeHandshakeResponse41,
  decodeHandshakeV10,
  decodeOkPacket,
  decodeSslRequest,
  encodeAuthMoreData,
  encodeAuthSwitchRequest,
  encodeEofPacket,
  encodeErrPacket,
  encodeHandshakeResponse41,
  encodeHandshakeV10,
  encodeOkPacket,
  encodeSslRequest,
  isEofPacket,
  isErrPacket,
  isOkPacket,
  isSslRequest,
} from "./packets.js";
export type { AuthSwitchRequest, EofPacket, HandshakeResponse41, HandshakeV10, OkPacket, SessionStateChange, SslRequest } from "./packets.js";

// Authentication methods
export { checkNativePasswordToken, nativePasswordHashString, nativePasswordToken, nativePasswordVerifier } from "./auth/native-password.js";
export { cachingSha2EncryptPassword, cachingSha2Token, decodeCleartextPassword, passwordWithNul } from "./auth/caching-sha2.js";
export { ed25519PublicKey, ed25519Sign } from "./auth/ed25519.js";

// Handshakes
export { ClientHandshake } from "./client-handshake.js";
export type {
  ClientHandshakeEvent,
  ClientHandshakeState,
  ClientLogin,
  GreetingOptions,
  RequestPasswordOptions,
} from "./client-handshake.js";
export { DEFAULT_CLIENT_CAPABILITIES, NEVER_REQUESTED_CAPABILITIES, ServerLogin } from "./server-login.js";
export type { ServerLoginEvent, ServerLoginOptions, ServerLoginReady, ServerLoginState, TlsMode as MysqlTlsMode } from "./server-login.js";

// Observer (commands and their outcomes)
export { MysqlObserver } from "./observer.js";
export type {
  ClientRefusal,
  CommandOutcome as MysqlCommandOutcome,
  CommandStatus as MysqlCommandStatus,
  MysqlCommandKind,
  MysqlObserverOptions,
  MysqlObserverSink,
  ObservedCommand as MysqlObservedCommand,
  ObservedError as MysqlObservedError,
  ObservedParam as MysqlObservedParam,
} from "./observer.js";
export { splitStatements as splitMysqlStatements } from "./sql-split.js";

// What gateway and connector exchange about a MySQL stream over the tunnel
export { decodeDialRequest, decodeDialResult, encodeDialRequest, encodeDialResult } from "./tunnel-params.js";
export type { MysqlDialRequest, MysqlDialResult } from "./tunnel-params.js";
export { decodeKillResult, encodeKillResult } from "./tunnel-params.js";
export type { MysqlKillResult } from "./tunnel-params.js";

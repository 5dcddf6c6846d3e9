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

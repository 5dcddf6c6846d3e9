/**
 * Numbers of the MySQL client/server protocol, named as the spec and the server sources name
 * them (MySQL `include/mysql_com.h`, `include/my_command.h`, `include/mysqld_error.h`; MariaDB
 * `include/mysql_com.h`). One table per kind, each an `as const` object.
 *
 * Spec: https://dev.mysql.com/doc/dev/mysql-server/latest/PAGE_PROTOCOL.html
 * MariaDB: https://mariadb.com/kb/en/clientserver-protocol/
 */

export const MYSQL_PROTOCOL = "mysql" as const;

/** The only protocol version a HandshakeV10 carries. */
export const PROTOCOL_VERSION_10 = 10;

/**
 * Capability flags, the low 32 bits exchanged in HandshakeV10 / HandshakeResponse41.
 * https://dev.mysql.com/doc/dev/mysql-server/latest/group__group__cs__capabilities__flags.html
 *
 * Bit 31 is written as 0x80000000 so the value stays positive; test a flag with
 * `hasCapability`, never with `=== flag` after a bitwise operation (JS bitwise results are
 * signed 32-bit).
 */
export const Capability = {
  CLIENT_LONG_PASSWORD: 0x1,
  CLIENT_FOUND_ROWS: 0x2,
  CLIENT_LONG_FLAG: 0x4,
  CLIENT_CONNECT_WITH_DB: 0x8,
  CLIENT_NO_SCHEMA: 0x10,
  CLIENT_COMPRESS: 0x20,
  CLIENT_ODBC: 0x40,
  CLIENT_LOCAL_FILES: 0x80,
  CLIENT_IGNORE_SPACE: 0x100,
  CLIENT_PROTOCOL_41: 0x200,
  CLIENT_INTERACTIVE: 0x400,
  CLIENT_SSL: 0x800,
  CLIENT_IGNORE_SIGPIPE: 0x1000,
  CLIENT_TRANSACTIONS: 0x2000,
  CLIENT_RESERVED: 0x4000,
  /** CLIENT_RESERVED2 in newer headers: 4.1 authentication (scramble of 20 bytes). */
  CLIENT_SECURE_CONNECTION: 0x8000,
  CLIENT_MULTI_STATEMENTS: 0x10000,
  CLIENT_MULTI_RESULTS: 0x20000,
  CLIENT_PS_MULTI_RESULTS: 0x40000,
  CLIENT_PLUGIN_AUTH: 0x80000,
  CLIENT_CONNECT_ATTRS: 0x100000,
  CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA: 0x200000,
  CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS: 0x400000,
  CLIENT_SESSION_TRACK: 0x800000,
  CLIENT_DEPRECATE_EOF: 0x1000000,
  CLIENT_OPTIONAL_RESULTSET_METADATA: 0x2000000,
  CLIENT_ZSTD_COMPRESSION_ALGORITHM: 0x4000000,
  CLIENT_QUERY_ATTRIBUTES: 0x8000000,
  MULTI_FACTOR_AUTHENTICATION: 0x10000000,
  CLIENT_CAPABILITY_EXTENSION: 0x20000000,
  CLIENT_SSL_VERIFY_SERVER_CERT: 0x40000000,
  CLIENT_REMEMBER_OPTIONS: 0x80000000,
} as const;
export type Capability = (typeof Capability)[keyof typeof Capability];

/**
 * MariaDB's extended capabilities: a second 32-bit word, sent in the greeting's reserved bytes
 * and the response's filler when the server clears CLIENT_LONG_PASSWORD (which MariaDB calls
 * CLIENT_MYSQL). Bit n here is bit 32+n of MariaDB's 64-bit capability value.
 * https://mariadb.com/kb/en/connection/#capabilities
 */
export const MariadbCapability = {
  MARIADB_CLIENT_PROGRESS: 0x1,
  MARIADB_CLIENT_COM_MULTI: 0x2,
  MARIADB_CLIENT_STMT_BULK_OPERATIONS: 0x4,
  MARIADB_CLIENT_EXTENDED_METADATA: 0x8,
  MARIADB_CLIENT_CACHE_METADATA: 0x10,
  MARIADB_CLIENT_BULK_UNIT_RESULTS: 0x20,
} as const;
export type MariadbCapability = (typeof MariadbCapability)[keyof typeof MariadbCapability];

/** True when `flag` is set in `capabilities` (works for bit 31 too). */
export function hasCapability(capabilities: number, flag: number): boolean {
  return (capabilities & flag) !== 0;
}

/** `capabilities` with `flags` cleared, as an unsigned 32-bit number. */
export function withoutCapabilities(capabilities: number, flags: number): number {
  return (capabilities & ~flags) >>> 0;
}

/**
 * Command bytes: the first payload byte of every packet a client sends in the command phase.
 * https://dev.mysql.com/doc/dev/mysql-server/latest/my__command_8h.html
 */
export const Command = {
  COM_SLEEP: 0x00,
  COM_QUIT: 0x01,
  COM_INIT_DB: 0x02,
  COM_QUERY: 0x03,
  COM_FIELD_LIST: 0x04,
  COM_CREATE_DB: 0x05,
  COM_DROP_DB: 0x06,
  COM_REFRESH: 0x07,
  COM_SHUTDOWN: 0x08,
  COM_STATISTICS: 0x09,
  COM_PROCESS_INFO: 0x0a,
  COM_CONNECT: 0x0b,
  COM_PROCESS_KILL: 0x0c,
  COM_DEBUG: 0x0d,
  COM_PING: 0x0e,
  COM_TIME: 0x0f,
  COM_DELAYED_INSERT: 0x10,
  COM_CHANGE_USER: 0x11,
  COM_BINLOG_DUMP: 0x12,
  COM_TABLE_DUMP: 0x13,
  COM_CONNECT_OUT: 0x14,
  COM_REGISTER_SLAVE: 0x15,
  COM_STMT_PREPARE: 0x16,
  COM_STMT_EXECUTE: 0x17,
  COM_STMT_SEND_LONG_DATA: 0x18,
  COM_STMT_CLOSE: 0x19,
  COM_STMT_RESET: 0x1a,
  COM_SET_OPTION: 0x1b,
  COM_STMT_FETCH: 0x1c,
  COM_DAEMON: 0x1d,
  COM_BINLOG_DUMP_GTID: 0x1e,
  COM_RESET_CONNECTION: 0x1f,
  COM_CLONE: 0x20,
  /** MariaDB: https://mariadb.com/kb/en/com_stmt_bulk_execute/ */
  COM_STMT_BULK_EXECUTE: 0xfa,
  /** MariaDB (unused by current clients): https://mariadb.com/kb/en/com_multi/ */
  COM_MULTI: 0xfe,
} as const;
export type Command = (typeof Command)[keyof typeof Command];

/** The command's spec name (e.g. "COM_QUERY"), or `COM_0x..` for an unknown byte. */
export function commandName(byte: number): string {
  for (const [name, value] of Object.entries(Command)) if (value === byte) return name;
  return `COM_0x${byte.toString(16).padStart(2, "0")}`;
}

/**
 * The first payload byte that tells a server packet's kind (generic response packets).
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_basic_response_packets.html
 */
export const PacketHeader = {
  /** OK_Packet (also 0xFE when CLIENT_DEPRECATE_EOF ends a result set). */
  OK: 0x00,
  /** AuthMoreData during authentication. */
  AUTH_MORE_DATA: 0x01,
  /** AuthNextFactor (multi-factor authentication). */
  AUTH_NEXT_FACTOR: 0x02,
  /** LOCAL INFILE request in a COM_QUERY response. */
  LOCAL_INFILE: 0xfb,
  /** EOF_Packet; AuthSwitchRequest during authentication. */
  EOF: 0xfe,
  /** ERR_Packet. */
  ERR: 0xff,
} as const;
export type PacketHeader = (typeof PacketHeader)[keyof typeof PacketHeader];

/**
 * Server status flags, in OK and EOF packets and the greeting.
 * https://dev.mysql.com/doc/dev/mysql-server/latest/mysql__com_8h.html (enum SERVER_STATUS_flags_enum)
 */
export const ServerStatus = {
  SERVER_STATUS_IN_TRANS: 0x1,
  SERVER_STATUS_AUTOCOMMIT: 0x2,
  SERVER_MORE_RESULTS_EXISTS: 0x8,
  SERVER_QUERY_NO_GOOD_INDEX_USED: 0x10,
  SERVER_QUERY_NO_INDEX_USED: 0x20,
  SERVER_STATUS_CURSOR_EXISTS: 0x40,
  SERVER_STATUS_LAST_ROW_SENT: 0x80,
  SERVER_STATUS_DB_DROPPED: 0x100,
  SERVER_STATUS_NO_BACKSLASH_ESCAPES: 0x200,
  SERVER_STATUS_METADATA_CHANGED: 0x400,
  SERVER_QUERY_WAS_SLOW: 0x800,
  SERVER_PS_OUT_PARAMS: 0x1000,
  SERVER_STATUS_IN_TRANS_READONLY: 0x2000,
  SERVER_SESSION_STATE_CHANGED: 0x4000,
} as const;
export type ServerStatus = (typeof ServerStatus)[keyof typeof ServerStatus];

/**
 * Session state change types in an OK packet's session-state info (CLIENT_SESSION_TRACK).
 * https://dev.mysql.com/doc/dev/mysql-server/latest/mysql__com_8h.html (enum_session_state_type)
 */
export const SessionTrack = {
  SESSION_TRACK_SYSTEM_VARIABLES: 0,
  SESSION_TRACK_SCHEMA: 1,
  SESSION_TRACK_STATE_CHANGE: 2,
  SESSION_TRACK_GTIDS: 3,
  SESSION_TRACK_TRANSACTION_CHARACTERISTICS: 4,
  SESSION_TRACK_TRANSACTION_STATE: 5,
} as const;
export type SessionTrack = (typeof SessionTrack)[keyof typeof SessionTrack];

/**
 * Column types (enum_field_types) in column definitions and binary-protocol parameters.
 * https://dev.mysql.com/doc/dev/mysql-server/latest/field__types_8h.html
 */
export const ColumnType = {
  MYSQL_TYPE_DECIMAL: 0,
  MYSQL_TYPE_TINY: 1,
  MYSQL_TYPE_SHORT: 2,
  MYSQL_TYPE_LONG: 3,
  MYSQL_TYPE_FLOAT: 4,
  MYSQL_TYPE_DOUBLE: 5,
  MYSQL_TYPE_NULL: 6,
  MYSQL_TYPE_TIMESTAMP: 7,
  MYSQL_TYPE_LONGLONG: 8,
  MYSQL_TYPE_INT24: 9,
  MYSQL_TYPE_DATE: 10,
  MYSQL_TYPE_TIME: 11,
  MYSQL_TYPE_DATETIME: 12,
  MYSQL_TYPE_YEAR: 13,
  MYSQL_TYPE_NEWDATE: 14,
  MYSQL_TYPE_VARCHAR: 15,
  MYSQL_TYPE_BIT: 16,
  MYSQL_TYPE_TIMESTAMP2: 17,
  MYSQL_TYPE_DATETIME2: 18,
  MYSQL_TYPE_TIME2: 19,
  MYSQL_TYPE_TYPED_ARRAY: 20,
  MYSQL_TYPE_VECTOR: 242,
  MYSQL_TYPE_INVALID: 243,
  MYSQL_TYPE_BOOL: 244,
  MYSQL_TYPE_JSON: 245,
  MYSQL_TYPE_NEWDECIMAL: 246,
  MYSQL_TYPE_ENUM: 247,
  MYSQL_TYPE_SET: 248,
  MYSQL_TYPE_TINY_BLOB: 249,
  MYSQL_TYPE_MEDIUM_BLOB: 250,
  MYSQL_TYPE_LONG_BLOB: 251,
  MYSQL_TYPE_BLOB: 252,
  MYSQL_TYPE_VAR_STRING: 253,
  MYSQL_TYPE_STRING: 254,
  MYSQL_TYPE_GEOMETRY: 255,
} as const;
export type ColumnType = (typeof ColumnType)[keyof typeof ColumnType];

/** Column definition flags (the ones a decoder needs). */
export const ColumnFlag = {
  NOT_NULL_FLAG: 0x1,
  PRI_KEY_FLAG: 0x2,
  UNIQUE_KEY_FLAG: 0x4,
  MULTIPLE_KEY_FLAG: 0x8,
  BLOB_FLAG: 0x10,
  UNSIGNED_FLAG: 0x20,
  ZEROFILL_FLAG: 0x40,
  BINARY_FLAG: 0x80,
  ENUM_FLAG: 0x100,
  AUTO_INCREMENT_FLAG: 0x200,
  TIMESTAMP_FLAG: 0x400,
  SET_FLAG: 0x800,
} as const;
export type ColumnFlag = (typeof ColumnFlag)[keyof typeof ColumnFlag];

/**
 * Server error numbers with the SQLSTATE the server sends with each.
 * https://dev.mysql.com/doc/mysql-errors/8.0/en/server-error-reference.html
 * https://mariadb.com/kb/en/mariadb-error-code-reference/
 */
export const ServerError = {
  ER_CON_COUNT_ERROR: { errno: 1040, sqlState: "08004" },
  ER_OUT_OF_RESOURCES: { errno: 1041, sqlState: "HY000" },
  ER_BAD_HOST_ERROR: { errno: 1042, sqlState: "08S01" },
  ER_HANDSHAKE_ERROR: { errno: 1043, sqlState: "08S01" },
  ER_DBACCESS_DENIED_ERROR: { errno: 1044, sqlState: "42000" },
  ER_ACCESS_DENIED_ERROR: { errno: 1045, sqlState: "28000" },
  ER_NO_DB_ERROR: { errno: 1046, sqlState: "3D000" },
  ER_UNKNOWN_COM_ERROR: { errno: 1047, sqlState: "08S01" },
  ER_BAD_DB_ERROR: { errno: 1049, sqlState: "42000" },
  ER_SERVER_SHUTDOWN: { errno: 1053, sqlState: "08S01" },
  ER_DISK_FULL: { errno: 1021, sqlState: "HY000" },
  ER_ERROR_ON_WRITE: { errno: 1026, sqlState: "HY000" },
  ER_NO_SUCH_THREAD: { errno: 1094, sqlState: "HY000" },
  ER_KILL_DENIED_ERROR: { errno: 1095, sqlState: "HY000" },
  ER_UNKNOWN_ERROR: { errno: 1105, sqlState: "HY000" },
  ER_NOT_ALLOWED_COMMAND: { errno: 1148, sqlState: "42000" },
  ER_NET_PACKET_TOO_LARGE: { errno: 1153, sqlState: "08S01" },
  ER_NET_READ_ERROR_FROM_PIPE: { errno: 1154, sqlState: "08S01" },
  ER_NET_PACKETS_OUT_OF_ORDER: { errno: 1156, sqlState: "08S01" },
  ER_NET_UNCOMPRESS_ERROR: { errno: 1157, sqlState: "08S01" },
  ER_NET_READ_ERROR: { errno: 1158, sqlState: "08S01" },
  ER_NET_READ_INTERRUPTED: { errno: 1159, sqlState: "08S01" },
  ER_SPECIFIC_ACCESS_DENIED_ERROR: { errno: 1227, sqlState: "42000" },
  ER_NOT_SUPPORTED_YET: { errno: 1235, sqlState: "42000" },
  ER_NOT_SUPPORTED_AUTH_MODE: { errno: 1251, sqlState: "08004" },
  ER_OPTION_PREVENTS_STATEMENT: { errno: 1290, sqlState: "HY000" },
  ER_QUERY_INTERRUPTED: { errno: 1317, sqlState: "70100" },
  ER_ACCESS_DENIED_NO_PASSWORD_ERROR: { errno: 1698, sqlState: "28000" },
  ER_MALFORMED_PACKET: { errno: 1835, sqlState: "HY000" },
  /** MySQL 5.7+: the account requires TLS (MariaDB answers ER_ACCESS_DENIED_ERROR instead). */
  ER_SECURE_TRANSPORT_REQUIRED: { errno: 3159, sqlState: "HY000" },
} as const;
export type ServerError = (typeof ServerError)[keyof typeof ServerError];

/**
 * Collation ids sent in the handshake's character_set byte (low 8 bits of the collation id).
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_basic_character_set.html
 */
export const Collation = {
  latin1_swedish_ci: 8,
  utf8mb3_general_ci: 33,
  utf8mb4_general_ci: 45,
  binary: 63,
  /** MySQL 8.0 default; MariaDB does not know it. */
  utf8mb4_0900_ai_ci: 255,
} as const;
export type Collation = (typeof Collation)[keyof typeof Collation];

/** Authentication plugin names as they appear on the wire. */
export const AuthPlugin = {
  MYSQL_NATIVE_PASSWORD: "mysql_native_password",
  CACHING_SHA2_PASSWORD: "caching_sha2_password",
  SHA256_PASSWORD: "sha256_password",
  MYSQL_CLEAR_PASSWORD: "mysql_clear_password",
  CLIENT_ED25519: "client_ed25519",
} as const;
export type AuthPlugin = (typeof AuthPlugin)[keyof typeof AuthPlugin];

/**
 * Status bytes inside caching_sha2_password's AuthMoreData, and the client's request byte.
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_caching_sha2_authentication_exchanges.html
 */
export const CachingSha2 = {
  /** Client → server: send me your RSA public key. */
  REQUEST_PUBLIC_KEY: 0x02,
  /** Server → client: the scramble matched the cache; an OK follows. */
  FAST_AUTH_SUCCESS: 0x03,
  /** Server → client: send the password (cleartext over TLS, else RSA-encrypted). */
  PERFORM_FULL_AUTHENTICATION: 0x04,
} as const;

/** Length of the scramble (nonce) in a greeting: 8 + 12 bytes, NUL-terminated on the wire. */
export const SCRAMBLE_LENGTH = 20;

/**
 * Decoders of the client's command-phase packets (COM_*), as the observer needs them.
 * https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_command_phase.html
 *
 * Every decoder takes the whole logical payload (command byte first) and returns views where it
 * can; a payload that does not fit its layout throws a `MysqlProtocolError` (PROTOCOL_VIOLATION).
 */
import { Command } from "./constants.js";
import type { CaptureBudget, ObservedParam } from "./binary-values.js";
import { PayloadCursor, captureBytes, decodeText, readBinaryValue } from "./binary-values.js";
import { violation } from "./errors.js";

/** COM_QUERY: `int<1> 0x03 | string<EOF> query` (without CLIENT_QUERY_ATTRIBUTES). COM_STMT_PREPARE has the same layout. */
export function decodeQueryText(payload: Uint8Array, queryAttributes: boolean): Uint8Array {
  const cursor = new PayloadCursor(payload, 1);
  if (queryAttributes && payload[0] === Command.COM_QUERY) {
    // CLIENT_QUERY_ATTRIBUTES (MySQL 8.0.23+): int<lenenc> parameter_count | int<lenenc> parameter_set_count (always 1)
    // | [null bitmap | new_params_bind_flag | types and names | values] when parameter_count > 0.
    const count = cursor.lenenc("parameter_count") ?? 0;
    cursor.lenenc("parameter_set_count");
    if (count > 0) throw violation("query attributes are not supported", { count });
  }
  return cursor.rest();
}

/** COM_INIT_DB: `int<1> 0x02 | string<EOF> schema`. */
export function decodeInitDb(payload: Uint8Array): string {
  return decodeText(payload.subarray(1));
}

/** COM_FIELD_LIST: `int<1> 0x04 | string<NUL> table | string<EOF> wildcard`. */
export function decodeFieldList(payload: Uint8Array): { table: string; wildcard: string } {
  const cursor = new PayloadCursor(payload, 1);
  const table = decodeText(cursor.nulTerminated("table"));
  return { table, wildcard: decodeText(cursor.rest()) };
}

/** COM_PROCESS_KILL: `int<1> 0x0C | int<4> connection_id`. */
export function decodeProcessKill(payload: Uint8Array): number {
  return new PayloadCursor(payload, 1).u32("connection_id");
}

/** COM_STMT_CLOSE, COM_STMT_RESET: `int<1> cmd | int<4> statement_id`. */
export function decodeStatementId(payload: Uint8Array): number {
  return new PayloadCursor(payload, 1).u32("statement_id");
}

/** COM_STMT_FETCH: `int<1> 0x1C | int<4> statement_id | int<4> num_rows`. */
export function decodeStmtFetch(payload: Uint8Array): { statementId: number; rows: number } {
  const cursor = new PayloadCursor(payload, 1);
  return { statementId: cursor.u32("statement_id"), rows: cursor.u32("num_rows") };
}

/** COM_STMT_SEND_LONG_DATA: `int<1> 0x18 | int<4> statement_id | int<2> param_id | string<EOF> data`. */
export function decodeStmtSendLongData(payload: Uint8Array): { statementId: number; paramId: number; data: Uint8Array } {
  const cursor = new PayloadCursor(payload, 1);
  return { statementId: cursor.u32("statement_id"), paramId: cursor.u16("param_id"), data: cursor.rest() };
}

/** COM_CHANGE_USER: `int<1> 0x11 | string<NUL> user | …` — only the user is read (the gateway refuses it). */
export function decodeChangeUser(payload: Uint8Array): string {
  const cursor = new PayloadCursor(payload, 1);
  return decodeText(cursor.nulTerminated("user"));
}

/** COM_SET_OPTION: `int<1> 0x1B | int<2> option` (0 = multi-statements on, 1 = off). */
export function decodeSetOption(payload: Uint8Array): number {
  return new PayloadCursor(payload, 1).u16("option");
}

/** What COM_STMT_SEND_LONG_DATA sent for one parameter: the first bytes (capped) and the total. */
export interface LongData {
  kept: Uint8Array;
  total: number;
}

function captureLongData(data: LongData, budget: CaptureBudget): ObservedParam | undefined {
  const value = captureBytes(data.kept, budget);
  if (value === undefined || data.total === data.kept.byteLength) return value;
  if (typeof value === "string") return { text: value, bytes: data.total, truncated: true };
  if (value === null) return value;
  return "hex" in value ? { hex: value.hex, bytes: data.total, truncated: true } : { text: value.text, bytes: data.total, truncated: true };
}

/** A parameter type as sent by COM_STMT_EXECUTE: `int<1> type | int<1> flags` (0x80 = unsigned). */
export interface ParamType {
  readonly type: number;
  readonly unsigned: boolean;
}

export interface DecodedExecute {
  readonly statementId: number;
  /** CURSOR_TYPE_* flags (0 = no cursor). */
  readonly flags: number;
  /** The types the values were read with (sent now, or remembered from the previous execute). */
  readonly types: readonly ParamType[] | undefined;
  readonly params: readonly ObservedParam[];
  readonly paramsTruncated: boolean;
}

/**
 * COM_STMT_EXECUTE
 * (https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_com_stmt_execute.html):
 *
 *   int<1> 0x17 | int<4> statement_id | int<1> flags | int<4> iteration_count (1)
 *   if num_params > 0:
 *     binary<(num_params+7)/8> null_bitmap | int<1> new_params_bound_flag
 *     if new_params_bound_flag: (int<1> type | int<1> flags)[num_params]
 *     values[num_params] (binary protocol; none for NULLs and for parameters sent with SEND_LONG_DATA)
 *
 * `paramCount` comes from the COM_STMT_PREPARE reply; `previousTypes` from the last execute of the
 * statement (clients send types only when they change). `longData` holds the parameters
 * streamed with COM_STMT_SEND_LONG_DATA since the last execute: their value is that data.
 */
export function decodeStmtExecute(
  payload: Uint8Array,
  paramCount: number,
  previousTypes: readonly ParamType[] | undefined,
  longData: ReadonlyMap<number, LongData>,
  budget: CaptureBudget,
): DecodedExecute {
  const cursor = new PayloadCursor(payload, 1);
  const statementId = cursor.u32("statement_id");
  const flags = cursor.u8("flags");
  cursor.u32("iteration_count");
  if (paramCount === 0) return { statementId, flags, types: previousTypes, params: [], paramsTruncated: false };
  const nullBitmap = cursor.take((paramCount + 7) >> 3, "null_bitmap");
  let types = previousTypes;
  if (cursor.u8("new_params_bound_flag") === 1) {
    const sent: ParamType[] = [];
    for (let i = 0; i < paramCount; i++) {
      const type = cursor.u8("parameter type");
      sent.push({ type, unsigned: (cursor.u8("parameter flags") & 0x80) !== 0 });
    }
    types = sent;
  }
  if (types === undefined || types.length !== paramCount) {
    throw violation("COM_STMT_EXECUTE without parameter types", { statementId, paramCount });
  }
  const params: ObservedParam[] = [];
  for (let i = 0; i < paramCount; i++) {
    const isNull = (nullBitmap[i >> 3]! & (1 << (i & 7))) !== 0;
    const streamed = longData.get(i);
    let value: ObservedParam | undefined;
    if (isNull) value = null;
    else if (streamed !== undefined) value = captureLongData(streamed, budget);
    else value = readBinaryValue(cursor, types[i]!.type, types[i]!.unsigned, budget);
    if (value !== undefined && !budget.exhausted) params.push(value);
  }
  return { statementId, flags, types, params, paramsTruncated: budget.exhausted };
}

/** COM_STMT_BULK_EXECUTE's flags (MariaDB). */
export const BulkFlag = {
  /** The server answers each row with its own result (needs MARIADB_CLIENT_BULK_UNIT_RESULTS). */
  SEND_UNIT_RESULTS: 64,
  /** Parameter types follow the flags; else the previous ones (of this statement) apply. */
  SEND_TYPES_TO_SERVER: 128,
} as const;

/** A bulk row's per-value indicator (MariaDB's enum_indicator_type). */
const BulkIndicator = { NONE: 0, NULL: 1, DEFAULT: 2, IGNORE: 3 } as const;

export interface DecodedBulkExecute {
  readonly statementId: number;
  readonly flags: number;
  readonly types: readonly ParamType[] | undefined;
  /** Parameter sets (rows) sent; undefined when they cannot be counted (no types known, or no parameters). */
  readonly rows: number | undefined;
  /** The rows' values, row after row (paramCount per row), capped; DEFAULT/IGNORE indicators stop the capture. */
  readonly params: readonly ObservedParam[];
  readonly paramsTruncated: boolean;
}

/**
 * COM_STMT_BULK_EXECUTE, MariaDB's array binding (https://mariadb.com/kb/en/com_stmt_bulk_execute/):
 *
 *   int<1> 0xFA | int<4> statement_id | int<2> bulk_flags
 *   if bulk_flags & SEND_TYPES_TO_SERVER: (int<1> type | int<1> flags)[num_params]
 *   rows until the end of the payload, each: (int<1> indicator | value if indicator = NONE)[num_params]
 *     indicator: 0 NONE (a binary-protocol value follows), 1 NULL, 2 DEFAULT, 3 IGNORE
 *
 * The server answers with one OK whose affected rows cover every row (or, with SEND_UNIT_RESULTS,
 * a result per row). Without types in the packet the statement's previous types apply; without
 * those the rows cannot be walked and are not counted.
 */
export function decodeStmtBulkExecute(payload: Uint8Array, paramCount: number, previousTypes: readonly ParamType[] | undefined, budget: CaptureBudget): DecodedBulkExecute {
  const cursor = new PayloadCursor(payload, 1);
  const statementId = cursor.u32("statement_id");
  const flags = cursor.u16("bulk_flags");
  let types = previousTypes;
  if ((flags & BulkFlag.SEND_TYPES_TO_SERVER) !== 0) {
    const sent: ParamType[] = [];
    for (let i = 0; i < paramCount; i++) {
      const type = cursor.u8("parameter type");
      sent.push({ type, unsigned: (cursor.u8("parameter flags") & 0x80) !== 0 });
    }
    types = sent;
  }
  if (paramCount === 0 || types === undefined || types.length !== paramCount) {
    return { statementId, flags, types, rows: undefined, params: [], paramsTruncated: paramCount > 0 };
  }
  const params: ObservedParam[] = [];
  let capturing = true;
  let rows = 0;
  while (cursor.remaining > 0) {
    for (let i = 0; i < paramCount; i++) {
      const indicator = cursor.u8("indicator");
      let value: ObservedParam | undefined;
      switch (indicator) {
        case BulkIndicator.NONE:
          value = readBinaryValue(cursor, types[i]!.type, types[i]!.unsigned, budget);
          break;
        case BulkIndicator.NULL:
          value = null;
          break;
        case BulkIndicator.DEFAULT:
        case BulkIndicator.IGNORE:
          // No value to show in its place: what follows would no longer line up with the parameters.
          capturing = false;
          break;
        default:
          throw violation("COM_STMT_BULK_EXECUTE: unknown indicator", { statementId, indicator });
      }
      if (capturing && value !== undefined && !budget.exhausted) params.push(value);
    }
    rows++;
  }
  return { statementId, flags, types, rows, params, paramsTruncated: budget.exhausted || !capturing };
}

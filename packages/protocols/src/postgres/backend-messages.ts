/**
 * Backend (server → client) messages: one type, one encoder and one decoder per message of
 * https://www.postgresql.org/docs/current/protocol-message-formats.html
 *
 * Encoders return the complete message (type byte, length, body); decoders take the body.
 */
import { ByteCursor, ByteWriter, decodeUtf8 } from "./bytes.js";
import type { ErrorFields } from "./errors.js";
import { PostgresProtocolError, violation } from "./errors.js";
import { AuthenticationCode, BackendCode, TransactionStatusCode } from "./message-codes.js";

type Body<T> = Omit<T, "type">;

// ---------------------------------------------------------------------------------------------
// Authentication ('R'): Int32 length | Int32 request code | request-specific data

/** AuthenticationOk: Int32(0) */
export interface AuthenticationOk {
  readonly type: "AuthenticationOk";
}
/** AuthenticationKerberosV5: Int32(2) — not supported by current servers. */
export interface AuthenticationKerberosV5 {
  readonly type: "AuthenticationKerberosV5";
}
/** AuthenticationCleartextPassword: Int32(3) */
export interface AuthenticationCleartextPassword {
  readonly type: "AuthenticationCleartextPassword";
}
/** AuthenticationMD5Password: Int32(5) | Byte4 salt */
export interface AuthenticationMD5Password {
  readonly type: "AuthenticationMD5Password";
  readonly salt: Uint8Array;
}
/** AuthenticationGSS: Int32(7) */
export interface AuthenticationGSS {
  readonly type: "AuthenticationGSS";
}
/** AuthenticationGSSContinue: Int32(8) | Byte[n] GSSAPI or SSPI data */
export interface AuthenticationGSSContinue {
  readonly type: "AuthenticationGSSContinue";
  readonly data: Uint8Array;
}
/** AuthenticationSSPI: Int32(9) */
export interface AuthenticationSSPI {
  readonly type: "AuthenticationSSPI";
}
/** AuthenticationSASL: Int32(10) | (String mechanism)* | Byte1(0) */
export interface AuthenticationSASL {
  readonly type: "AuthenticationSASL";
  readonly mechanisms: readonly string[];
}
/** AuthenticationSASLContinue: Int32(11) | Byte[n] SASL data (SCRAM server-first-message) */
export interface AuthenticationSASLContinue {
  readonly type: "AuthenticationSASLContinue";
  readonly data: Uint8Array;
}
/** AuthenticationSASLFinal: Int32(12) | Byte[n] SASL outcome data (SCRAM server-final-message) */
export interface AuthenticationSASLFinal {
  readonly type: "AuthenticationSASLFinal";
  readonly data: Uint8Array;
}
export type AuthenticationMessage =
  | AuthenticationOk
  | AuthenticationKerberosV5
  | AuthenticationCleartextPassword
  | AuthenticationMD5Password
  | AuthenticationGSS
  | AuthenticationGSSContinue
  | AuthenticationSSPI
  | AuthenticationSASL
  | AuthenticationSASLContinue
  | AuthenticationSASLFinal;

/** ParameterStatus ('S'): String name | String value */
export interface ParameterStatus {
  readonly type: "ParameterStatus";
  readonly name: string;
  readonly value: string;
}
/** BackendKeyData ('K'): Int32 process ID | Byte[n] secret key (4 bytes in 3.0, up to 256 in 3.2) */
export interface BackendKeyData {
  readonly type: "BackendKeyData";
  readonly processId: number;
  readonly secretKey: Uint8Array;
}
export type TransactionStatus = "idle" | "in_transaction" | "in_failed_transaction";
/** ReadyForQuery ('Z'): Byte1 'I' | 'T' | 'E' */
export interface ReadyForQuery {
  readonly type: "ReadyForQuery";
  readonly status: TransactionStatus;
}
/** ErrorResponse ('E'): (Byte1 field type | String value)* | Byte1(0) */
export interface ErrorResponse {
  readonly type: "ErrorResponse";
  readonly fields: ErrorFields;
}
/** NoticeResponse ('N'): same layout as ErrorResponse */
export interface NoticeResponse {
  readonly type: "NoticeResponse";
  readonly fields: ErrorFields;
}
export interface FieldDescription {
  readonly name: string;
  /** OID of the table, or 0. */
  readonly tableOid: number;
  /** Attribute number of the column, or 0. */
  readonly columnAttribute: number;
  readonly typeOid: number;
  /** pg_type.typlen; negative = variable width. */
  readonly typeSize: number;
  readonly typeModifier: number;
  /** 0 text, 1 binary. */
  readonly format: number;
}
/**
 * RowDescription ('T'): Int16 n | (String name | Int32 table OID | Int16 attnum | Int32 type OID |
 * Int16 typlen | Int32 typmod | Int16 format)[n]
 */
export interface RowDescription {
  readonly type: "RowDescription";
  readonly fields: readonly FieldDescription[];
}
/** DataRow ('D'): Int16 n | (Int32 length (-1 = NULL) | Byte[length])[n] */
export interface DataRow {
  readonly type: "DataRow";
  readonly values: readonly (Uint8Array | null)[];
}
/** CommandComplete ('C'): String command tag ("SELECT 5", "INSERT 0 1", "COPY 3"…) */
export interface CommandComplete {
  readonly type: "CommandComplete";
  readonly tag: string;
}
/** EmptyQueryResponse ('I'): no body — the query string was empty. */
export interface EmptyQueryResponse {
  readonly type: "EmptyQueryResponse";
}
/** ParseComplete ('1'): no body */
export interface ParseComplete {
  readonly type: "ParseComplete";
}
/** BindComplete ('2'): no body */
export interface BindComplete {
  readonly type: "BindComplete";
}
/** CloseComplete ('3'): no body */
export interface CloseComplete {
  readonly type: "CloseComplete";
}
/** NoData ('n'): no body — the statement or portal returns no rows. */
export interface NoData {
  readonly type: "NoData";
}
/** PortalSuspended ('s'): no body — Execute's row limit was reached. */
export interface PortalSuspended {
  readonly type: "PortalSuspended";
}
/** ParameterDescription ('t'): Int16 n | Int32[n] parameter type OIDs */
export interface ParameterDescription {
  readonly type: "ParameterDescription";
  readonly paramTypes: readonly number[];
}
/** CopyInResponse ('G'), CopyOutResponse ('H'), CopyBothResponse ('W'): Int8 overall format | Int16 n | Int16[n] column formats */
export interface CopyResponse<T extends "CopyInResponse" | "CopyOutResponse" | "CopyBothResponse"> {
  readonly type: T;
  /** 0 textual, 1 binary. */
  readonly format: number;
  readonly columnFormats: readonly number[];
}
export type CopyInResponse = CopyResponse<"CopyInResponse">;
export type CopyOutResponse = CopyResponse<"CopyOutResponse">;
export type CopyBothResponse = CopyResponse<"CopyBothResponse">;
/** CopyData ('d') */
export interface BackendCopyData {
  readonly type: "CopyData";
  readonly data: Uint8Array;
}
/** CopyDone ('c') */
export interface BackendCopyDone {
  readonly type: "CopyDone";
}
/** NotificationResponse ('A'): Int32 process ID of the notifying backend | String channel | String payload */
export interface NotificationResponse {
  readonly type: "NotificationResponse";
  readonly processId: number;
  readonly channel: string;
  readonly payload: string;
}
/** FunctionCallResponse ('V'): Int32 length (-1 = NULL) | Byte[length] result */
export interface FunctionCallResponse {
  readonly type: "FunctionCallResponse";
  readonly result: Uint8Array | null;
}
/**
 * NegotiateProtocolVersion ('v'): Int32 newest minor version supported | Int32 n |
 * (String unrecognized protocol option)[n]
 */
export interface NegotiateProtocolVersion {
  readonly type: "NegotiateProtocolVersion";
  readonly newestMinorVersion: number;
  readonly unrecognizedOptions: readonly string[];
}

export type BackendMessage =
  | AuthenticationMessage
  | ParameterStatus
  | BackendKeyData
  | ReadyForQuery
  | ErrorResponse
  | NoticeResponse
  | RowDescription
  | DataRow
  | CommandComplete
  | EmptyQueryResponse
  | ParseComplete
  | BindComplete
  | CloseComplete
  | NoData
  | PortalSuspended
  | ParameterDescription
  | CopyInResponse
  | CopyOutResponse
  | CopyBothResponse
  | BackendCopyData
  | BackendCopyDone
  | NotificationResponse
  | FunctionCallResponse
  | NegotiateProtocolVersion;

// ---------------------------------------------------------------------------------------------
// Authentication

function authWriter(code: number, extra = 0): ByteWriter {
  return new ByteWriter(extra + 9).begin(BackendCode.Authentication).int32(code);
}

export function encodeAuthentication(msg: AuthenticationMessage): Uint8Array {
  switch (msg.type) {
    case "AuthenticationOk":
      return authWriter(AuthenticationCode.Ok).end().finish();
    case "AuthenticationKerberosV5":
      return authWriter(AuthenticationCode.KerberosV5).end().finish();
    case "AuthenticationCleartextPassword":
      return authWriter(AuthenticationCode.CleartextPassword).end().finish();
    case "AuthenticationMD5Password":
      if (msg.salt.byteLength !== 4) throw new PostgresProtocolError("INVALID_STATE", "MD5 salt must be 4 bytes");
      return authWriter(AuthenticationCode.MD5Password, 4).bytes(msg.salt).end().finish();
    case "AuthenticationGSS":
      return authWriter(AuthenticationCode.GSS).end().finish();
    case "AuthenticationGSSContinue":
      return authWriter(AuthenticationCode.GSSContinue, msg.data.byteLength).bytes(msg.data).end().finish();
    case "AuthenticationSSPI":
      return authWriter(AuthenticationCode.SSPI).end().finish();
    case "AuthenticationSASL": {
      const w = authWriter(AuthenticationCode.SASL, 32);
      for (const m of msg.mechanisms) w.cstring(m);
      return w.int8(0).end().finish();
    }
    case "AuthenticationSASLContinue":
      return authWriter(AuthenticationCode.SASLContinue, msg.data.byteLength).bytes(msg.data).end().finish();
    case "AuthenticationSASLFinal":
      return authWriter(AuthenticationCode.SASLFinal, msg.data.byteLength).bytes(msg.data).end().finish();
  }
}

export function decodeAuthentication(body: Uint8Array): AuthenticationMessage {
  const c = new ByteCursor(body, "Authentication");
  const code = c.int32("authentication request code");
  let msg: AuthenticationMessage;
  switch (code) {
    case AuthenticationCode.Ok:
      msg = { type: "AuthenticationOk" };
      break;
    case AuthenticationCode.KerberosV5:
      msg = { type: "AuthenticationKerberosV5" };
      break;
    case AuthenticationCode.CleartextPassword:
      msg = { type: "AuthenticationCleartextPassword" };
      break;
    case AuthenticationCode.MD5Password:
      msg = { type: "AuthenticationMD5Password", salt: c.bytesView(4, "salt") };
      break;
    case AuthenticationCode.GSS:
      msg = { type: "AuthenticationGSS" };
      break;
    case AuthenticationCode.GSSContinue:
      msg = { type: "AuthenticationGSSContinue", data: c.rest() };
      break;
    case AuthenticationCode.SSPI:
      msg = { type: "AuthenticationSSPI" };
      break;
    case AuthenticationCode.SASL: {
      const mechanisms: string[] = [];
      for (;;) {
        const m = c.cstring("SASL mechanism");
        if (m === "") break;
        mechanisms.push(m);
      }
      msg = { type: "AuthenticationSASL", mechanisms };
      break;
    }
    case AuthenticationCode.SASLContinue:
      msg = { type: "AuthenticationSASLContinue", data: c.rest() };
      break;
    case AuthenticationCode.SASLFinal:
      msg = { type: "AuthenticationSASLFinal", data: c.rest() };
      break;
    default:
      throw violation(`unknown authentication request code ${code}`, { code });
  }
  c.end();
  return msg;
}

// ---------------------------------------------------------------------------------------------
// Session messages

export function encodeParameterStatus(msg: Body<ParameterStatus>): Uint8Array {
  return new ByteWriter(msg.name.length + msg.value.length + 8)
    .begin(BackendCode.ParameterStatus)
    .cstring(msg.name)
    .cstring(msg.value)
    .end()
    .finish();
}
export function decodeParameterStatus(body: Uint8Array): ParameterStatus {
  const c = new ByteCursor(body, "ParameterStatus");
  const name = c.cstring("name");
  const value = c.cstring("value");
  c.end();
  return { type: "ParameterStatus", name, value };
}

export function encodeBackendKeyData(msg: Body<BackendKeyData>): Uint8Array {
  return new ByteWriter(16 + msg.secretKey.byteLength)
    .begin(BackendCode.BackendKeyData)
    .int32(msg.processId)
    .bytes(msg.secretKey)
    .end()
    .finish();
}
export function decodeBackendKeyData(body: Uint8Array): BackendKeyData {
  const c = new ByteCursor(body, "BackendKeyData");
  const processId = c.int32("process ID");
  const secretKey = c.rest();
  if (secretKey.byteLength < 4 || secretKey.byteLength > 256) {
    throw violation(`BackendKeyData: invalid secret key length ${secretKey.byteLength}`);
  }
  return { type: "BackendKeyData", processId, secretKey };
}

const STATUS_BY_CODE: Readonly<Record<string, TransactionStatus>> = {
  [TransactionStatusCode.Idle]: "idle",
  [TransactionStatusCode.InTransaction]: "in_transaction",
  [TransactionStatusCode.InFailedTransaction]: "in_failed_transaction",
};
const CODE_BY_STATUS: Readonly<Record<TransactionStatus, string>> = {
  idle: TransactionStatusCode.Idle,
  in_transaction: TransactionStatusCode.InTransaction,
  in_failed_transaction: TransactionStatusCode.InFailedTransaction,
};

export function encodeReadyForQuery(msg: Body<ReadyForQuery>): Uint8Array {
  return new Uint8Array([0x5a, 0, 0, 0, 5, CODE_BY_STATUS[msg.status].charCodeAt(0)]);
}
export function decodeReadyForQuery(body: Uint8Array): ReadyForQuery {
  const status = body.byteLength === 1 ? STATUS_BY_CODE[String.fromCharCode(body[0]!)] : undefined;
  if (status === undefined) throw violation("ReadyForQuery: invalid transaction status");
  return { type: "ReadyForQuery", status };
}

/** ErrorResponse/NoticeResponse field type bytes → `ErrorFields` keys. #PROTOCOL-ERROR-FIELDS */
const FIELD_BY_CODE: Readonly<Record<string, keyof ErrorFields>> = {
  S: "severity",
  V: "severityNonLocalized",
  C: "code",
  M: "message",
  D: "detail",
  H: "hint",
  P: "position",
  p: "internalPosition",
  q: "internalQuery",
  W: "where",
  s: "schema",
  t: "table",
  c: "column",
  d: "dataType",
  n: "constraint",
  F: "file",
  L: "line",
  R: "routine",
};
const CODE_BY_FIELD = Object.fromEntries(Object.entries(FIELD_BY_CODE).map(([k, v]) => [v, k])) as Record<
  keyof ErrorFields,
  string
>;

function encodeFields(code: string, fields: ErrorFields): Uint8Array {
  const w = new ByteWriter(128).begin(code);
  for (const [key, value] of Object.entries(fields) as [keyof ErrorFields, string | undefined][]) {
    const fieldCode = CODE_BY_FIELD[key];
    if (fieldCode === undefined || value === undefined) continue;
    w.int8(fieldCode.charCodeAt(0)).cstring(value);
  }
  return w.int8(0).end().finish();
}

/**
 * Decode ErrorResponse/NoticeResponse fields. Unknown field types are skipped, as the spec
 * asks of frontends. With `lenient`, a body cut short (a truncated capture) yields the fields
 * that are complete instead of an error.
 */
export function decodeErrorFields(body: Uint8Array, what = "ErrorResponse", lenient = false): ErrorFields {
  const out: Record<string, string> = {};
  let offset = 0;
  for (;;) {
    if (offset >= body.byteLength) {
      if (lenient) break;
      throw violation(`${what}: missing terminator`);
    }
    const type = body[offset]!;
    if (type === 0) {
      if (!lenient && offset + 1 !== body.byteLength) throw violation(`${what}: trailing bytes`);
      break;
    }
    const end = body.indexOf(0, offset + 1);
    if (end < 0) {
      if (!lenient) throw violation(`${what}: unterminated field`);
      const key = FIELD_BY_CODE[String.fromCharCode(type)];
      if (key !== undefined) out[key] = decodeUtf8(body.subarray(offset + 1));
      break;
    }
    const key = FIELD_BY_CODE[String.fromCharCode(type)];
    if (key !== undefined) out[key] = decodeUtf8(body.subarray(offset + 1, end));
    offset = end + 1;
  }
  // S, C and M are always present per spec; a server that omits them is broken, not us.
  return { severity: out.severity ?? "", code: out.code ?? "", message: out.message ?? "", ...out } as ErrorFields;
}

export function encodeErrorResponse(msg: Body<ErrorResponse>): Uint8Array {
  return encodeFields(BackendCode.ErrorResponse, msg.fields);
}
export function decodeErrorResponse(body: Uint8Array): ErrorResponse {
  return { type: "ErrorResponse", fields: decodeErrorFields(body, "ErrorResponse") };
}
export function encodeNoticeResponse(msg: Body<NoticeResponse>): Uint8Array {
  return encodeFields(BackendCode.NoticeResponse, msg.fields);
}
export function decodeNoticeResponse(body: Uint8Array): NoticeResponse {
  return { type: "NoticeResponse", fields: decodeErrorFields(body, "NoticeResponse") };
}

export type ErrorSeverity = "ERROR" | "FATAL" | "PANIC";
export type NoticeSeverity = "WARNING" | "NOTICE" | "DEBUG" | "INFO" | "LOG";

/** What the gateway needs to say to a client in an ErrorResponse. */
export interface ErrorInit {
  readonly severity: ErrorSeverity;
  /** SQLSTATE, e.g. `SqlState.invalidPassword`. */
  readonly code: string;
  readonly message: string;
  readonly detail?: string;
  readonly hint?: string;
}

/** Build an ErrorResponse; the non-localized severity (`V`) is set too, as servers 9.6+ do. */
export function errorResponse(init: ErrorInit): Uint8Array {
  return encodeErrorResponse({ fields: { ...init, severityNonLocalized: init.severity } });
}

/**
 * The ErrorResponse to send a client for a `PostgresProtocolError`: its SQLSTATE and its
 * client-safe message, never the internal one.
 */
export function errorResponseFor(error: PostgresProtocolError, severity: ErrorSeverity = "FATAL"): Uint8Array {
  return errorResponse({ severity, code: error.sqlState, message: error.clientMessage });
}

/** Build a NoticeResponse. */
export function noticeResponse(init: {
  readonly severity: NoticeSeverity;
  readonly code: string;
  readonly message: string;
  readonly detail?: string;
  readonly hint?: string;
}): Uint8Array {
  return encodeNoticeResponse({ fields: { ...init, severityNonLocalized: init.severity } });
}

export function encodeRowDescription(msg: Body<RowDescription>): Uint8Array {
  const w = new ByteWriter(16 + msg.fields.length * 32).begin(BackendCode.RowDescription).int16(msg.fields.length);
  for (const f of msg.fields) {
    w.cstring(f.name)
      .int32(f.tableOid)
      .int16(f.columnAttribute)
      .int32(f.typeOid)
      .int16(f.typeSize)
      .int32(f.typeModifier)
      .int16(f.format);
  }
  return w.end().finish();
}
export function decodeRowDescription(body: Uint8Array): RowDescription {
  const c = new ByteCursor(body, "RowDescription");
  const n = c.int16("field count");
  if (n < 0) throw violation(`RowDescription: negative field count ${n}`);
  const fields: FieldDescription[] = [];
  for (let i = 0; i < n; i++) {
    fields.push({
      name: c.cstring("field name"),
      tableOid: c.uint32("table OID"),
      columnAttribute: c.int16("column attribute"),
      typeOid: c.uint32("type OID"),
      typeSize: c.int16("type size"),
      typeModifier: c.int32("type modifier"),
      format: c.int16("format"),
    });
  }
  c.end();
  return { type: "RowDescription", fields };
}

export function encodeDataRow(msg: Body<DataRow>): Uint8Array {
  const w = new ByteWriter(16).begin(BackendCode.DataRow).int16(msg.values.length);
  for (const v of msg.values) w.nullableBytes(v);
  return w.end().finish();
}
export function decodeDataRow(body: Uint8Array): DataRow {
  const c = new ByteCursor(body, "DataRow");
  const n = c.uint16("column count");
  const values: (Uint8Array | null)[] = [];
  for (let i = 0; i < n; i++) values.push(c.nullableBytes("column value"));
  c.end();
  return { type: "DataRow", values };
}

export function encodeCommandComplete(msg: Body<CommandComplete>): Uint8Array {
  return new ByteWriter(msg.tag.length + 8).begin(BackendCode.CommandComplete).cstring(msg.tag).end().finish();
}
export function decodeCommandComplete(body: Uint8Array): CommandComplete {
  const c = new ByteCursor(body, "CommandComplete");
  const tag = c.cstring("command tag");
  c.end();
  return { type: "CommandComplete", tag };
}

function emptyMessage(code: string): Uint8Array {
  return new Uint8Array([code.charCodeAt(0), 0, 0, 0, 4]);
}
function decodeEmpty<T extends { readonly type: string }>(body: Uint8Array, msg: T): T {
  if (body.byteLength !== 0) throw violation(`${msg.type}: expected an empty body, got ${body.byteLength} bytes`);
  return msg;
}
export const encodeEmptyQueryResponse = (): Uint8Array => emptyMessage(BackendCode.EmptyQueryResponse);
export const encodeParseComplete = (): Uint8Array => emptyMessage(BackendCode.ParseComplete);
export const encodeBindComplete = (): Uint8Array => emptyMessage(BackendCode.BindComplete);
export const encodeCloseComplete = (): Uint8Array => emptyMessage(BackendCode.CloseComplete);
export const encodeNoData = (): Uint8Array => emptyMessage(BackendCode.NoData);
export const encodePortalSuspended = (): Uint8Array => emptyMessage(BackendCode.PortalSuspended);
export const encodeBackendCopyDone = (): Uint8Array => emptyMessage(BackendCode.CopyDone);
export const decodeEmptyQueryResponse = (b: Uint8Array): EmptyQueryResponse => decodeEmpty(b, { type: "EmptyQueryResponse" });
export const decodeParseComplete = (b: Uint8Array): ParseComplete => decodeEmpty(b, { type: "ParseComplete" });
export const decodeBindComplete = (b: Uint8Array): BindComplete => decodeEmpty(b, { type: "BindComplete" });
export const decodeCloseComplete = (b: Uint8Array): CloseComplete => decodeEmpty(b, { type: "CloseComplete" });
export const decodeNoData = (b: Uint8Array): NoData => decodeEmpty(b, { type: "NoData" });
export const decodePortalSuspended = (b: Uint8Array): PortalSuspended => decodeEmpty(b, { type: "PortalSuspended" });
export const decodeBackendCopyDone = (b: Uint8Array): BackendCopyDone => decodeEmpty(b, { type: "CopyDone" });

export function encodeParameterDescription(msg: Body<ParameterDescription>): Uint8Array {
  const w = new ByteWriter(8 + msg.paramTypes.length * 4)
    .begin(BackendCode.ParameterDescription)
    .int16(msg.paramTypes.length);
  for (const oid of msg.paramTypes) w.int32(oid);
  return w.end().finish();
}
export function decodeParameterDescription(body: Uint8Array): ParameterDescription {
  const c = new ByteCursor(body, "ParameterDescription");
  // Unsigned: up to 65535 parameters.
  const n = c.uint16("parameter count");
  const paramTypes: number[] = [];
  for (let i = 0; i < n; i++) paramTypes.push(c.uint32("parameter type"));
  c.end();
  return { type: "ParameterDescription", paramTypes };
}

const COPY_CODE = {
  CopyInResponse: BackendCode.CopyInResponse,
  CopyOutResponse: BackendCode.CopyOutResponse,
  CopyBothResponse: BackendCode.CopyBothResponse,
} as const;

export function encodeCopyResponse(
  msg: CopyInResponse | CopyOutResponse | CopyBothResponse,
): Uint8Array {
  const w = new ByteWriter(8 + msg.columnFormats.length * 2)
    .begin(COPY_CODE[msg.type])
    .int8(msg.format)
    .int16(msg.columnFormats.length);
  for (const f of msg.columnFormats) w.int16(f);
  return w.end().finish();
}
function decodeCopyResponse<T extends "CopyInResponse" | "CopyOutResponse" | "CopyBothResponse">(
  type: T,
  body: Uint8Array,
): CopyResponse<T> {
  const c = new ByteCursor(body, type);
  const format = c.int8("overall format");
  const n = c.int16("column count");
  if (n < 0) throw violation(`${type}: negative column count ${n}`);
  const columnFormats: number[] = [];
  for (let i = 0; i < n; i++) columnFormats.push(c.int16("column format"));
  c.end();
  return { type, format, columnFormats };
}
export const decodeCopyInResponse = (b: Uint8Array): CopyInResponse => decodeCopyResponse("CopyInResponse", b);
export const decodeCopyOutResponse = (b: Uint8Array): CopyOutResponse => decodeCopyResponse("CopyOutResponse", b);
export const decodeCopyBothResponse = (b: Uint8Array): CopyBothResponse => decodeCopyResponse("CopyBothResponse", b);

export function encodeBackendCopyData(msg: { readonly data: Uint8Array }): Uint8Array {
  return new ByteWriter(msg.data.byteLength + 5).begin(BackendCode.CopyData).bytes(msg.data).end().finish();
}
export function decodeBackendCopyData(body: Uint8Array): BackendCopyData {
  return { type: "CopyData", data: body };
}

export function encodeNotificationResponse(msg: Body<NotificationResponse>): Uint8Array {
  return new ByteWriter(16 + msg.channel.length + msg.payload.length)
    .begin(BackendCode.NotificationResponse)
    .int32(msg.processId)
    .cstring(msg.channel)
    .cstring(msg.payload)
    .end()
    .finish();
}
export function decodeNotificationResponse(body: Uint8Array): NotificationResponse {
  const c = new ByteCursor(body, "NotificationResponse");
  const processId = c.int32("process ID");
  const channel = c.cstring("channel");
  const payload = c.cstring("payload");
  c.end();
  return { type: "NotificationResponse", processId, channel, payload };
}

export function encodeFunctionCallResponse(msg: Body<FunctionCallResponse>): Uint8Array {
  return new ByteWriter(16 + (msg.result?.byteLength ?? 0))
    .begin(BackendCode.FunctionCallResponse)
    .nullableBytes(msg.result)
    .end()
    .finish();
}
export function decodeFunctionCallResponse(body: Uint8Array): FunctionCallResponse {
  const c = new ByteCursor(body, "FunctionCallResponse");
  const result = c.nullableBytes("result");
  c.end();
  return { type: "FunctionCallResponse", result };
}

export function encodeNegotiateProtocolVersion(msg: Body<NegotiateProtocolVersion>): Uint8Array {
  const w = new ByteWriter(32)
    .begin(BackendCode.NegotiateProtocolVersion)
    .int32(msg.newestMinorVersion)
    .int32(msg.unrecognizedOptions.length);
  for (const o of msg.unrecognizedOptions) w.cstring(o);
  return w.end().finish();
}
export function decodeNegotiateProtocolVersion(body: Uint8Array): NegotiateProtocolVersion {
  const c = new ByteCursor(body, "NegotiateProtocolVersion");
  const newestMinorVersion = c.int32("newest minor version");
  const n = c.int32("option count");
  if (n < 0 || n > body.byteLength) throw violation(`NegotiateProtocolVersion: invalid option count ${n}`);
  const unrecognizedOptions: string[] = [];
  for (let i = 0; i < n; i++) unrecognizedOptions.push(c.cstring("option"));
  c.end();
  return { type: "NegotiateProtocolVersion", newestMinorVersion, unrecognizedOptions };
}

/** Encode any backend message. */
export function encodeBackendMessage(msg: BackendMessage): Uint8Array {
  switch (msg.type) {
    case "AuthenticationOk":
    case "AuthenticationKerberosV5":
    case "AuthenticationCleartextPassword":
    case "AuthenticationMD5Password":
    case "AuthenticationGSS":
    case "AuthenticationGSSContinue":
    case "AuthenticationSSPI":
    case "AuthenticationSASL":
    case "AuthenticationSASLContinue":
    case "AuthenticationSASLFinal":
      return encodeAuthentication(msg);
    case "ParameterStatus":
      return encodeParameterStatus(msg);
    case "BackendKeyData":
      return encodeBackendKeyData(msg);
    case "ReadyForQuery":
      return encodeReadyForQuery(msg);
    case "ErrorResponse":
      return encodeErrorResponse(msg);
    case "NoticeResponse":
      return encodeNoticeResponse(msg);
    case "RowDescription":
      return encodeRowDescription(msg);
    case "DataRow":
      return encodeDataRow(msg);
    case "CommandComplete":
      return encodeCommandComplete(msg);
    case "EmptyQueryResponse":
      return encodeEmptyQueryResponse();
    case "ParseComplete":
      return encodeParseComplete();
    case "BindComplete":
      return encodeBindComplete();
    case "CloseComplete":
      return encodeCloseComplete();
    case "NoData":
      return encodeNoData();
    case "PortalSuspended":
      return encodePortalSuspended();
    case "ParameterDescription":
      return encodeParameterDescription(msg);
    case "CopyInResponse":
    case "CopyOutResponse":
    case "CopyBothResponse":
      return encodeCopyResponse(msg);
    case "CopyData":
      return encodeBackendCopyData(msg);
    case "CopyDone":
      return encodeBackendCopyDone();
    case "NotificationResponse":
      return encodeNotificationResponse(msg);
    case "FunctionCallResponse":
      return encodeFunctionCallResponse(msg);
    case "NegotiateProtocolVersion":
      return encodeNegotiateProtocolVersion(msg);
  }
}

/** Decode a backend message from its type character and body. */
export function decodeBackendMessage(code: string, body: Uint8Array): BackendMessage {
  switch (code) {
    case BackendCode.Authentication:
      return decodeAuthentication(body);
    case BackendCode.ParameterStatus:
      return decodeParameterStatus(body);
    case BackendCode.BackendKeyData:
      return decodeBackendKeyData(body);
    case BackendCode.ReadyForQuery:
      return decodeReadyForQuery(body);
    case BackendCode.ErrorResponse:
      return decodeErrorResponse(body);
    case BackendCode.NoticeResponse:
      return decodeNoticeResponse(body);
    case BackendCode.RowDescription:
      return decodeRowDescription(body);
    case BackendCode.DataRow:
      return decodeDataRow(body);
    case BackendCode.CommandComplete:
      return decodeCommandComplete(body);
    case BackendCode.EmptyQueryResponse:
      return decodeEmptyQueryResponse(body);
    case BackendCode.ParseComplete:
      return decodeParseComplete(body);
    case BackendCode.BindComplete:
      return decodeBindComplete(body);
    case BackendCode.CloseComplete:
      return decodeCloseComplete(body);
    case BackendCode.NoData:
      return decodeNoData(body);
    case BackendCode.PortalSuspended:
      return decodePortalSuspended(body);
    case BackendCode.ParameterDescription:
      return decodeParameterDescription(body);
    case BackendCode.CopyInResponse:
      return decodeCopyInResponse(body);
    case BackendCode.CopyOutResponse:
      return decodeCopyOutResponse(body);
    case BackendCode.CopyBothResponse:
      return decodeCopyBothResponse(body);
    case BackendCode.CopyData:
      return decodeBackendCopyData(body);
    case BackendCode.CopyDone:
      return decodeBackendCopyDone(body);
    case BackendCode.NotificationResponse:
      return decodeNotificationResponse(body);
    case BackendCode.FunctionCallResponse:
      return decodeFunctionCallResponse(body);
    case BackendCode.NegotiateProtocolVersion:
      return decodeNegotiateProtocolVersion(body);
    default:
      throw violation(`invalid backend message type ${JSON.stringify(code)}`);
  }
}

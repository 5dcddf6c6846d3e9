/**
 * Frontend (client → server) messages: one type, one encoder and one decoder per message of
 * https://www.postgresql.org/docs/current/protocol-message-formats.html
 *
 * Encoders return the complete message (type byte, length, body). Decoders take the body a
 * `MessageReader` returned; byte fields (Bind parameters, CopyData) are views into it.
 */
import { ByteCursor, ByteWriter } from "./bytes.js";
import { PostgresProtocolError, violation } from "./errors.js";
import { FrontendCode, StartupCode } from "./message-codes.js";

// ---------------------------------------------------------------------------------------------
// Startup packets (untyped)

/** Parameters a StartupMessage carries: `user` (required), `database`, `options`, `application_name`, any GUC, `_pq_.*`. */
export type StartupParams = Readonly<Record<string, string>>;

/**
 * StartupMessage: Int32 length | Int32 protocol version (major << 16 | minor) |
 * (String name, String value)* | Byte1(0)
 */
export interface StartupMessage {
  readonly type: "StartupMessage";
  readonly protocolVersion: number;
  readonly params: StartupParams;
}
/** SSLRequest: Int32(8) | Int32(80877103) */
export interface SSLRequest {
  readonly type: "SSLRequest";
}
/** GSSENCRequest: Int32(8) | Int32(80877104) */
export interface GSSENCRequest {
  readonly type: "GSSENCRequest";
}
/**
 * CancelRequest: Int32 length | Int32(80877102) | Int32 process ID | Byte[n] secret key.
 * The key is 4 bytes in protocol 3.0 and up to 256 bytes in 3.2.
 */
export interface CancelRequest {
  readonly type: "CancelRequest";
  readonly processId: number;
  readonly secretKey: Uint8Array;
}
export type StartupPacket = StartupMessage | SSLRequest | GSSENCRequest | CancelRequest;

export function protocolMajor(version: number): number {
  return version >>> 16;
}
export function protocolMinor(version: number): number {
  return version & 0xffff;
}

/** A null-prototype record, so a client-chosen key like `__proto__` is just a key. */
function emptyParams(): Record<string, string> {
  return Object.create(null) as Record<string, string>;
}

export function encodeStartupMessage(msg: { readonly protocolVersion?: number; readonly params: StartupParams }): Uint8Array {
  const w = new ByteWriter().begin("").int32(msg.protocolVersion ?? StartupCode.ProtocolVersion3_0);
  for (const [name, value] of Object.entries(msg.params)) w.cstring(name).cstring(value);
  return w.int8(0).end().finish();
}

export function encodeSSLRequest(): Uint8Array {
  return new ByteWriter(8).begin("").int32(StartupCode.SSLRequest).end().finish();
}

export function encodeGSSENCRequest(): Uint8Array {
  return new ByteWriter(8).begin("").int32(StartupCode.GSSENCRequest).end().finish();
}

export function encodeCancelRequest(msg: { readonly processId: number; readonly secretKey: Uint8Array }): Uint8Array {
  return new ByteWriter(16)
    .begin("")
    .int32(StartupCode.CancelRequest)
    .int32(msg.processId)
    .bytes(msg.secretKey)
    .end()
    .finish();
}

/** Decode the body of an untyped startup packet (what a reader in startup mode returns). */
export function decodeStartupPacket(body: Uint8Array): StartupPacket {
  const c = new ByteCursor(body, "startup packet");
  const code = c.int32("protocol version");
  switch (code) {
    case StartupCode.SSLRequest:
      c.end();
      return { type: "SSLRequest" };
    case StartupCode.GSSENCRequest:
      c.end();
      return { type: "GSSENCRequest" };
    case StartupCode.CancelRequest: {
      const processId = c.int32("process ID");
      const secretKey = c.rest();
      if (secretKey.byteLength < 4 || secretKey.byteLength > 256) {
        throw violation(`CancelRequest: invalid secret key length ${secretKey.byteLength}`);
      }
      return { type: "CancelRequest", processId, secretKey };
    }
    default: {
      // Only the version field is read for other majors: their layout may differ, and the
      // caller answers them with "unsupported frontend protocol" rather than parsing on.
      if (protocolMajor(code) !== 3) return { type: "StartupMessage", protocolVersion: code, params: emptyParams() };
      const params = emptyParams();
      for (;;) {
        const name = c.cstring("parameter name");
        if (name === "") break;
        params[name] = c.cstring(`value of ${name}`);
      }
      c.end();
      return { type: "StartupMessage", protocolVersion: code, params };
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Typed frontend messages

/** Query ('Q'): String query (one or more statements separated by ';'). */
export interface Query {
  readonly type: "Query";
  readonly query: string;
}
/** Parse ('P'): String statement name | String query | Int16 n | Int32[n] parameter type OIDs (0 = unspecified). */
export interface Parse {
  readonly type: "Parse";
  readonly name: string;
  readonly query: string;
  readonly paramTypes: readonly number[];
}
/**
 * Bind ('B'): String portal | String statement | Int16 n | Int16[n] parameter format codes |
 * Int16 m | (Int32 length (-1 = NULL) | Byte[length])[m] | Int16 r | Int16[r] result format codes.
 * Format codes: 0 text, 1 binary; 0 codes = all text, 1 code = applies to all.
 */
export interface Bind {
  readonly type: "Bind";
  readonly portal: string;
  readonly statement: string;
  readonly paramFormats: readonly number[];
  readonly params: readonly (Uint8Array | null)[];
  readonly resultFormats: readonly number[];
}
/** Describe ('D'): Byte1 'S' (statement) or 'P' (portal) | String name */
export interface Describe {
  readonly type: "Describe";
  readonly target: "S" | "P";
  readonly name: string;
}
/** Execute ('E'): String portal | Int32 maximum rows (0 = no limit) */
export interface Execute {
  readonly type: "Execute";
  readonly portal: string;
  readonly maxRows: number;
}
/** Sync ('S'): no body. Ends an extended-query batch; the server answers ReadyForQuery. */
export interface Sync {
  readonly type: "Sync";
}
/** Flush ('H'): no body. Asks the server to send what it has buffered. */
export interface Flush {
  readonly type: "Flush";
}
/** Close ('C'): Byte1 'S' or 'P' | String name */
export interface Close {
  readonly type: "Close";
  readonly target: "S" | "P";
  readonly name: string;
}
/**
 * FunctionCall ('F'): Int32 function OID | Int16 n | Int16[n] argument formats | Int16 m |
 * (Int32 length | Byte[length])[m] | Int16 result format
 */
export interface FunctionCall {
  readonly type: "FunctionCall";
  readonly functionOid: number;
  readonly argFormats: readonly number[];
  readonly args: readonly (Uint8Array | null)[];
  readonly resultFormat: number;
}
/** CopyData ('d', both directions): Byte[n] */
export interface CopyData {
  readonly type: "CopyData";
  readonly data: Uint8Array;
}
/** CopyDone ('c', both directions): no body */
export interface CopyDone {
  readonly type: "CopyDone";
}
/** CopyFail ('f'): String error message */
export interface CopyFail {
  readonly type: "CopyFail";
  readonly message: string;
}
/** Terminate ('X'): no body */
export interface Terminate {
  readonly type: "Terminate";
}
/** PasswordMessage ('p'): String password (cleartext, or "md5" + hex digest) */
export interface PasswordMessage {
  readonly type: "PasswordMessage";
  readonly password: string;
}
/** SASLInitialResponse ('p'): String mechanism | Int32 length (-1 = none) | Byte[length] initial response */
export interface SASLInitialResponse {
  readonly type: "SASLInitialResponse";
  readonly mechanism: string;
  readonly data: Uint8Array | null;
}
/** SASLResponse ('p'): Byte[n] mechanism-specific data */
export interface SASLResponse {
  readonly type: "SASLResponse";
  readonly data: Uint8Array;
}
/**
 * A 'p' message decoded without knowing which authentication request it answers; decode
 * `data` with `decodePasswordMessage`, `decodeSASLInitialResponse` or `decodeSASLResponse`.
 */
export interface AuthenticationResponse {
  readonly type: "AuthenticationResponse";
  readonly data: Uint8Array;
}

export type FrontendMessage =
  | Query
  | Parse
  | Bind
  | Describe
  | Execute
  | Sync
  | Flush
  | Close
  | FunctionCall
  | CopyData
  | CopyDone
  | CopyFail
  | Terminate
  | PasswordMessage
  | SASLInitialResponse
  | SASLResponse
  | AuthenticationResponse;

type Body<T> = Omit<T, "type">;

const SYNC = new Uint8Array([0x53, 0, 0, 0, 4]);
const FLUSH = new Uint8Array([0x48, 0, 0, 0, 4]);
const TERMINATE = new Uint8Array([0x58, 0, 0, 0, 4]);
const COPY_DONE = new Uint8Array([0x63, 0, 0, 0, 4]);

export function encodeQuery(msg: Body<Query>): Uint8Array {
  return new ByteWriter(msg.query.length + 8).begin(FrontendCode.Query).cstring(msg.query).end().finish();
}
export function decodeQuery(body: Uint8Array): Query {
  const c = new ByteCursor(body, "Query");
  const query = c.cstring("query");
  c.end();
  return { type: "Query", query };
}

export function encodeParse(msg: Body<Parse>): Uint8Array {
  const w = new ByteWriter(msg.query.length + msg.name.length + 16).begin(FrontendCode.Parse);
  w.cstring(msg.name).cstring(msg.query).int16(msg.paramTypes.length);
  for (const oid of msg.paramTypes) w.int32(oid);
  return w.end().finish();
}
export function decodeParse(body: Uint8Array): Parse {
  const c = new ByteCursor(body, "Parse");
  const name = c.cstring("statement name");
  const query = c.cstring("query");
  const n = c.uint16("parameter type count");
  const paramTypes: number[] = [];
  for (let i = 0; i < n; i++) paramTypes.push(c.uint32("parameter type"));
  c.end();
  return { type: "Parse", name, query, paramTypes };
}

function readFormats(c: ByteCursor, what: string): number[] {
  const n = c.uint16(`${what} count`);
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(c.int16(what));
  return out;
}

function readValues(c: ByteCursor, what: string): (Uint8Array | null)[] {
  const n = c.uint16(`${what} count`);
  const out: (Uint8Array | null)[] = [];
  for (let i = 0; i < n; i++) out.push(c.nullableBytes(what));
  return out;
}

export function encodeBind(msg: Body<Bind>): Uint8Array {
  const w = new ByteWriter(64).begin(FrontendCode.Bind).cstring(msg.portal).cstring(msg.statement);
  w.int16(msg.paramFormats.length);
  for (const f of msg.paramFormats) w.int16(f);
  w.int16(msg.params.length);
  for (const p of msg.params) w.nullableBytes(p);
  w.int16(msg.resultFormats.length);
  for (const f of msg.resultFormats) w.int16(f);
  return w.end().finish();
}
export function decodeBind(body: Uint8Array): Bind {
  const c = new ByteCursor(body, "Bind");
  const portal = c.cstring("portal name");
  const statement = c.cstring("statement name");
  const paramFormats = readFormats(c, "parameter format");
  const params = readValues(c, "parameter");
  const resultFormats = readFormats(c, "result format");
  c.end();
  return { type: "Bind", portal, statement, paramFormats, params, resultFormats };
}

function readTarget(c: ByteCursor, what: string): "S" | "P" {
  const t = c.int8("target");
  if (t === 0x53) return "S";
  if (t === 0x50) return "P";
  throw violation(`${what}: invalid target 0x${t.toString(16)}`);
}

export function encodeDescribe(msg: Body<Describe>): Uint8Array {
  return new ByteWriter(msg.name.length + 8)
    .begin(FrontendCode.Describe)
    .int8(msg.target.charCodeAt(0))
    .cstring(msg.name)
    .end()
    .finish();
}
export function decodeDescribe(body: Uint8Array): Describe {
  const c = new ByteCursor(body, "Describe");
  const target = readTarget(c, "Describe");
  const name = c.cstring("name");
  c.end();
  return { type: "Describe", target, name };
}

export function encodeExecute(msg: Body<Execute>): Uint8Array {
  return new ByteWriter(msg.portal.length + 12)
    .begin(FrontendCode.Execute)
    .cstring(msg.portal)
    .int32(msg.maxRows)
    .end()
    .finish();
}
export function decodeExecute(body: Uint8Array): Execute {
  const c = new ByteCursor(body, "Execute");
  const portal = c.cstring("portal name");
  const maxRows = c.int32("maximum rows");
  c.end();
  return { type: "Execute", portal, maxRows };
}

export function encodeSync(): Uint8Array {
  return SYNC.slice();
}
export function encodeFlush(): Uint8Array {
  return FLUSH.slice();
}
export function encodeTerminate(): Uint8Array {
  return TERMINATE.slice();
}
export function encodeCopyDone(): Uint8Array {
  return COPY_DONE.slice();
}

function decodeEmpty<T extends { readonly type: string }>(body: Uint8Array, msg: T): T {
  if (body.byteLength !== 0) throw violation(`${msg.type}: expected an empty body, got ${body.byteLength} bytes`);
  return msg;
}
export const decodeSync = (body: Uint8Array): Sync => decodeEmpty(body, { type: "Sync" });
export const decodeFlush = (body: Uint8Array): Flush => decodeEmpty(body, { type: "Flush" });
export const decodeTerminate = (body: Uint8Array): Terminate => decodeEmpty(body, { type: "Terminate" });
export const decodeCopyDone = (body: Uint8Array): CopyDone => decodeEmpty(body, { type: "CopyDone" });

export function encodeClose(msg: Body<Close>): Uint8Array {
  return new ByteWriter(msg.name.length + 8)
    .begin(FrontendCode.Close)
    .int8(msg.target.charCodeAt(0))
    .cstring(msg.name)
    .end()
    .finish();
}
export function decodeClose(body: Uint8Array): Close {
  const c = new ByteCursor(body, "Close");
  const target = readTarget(c, "Close");
  const name = c.cstring("name");
  c.end();
  return { type: "Close", target, name };
}

export function encodeFunctionCall(msg: Body<FunctionCall>): Uint8Array {
  const w = new ByteWriter(64).begin(FrontendCode.FunctionCall).int32(msg.functionOid);
  w.int16(msg.argFormats.length);
  for (const f of msg.argFormats) w.int16(f);
  w.int16(msg.args.length);
  for (const a of msg.args) w.nullableBytes(a);
  return w.int16(msg.resultFormat).end().finish();
}
export function decodeFunctionCall(body: Uint8Array): FunctionCall {
  const c = new ByteCursor(body, "FunctionCall");
  const functionOid = c.uint32("function OID");
  const argFormats = readFormats(c, "argument format");
  const args = readValues(c, "argument");
  const resultFormat = c.int16("result format");
  c.end();
  return { type: "FunctionCall", functionOid, argFormats, args, resultFormat };
}

/** CopyData is shared by both directions; `code` is 'd' either way. */
export function encodeCopyData(msg: { readonly data: Uint8Array }): Uint8Array {
  return new ByteWriter(msg.data.byteLength + 5).begin(FrontendCode.CopyData).bytes(msg.data).end().finish();
}
export function decodeCopyData(body: Uint8Array): CopyData {
  return { type: "CopyData", data: body };
}

export function encodeCopyFail(msg: Body<CopyFail>): Uint8Array {
  return new ByteWriter(msg.message.length + 8).begin(FrontendCode.CopyFail).cstring(msg.message).end().finish();
}
export function decodeCopyFail(body: Uint8Array): CopyFail {
  const c = new ByteCursor(body, "CopyFail");
  const message = c.cstring("message");
  c.end();
  return { type: "CopyFail", message };
}

export function encodePasswordMessage(msg: Body<PasswordMessage>): Uint8Array {
  return new ByteWriter(msg.password.length + 8)
    .begin(FrontendCode.AuthenticationResponse)
    .cstring(msg.password)
    .end()
    .finish();
}
export function decodePasswordMessage(body: Uint8Array): PasswordMessage {
  const c = new ByteCursor(body, "PasswordMessage");
  const password = c.cstring("password");
  c.end();
  return { type: "PasswordMessage", password };
}

export function encodeSASLInitialResponse(msg: Body<SASLInitialResponse>): Uint8Array {
  return new ByteWriter(64 + (msg.data?.byteLength ?? 0))
    .begin(FrontendCode.AuthenticationResponse)
    .cstring(msg.mechanism)
    .nullableBytes(msg.data)
    .end()
    .finish();
}
export function decodeSASLInitialResponse(body: Uint8Array): SASLInitialResponse {
  const c = new ByteCursor(body, "SASLInitialResponse");
  const mechanism = c.cstring("mechanism");
  const data = c.nullableBytes("initial response");
  c.end();
  return { type: "SASLInitialResponse", mechanism, data };
}

export function encodeSASLResponse(msg: Body<SASLResponse>): Uint8Array {
  return new ByteWriter(msg.data.byteLength + 5)
    .begin(FrontendCode.AuthenticationResponse)
    .bytes(msg.data)
    .end()
    .finish();
}
export function decodeSASLResponse(body: Uint8Array): SASLResponse {
  return { type: "SASLResponse", data: body };
}

/** Encode any frontend message (an `AuthenticationResponse` is written as raw 'p' data). */
export function encodeFrontendMessage(msg: FrontendMessage): Uint8Array {
  switch (msg.type) {
    case "Query":
      return encodeQuery(msg);
    case "Parse":
      return encodeParse(msg);
    case "Bind":
      return encodeBind(msg);
    case "Describe":
      return encodeDescribe(msg);
    case "Execute":
      return encodeExecute(msg);
    case "Sync":
      return encodeSync();
    case "Flush":
      return encodeFlush();
    case "Close":
      return encodeClose(msg);
    case "FunctionCall":
      return encodeFunctionCall(msg);
    case "CopyData":
      return encodeCopyData(msg);
    case "CopyDone":
      return encodeCopyDone();
    case "CopyFail":
      return encodeCopyFail(msg);
    case "Terminate":
      return encodeTerminate();
    case "PasswordMessage":
      return encodePasswordMessage(msg);
    case "SASLInitialResponse":
      return encodeSASLInitialResponse(msg);
    case "SASLResponse":
      return encodeSASLResponse(msg);
    case "AuthenticationResponse":
      return encodeSASLResponse(msg);
  }
}

/** Decode a typed frontend message from its type character and body. */
export function decodeFrontendMessage(code: string, body: Uint8Array): FrontendMessage {
  switch (code) {
    case FrontendCode.Query:
      return decodeQuery(body);
    case FrontendCode.Parse:
      return decodeParse(body);
    case FrontendCode.Bind:
      return decodeBind(body);
    case FrontendCode.Describe:
      return decodeDescribe(body);
    case FrontendCode.Execute:
      return decodeExecute(body);
    case FrontendCode.Sync:
      return decodeSync(body);
    case FrontendCode.Flush:
      return decodeFlush(body);
    case FrontendCode.Close:
      return decodeClose(body);
    case FrontendCode.FunctionCall:
      return decodeFunctionCall(body);
    case FrontendCode.CopyData:
      return decodeCopyData(body);
    case FrontendCode.CopyDone:
      return decodeCopyDone(body);
    case FrontendCode.CopyFail:
      return decodeCopyFail(body);
    case FrontendCode.Terminate:
      return decodeTerminate(body);
    case FrontendCode.AuthenticationResponse:
      return { type: "AuthenticationResponse", data: body };
    default:
      throw new PostgresProtocolError("PROTOCOL_VIOLATION", `invalid frontend message type ${JSON.stringify(code)}`);
  }
}

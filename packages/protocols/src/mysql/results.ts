/**
 * Tracking the server's response to one command, packet by packet, without holding it: result
 * sets are counted in rows, column definitions skipped.
 *
 * Responses (https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_command_phase.html):
 *
 *   OK/ERR only      COM_INIT_DB, COM_PING, COM_RESET_CONNECTION, COM_STMT_RESET, COM_PROCESS_KILL, COM_REFRESH…
 *   EOF/ERR          COM_SET_OPTION, COM_DEBUG
 *   string<EOF>      COM_STATISTICS
 *   query response   COM_QUERY, COM_STMT_EXECUTE: ERR | OK | 0xFB LOCAL INFILE request (text only) |
 *                    int<lenenc> column_count, column_count × ColumnDefinition, [EOF unless
 *                    CLIENT_DEPRECATE_EOF], rows…, EOF (or OK with header 0xFE) | ERR.
 *                    SERVER_MORE_RESULTS_EXISTS in the final status: another response follows.
 *   prepare          COM_STMT_PREPARE: ERR | OK(0x00 | int<4> statement_id | int<2> num_columns |
 *                    int<2> num_params | 0x00 | int<2> warnings), num_params definitions [+EOF],
 *                    num_columns definitions [+EOF] (EOFs only without CLIENT_DEPRECATE_EOF).
 *   fields           COM_FIELD_LIST: ColumnDefinition… then EOF | ERR.
 *   rows             COM_STMT_FETCH: binary rows… then EOF | ERR.
 *
 * A packet with header 0xFE and a payload shorter than 0xFFFFFF is a terminator, never a row (a
 * row starting 0xFE would hold a 2^24-byte value, so its packet is at least that long).
 */
import { PayloadCursor, decodeText } from "./binary-values.js";
import { Capability, PacketHeader, ServerStatus, hasCapability } from "./constants.js";
import type { ServerErrorFields } from "./errors.js";
import { violation } from "./errors.js";
import type { OkPacket } from "./packets.js";
import { decodeEofPacket, decodeErrPacket, decodeOkPacket } from "./packets.js";

/** An ERR's message is kept up to this many characters. */
const MAX_ERROR_MESSAGE_LENGTH = 16384;

function isTerminator(payload: Uint8Array): boolean {
  return payload[0] === PacketHeader.EOF && payload.byteLength < 0xffffff;
}

/** What the server's packets told, as each response (or part) ends. */
export type ResponseEvent =
  | { readonly t: "ok"; readonly ok: OkPacket; readonly more: boolean }
  | { readonly t: "error"; readonly error: ServerErrorFields }
  | { readonly t: "result_set"; readonly rows: number; readonly status: number; readonly warnings: number; readonly more: boolean }
  | { readonly t: "local_infile"; readonly fileName: string }
  | { readonly t: "prepared"; readonly statementId: number; readonly columns: number; readonly params: number; readonly warnings: number }
  | { readonly t: "text" };

/** The response shapes, by what the command expects. */
export const Expect = {
  OkOrErr: "ok_or_err",
  EofOrErr: "eof_or_err",
  Text: "text",
  Query: "query",
  Prepare: "prepare",
  Fields: "fields",
  Rows: "rows",
  /** COM_CHANGE_USER relayed: authentication packets until OK or ERR. */
  Auth: "auth",
} as const;
export type Expect = (typeof Expect)[keyof typeof Expect];

const Phase = {
  Start: 0,
  Columns: 1,
  ColumnsEof: 2,
  Rows: 3,
  PrepareDefinitions: 4,
} as const;
type Phase = (typeof Phase)[keyof typeof Phase];

/**
 * Reads one command's response. `push(payload)` returns the event a packet completes (or
 * undefined); `done` is true when the command's last packet has been read.
 */
export class ResponseReader {
  private phase: Phase = Phase.Start;
  private left = 0;
  private rows = 0;
  private prepared: Extract<ResponseEvent, { t: "prepared" }> | undefined;
  done = false;

  private readonly deprecateEof: boolean;

  constructor(
    private readonly expect: Expect,
    /** The capabilities both sides agreed on (CLIENT_DEPRECATE_EOF, CLIENT_SESSION_TRACK…). */
    private readonly capabilities: number,
  ) {
    this.deprecateEof = hasCapability(capabilities, Capability.CLIENT_DEPRECATE_EOF);
    if (expect === Expect.Rows || expect === Expect.Fields) this.phase = Phase.Rows;
  }

  push(payload: Uint8Array): ResponseEvent | undefined {
    if (this.done) throw violation("server packet after the end of the response");
    if (payload.byteLength === 0) throw violation("empty server packet");
    const header = payload[0]!;
    switch (this.phase) {
      case Phase.Start:
        return this.first(payload, header);
      case Phase.Columns:
        if (header === PacketHeader.ERR) return this.fail(payload);
        if (--this.left === 0) this.phase = this.deprecateEof ? Phase.Rows : Phase.ColumnsEof;
        return undefined;
      case Phase.ColumnsEof: {
        if (!isTerminator(payload)) throw violation("expected EOF after column definitions", { header });
        const eof = decodeEofPacket(payload, this.capabilities);
        this.phase = Phase.Rows;
        // A cursor was opened (COM_STMT_EXECUTE with a cursor flag): rows come with COM_STMT_FETCH.
        if ((eof.statusFlags & ServerStatus.SERVER_STATUS_CURSOR_EXISTS) !== 0) return this.endResultSet(eof.statusFlags, eof.warnings);
        return undefined;
      }
      case Phase.Rows:
        if (header === PacketHeader.ERR) return this.fail(payload);
        if (isTerminator(payload)) {
          if (this.expect === Expect.Fields) {
            this.done = true;
            return { t: "text" };
          }
          const end = this.deprecateEof ? decodeOkPacket(payload, this.capabilities) : decodeEofPacket(payload, this.capabilities);
          return this.endResultSet(end.statusFlags, end.warnings);
        }
        this.rows++;
        return undefined;
      case Phase.PrepareDefinitions:
        // Parameter and column definitions (and their EOFs) are skipped, only counted.
        return --this.left === 0 ? this.prepareDone() : undefined;
    }
  }

  private first(payload: Uint8Array, header: number): ResponseEvent | undefined {
    if (header === PacketHeader.ERR) return this.fail(payload);
    switch (this.expect) {
      case Expect.Text:
        this.done = true;
        return { t: "text" };
      case Expect.EofOrErr:
        if (!isTerminator(payload)) throw violation("expected EOF", { header });
        this.done = true;
        {
          const eof = decodeEofPacket(payload, this.capabilities);
          const ok: OkPacket = { header: PacketHeader.EOF, affectedRows: 0, lastInsertId: 0, statusFlags: eof.statusFlags, warnings: eof.warnings, info: "", sessionStateChanges: [] };
          return { t: "ok", ok, more: false };
        }
      case Expect.Auth:
        if (header !== PacketHeader.OK) return undefined;
        return this.ok(payload);
      case Expect.OkOrErr:
        if (header !== PacketHeader.OK) throw violation("expected OK or ERR", { header });
        return this.ok(payload);
      case Expect.Prepare: {
        if (header !== PacketHeader.OK) throw violation("expected COM_STMT_PREPARE_OK", { header });
        const cursor = new PayloadCursor(payload, 1);
        const statementId = cursor.u32("statement_id");
        const columns = cursor.u16("num_columns");
        const params = cursor.u16("num_params");
        let warnings = 0;
        if (cursor.remaining >= 3) {
          cursor.u8();
          warnings = cursor.u16("warning_count");
        }
        this.prepared = { t: "prepared", statementId, columns, params, warnings };
        const eofs = this.deprecateEof ? 0 : (params > 0 ? 1 : 0) + (columns > 0 ? 1 : 0);
        this.phase = Phase.PrepareDefinitions;
        this.left = params + columns + eofs;
        return this.left === 0 ? this.prepareDone() : undefined;
      }
      case Expect.Query:
        if (header === PacketHeader.OK) return this.ok(payload);
        if (header === PacketHeader.LOCAL_INFILE) {
          // The client now streams the file; the OK/ERR after it is the same command's.
          return { t: "local_infile", fileName: decodeText(payload.subarray(1, 1 + 4096)) };
        }
        {
          const count = new PayloadCursor(payload).lenenc("column_count");
          if (count === null || count === 0) throw violation("invalid column count", { count });
          this.phase = Phase.Columns;
          this.left = count;
          this.rows = 0;
        }
        return undefined;
      default:
        throw violation("unexpected server packet", { header, expect: this.expect });
    }
  }

  private prepareDone(): ResponseEvent {
    this.done = true;
    return this.prepared!;
  }

  private ok(payload: Uint8Array): ResponseEvent {
    const ok = decodeOkPacket(payload, this.capabilities);
    const more = (ok.statusFlags & ServerStatus.SERVER_MORE_RESULTS_EXISTS) !== 0;
    this.restartOrFinish(more);
    return { t: "ok", ok, more };
  }

  private endResultSet(status: number, warnings: number): ResponseEvent {
    const more = (status & ServerStatus.SERVER_MORE_RESULTS_EXISTS) !== 0;
    const rows = this.rows;
    this.restartOrFinish(more);
    return { t: "result_set", rows, status, warnings, more };
  }

  private restartOrFinish(more: boolean): void {
    this.rows = 0;
    if (more && this.expect === Expect.Query) {
      this.phase = Phase.Start;
      return;
    }
    this.done = true;
  }

  private fail(payload: Uint8Array): ResponseEvent {
    this.done = true;
    const error = decodeErrPacket(payload);
    return { t: "error", error: { ...error, message: error.message.slice(0, MAX_ERROR_MESSAGE_LENGTH) } };
  }

  /** After the client streamed a LOCAL INFILE: the server's OK/ERR follows. */
  afterLocalInfile(): void {
    this.phase = Phase.Start;
  }
}

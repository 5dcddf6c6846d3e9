/**
 * The observer: fed the relayed bytes of both directions of a session (after the handshake), it
 * produces one audit event pair per command — `commandStarted` when the client's command packet
 * is complete (write-ahead: before the listener relays the chunk), `commandCompleted` with its
 * outcome when the server's response ends — without holding results: rows are counted.
 *
 * MySQL is strictly request/response: the client sends a command (sequence id 0) and reads the
 * whole response before the next one. Commands are still queued in order, so a pipelining
 * client is tracked too.
 *   - COM_QUERY with several statements (CLIENT_MULTI_STATEMENTS): split lexically
 *     (sql-split.ts), each its own command. Each statement's response ends with
 *     SERVER_MORE_RESULTS_EXISTS when another follows; a `CALL` sends one result set per SELECT
 *     it runs and ends with an OK, so it owns every result up to that OK. An ERR ends the query:
 *     the statements after it are `skipped`.
 *   - LOCAL INFILE: the server answers 0xFB + file name; the client then streams the file and an
 *     empty packet, and the server's OK/ERR ends the command. `sink.localInfileRequested` tells
 *     the listener (which refuses by default); the file's bytes are counted.
 *   - COM_STMT_EXECUTE with a cursor flag: the server sends only the column definitions and a
 *     terminator with SERVER_STATUS_CURSOR_EXISTS (`cursorOpened`); COM_STMT_FETCH then returns
 *     the rows in batches, each ending with a terminator whose SERVER_STATUS_LAST_ROW_SENT says
 *     the cursor is exhausted (`lastRowSent`). Under CLIENT_DEPRECATE_EOF both terminators are
 *     OK packets with the 0xFE header; without it, EOF packets.
 *   - COM_STMT_BULK_EXECUTE (MariaDB's array binding) is an `execute` of the prepared text with
 *     every row's values (`bulkRows`), answered by one OK whose affected rows cover all rows.
 *   - COM_STMT_PREPARE's reply gives the statement id and parameter count, remembered for
 *     COM_STMT_EXECUTE (parameter types are remembered from the previous execute when the client
 *     does not resend them). COM_STMT_SEND_LONG_DATA and COM_STMT_CLOSE get no reply: they
 *     complete at once. COM_QUIT too.
 *   - `sink.screen` sees each command before it starts and may refuse it (COM_CHANGE_USER): the
 *     observer then completes it as `refused`, expects no reply, and `client()` returns the ERR
 *     to send instead of relaying the packet.
 *
 * Pure: no timers (time comes from `now()`, µs since the epoch), no I/O. Errors are
 * `MysqlProtocolError`s; after one the observer is broken and rethrows it.
 */
import type { CaptureBudget, ObservedParam } from "./binary-values.js";
import { decodeText, utf8Boundary } from "./binary-values.js";
import type { LongData, ParamType } from "./commands.js";
import {
  decodeChangeUser,
  decodeFieldList,
  decodeInitDb,
  decodeProcessKill,
  decodeQueryText,
  decodeSetOption,
  decodeStatementId,
  decodeStmtBulkExecute,
  decodeStmtExecute,
  decodeStmtFetch,
  decodeStmtSendLongData,
} from "./commands.js";
import { Capability, Command, ServerStatus, commandName, hasCapability } from "./constants.js";
import type { ServerErrorFields } from "./errors.js";
import { MysqlProtocolError, violation } from "./errors.js";
import { PacketReader } from "./framing.js";
import { decodeErrPacket } from "./packets.js";
import type { ResponseEvent } from "./results.js";
import { Expect, ResponseReader } from "./results.js";
import { leadingKeyword, splitStatements } from "./sql-split.js";

export type { ObservedParam };

/** Event kinds, in the vocabulary of docs/architecture.md (`query`, `execute` as for Postgres). */
export type MysqlCommandKind =
  | "query"
  | "prepare"
  | "execute"
  | "fetch"
  | "send_long_data"
  | "close_statement"
  | "reset_statement"
  | "init_db"
  | "ping"
  | "field_list"
  | "reset_connection"
  | "change_user"
  | "kill"
  | "quit"
  | "statistics"
  | "set_option"
  | "other";

/** One command as seen when it starts. The same object is passed to `commandCompleted`. */
export interface ObservedCommand {
  /** 1, 2, 3… per observer (per session). */
  readonly id: number;
  readonly kind: MysqlCommandKind;
  /** The spec name of the command byte, e.g. "COM_QUERY". */
  readonly command: string;
  /** SQL text (query/prepare, the prepared text for execute); the schema (init_db), table (field_list). */
  readonly text: string;
  /** The text was cut at `maxQueryBytes`, or is unknown (empty) because its prepare was not seen. */
  readonly textTruncated: boolean;
  /** When the client's packet was seen (µs since epoch). */
  readonly startedAt: number;
  /** A COM_QUERY with several statements: this one's 0-based position and the count. */
  readonly statementIndex?: number;
  readonly statementCount?: number;
  /** execute/fetch/send_long_data/close_statement/reset_statement. */
  readonly statementId?: number;
  /** execute: bound values, capped (see `ObservedParam`); absent when the statement's prepare was not seen. A bulk execute: every row's values, row after row. */
  readonly params?: readonly ObservedParam[];
  readonly paramCount?: number;
  readonly paramsTruncated?: boolean;
  /** A bulk execute (COM_STMT_BULK_EXECUTE): the parameter sets sent; absent when they could not be counted. */
  readonly bulkRows?: number;
  /** send_long_data: which parameter, and how many bytes this packet carried. */
  readonly paramId?: number;
  readonly bytes?: number;
  /** kill (COM_PROCESS_KILL): the connection id. */
  readonly connectionId?: number;
  /** change_user: the user asked for. */
  readonly user?: string;
}

export interface ObservedError {
  readonly errno: number;
  readonly sqlState: string;
  readonly message: string;
}

export type CommandStatus =
  /** OK, a result set, EOF, or no reply expected. */
  | "ok"
  /** ERR_Packet. */
  | "error"
  /** Never ran: an earlier statement of the same COM_QUERY failed. */
  | "skipped"
  /** `sink.screen` refused it: never relayed; `error` is what the client was told. */
  | "refused"
  /** The session ended (`end()`) before the outcome was seen. */
  | "interrupted";

export interface CommandOutcome {
  readonly status: CommandStatus;
  readonly completedAt: number;
  /** From its packet (or the previous command's end when pipelined) to the end of its response. */
  readonly durationUs: number;
  /** Rows returned, over all its result sets. */
  readonly rows?: number;
  /** Result sets returned (a CALL may return several). */
  readonly resultSets?: number;
  readonly affectedRows?: number;
  readonly lastInsertId?: number;
  readonly warnings?: number;
  /** Server status flags after the command, and SERVER_STATUS_IN_TRANS from them. */
  readonly statusFlags?: number;
  readonly inTransaction?: boolean;
  readonly error?: ObservedError;
  /** prepare: what the server assigned. */
  readonly statementId?: number;
  readonly paramCount?: number;
  readonly columnCount?: number;
  /** execute: the server opened a cursor (the rows come with COM_STMT_FETCH, not in this response). */
  readonly cursorOpened?: boolean;
  /** fetch: SERVER_STATUS_LAST_ROW_SENT, the cursor has no rows left. */
  readonly lastRowSent?: boolean;
  /** LOCAL INFILE: the file the server asked for and the bytes the client sent. */
  readonly localInfile?: { readonly fileName: string; readonly bytes: number };
}

export interface MysqlObserverSink {
  commandStarted(command: ObservedCommand): void;
  commandCompleted(command: ObservedCommand, outcome: CommandOutcome): void;
  /**
   * Before a command starts: return an ERR to refuse it (it is then recorded as `refused` and
   * must not be relayed). `commands` are the statements of one client packet.
   */
  screen?(commands: readonly ObservedCommand[]): ServerErrorFields | undefined;
  /** The server asked the client for a local file (LOAD DATA LOCAL INFILE). */
  localInfileRequested?(command: ObservedCommand, fileName: string): void;
  /** An ERR no command owns (e.g. the connection was killed while idle). */
  serverError?(error: ObservedError, at: number): void;
  /** The client sent COM_QUIT. */
  terminated?(at: number): void;
}

/** What to do instead of relaying a refused command. */
export interface ClientRefusal {
  readonly command: ObservedCommand;
  readonly error: ServerErrorFields;
  /** The sequence id of the ERR packet to send the client. */
  readonly sequenceId: number;
  /** Client bytes after the refused packet, not yet observed: feed them to `client()` again. */
  readonly rest: Uint8Array[];
}

export interface MysqlObserverOptions {
  /** Current time in µs since the epoch. */
  readonly now: () => number;
  /** The capabilities client and server agreed on (CLIENT_DEPRECATE_EOF, CLIENT_MULTI_STATEMENTS…). */
  readonly capabilities: number;
  /** Bytes kept per parameter value. Default 4096. */
  readonly maxParamBytes?: number;
  /** Bytes of parameter values kept per command; later values are counted only. Default 65536. */
  readonly maxCommandParamBytes?: number;
  /** Bytes of SQL text kept per command (and per prepared statement). Default 1 MiB. */
  readonly maxQueryBytes?: number;
  /** Prepared statements remembered per session (oldest evicted). Default 1000. */
  readonly maxPreparedStatements?: number;
  /** Statements of one COM_QUERY recorded separately; the rest becomes one last command. Default 10000. */
  readonly maxStatementsPerQuery?: number;
  /** Commands awaiting a response. Default 1000. */
  readonly maxPending?: number;
  /** Largest logical packet accepted, either direction. Default 1 GiB (framing's default). */
  readonly maxPacketSize?: number;
}

const DEFAULTS = {
  maxParamBytes: 4096,
  maxCommandParamBytes: 65536,
  maxQueryBytes: 1 << 20,
  maxPreparedStatements: 1000,
  maxStatementsPerQuery: 10_000,
  maxPending: 1000,
} as const;

interface PreparedStatement {
  readonly text: string;
  readonly truncated: boolean;
  readonly paramCount: number;
  types: readonly ParamType[] | undefined;
  readonly longData: Map<number, LongData>;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** Mutable progress of one command between start and completion. */
class Running {
  rows = 0;
  resultSets = 0;
  done = false;
  constructor(
    readonly command: ObservedCommand,
    readonly keyword: string,
  ) {}
}

interface Pending {
  readonly runs: Running[];
  index: number;
  readonly reader: ResponseReader;
  /** prepare: the text to remember under the id the reply assigns. */
  readonly prepareText?: { text: string; truncated: boolean };
  localInfile?: { fileName: string; bytes: number; streaming: boolean };
}

export class MysqlObserver {
  private readonly settings: { -readonly [K in keyof typeof DEFAULTS]: number };
  private readonly clientReader: PacketReader;
  private readonly serverReader: PacketReader;
  private readonly queue: Pending[] = [];
  private readonly statements = new Map<number, PreparedStatement>();
  private readonly queryAttributes: boolean;
  private multiStatements: boolean;
  private backslashEscapes = true;
  private lastCompletedAt = -Infinity;
  private nextId = 1;
  private failure: unknown;
  private ended = false;

  constructor(
    private readonly sink: MysqlObserverSink,
    private readonly options: MysqlObserverOptions,
  ) {
    this.settings = { ...DEFAULTS };
    for (const key of Object.keys(DEFAULTS) as (keyof typeof DEFAULTS)[]) {
      const value = options[key];
      if (value !== undefined) this.settings[key] = value;
    }
    const framing = options.maxPacketSize === undefined ? {} : { maxPacketSize: options.maxPacketSize };
    this.clientReader = new PacketReader(framing);
    this.serverReader = new PacketReader(framing);
    this.queryAttributes = hasCapability(options.capabilities, Capability.CLIENT_QUERY_ATTRIBUTES);
    this.multiStatements = hasCapability(options.capabilities, Capability.CLIENT_MULTI_STATEMENTS);
  }

  /** Bytes from the client. Returns a refusal when `sink.screen` refused a command (see `ClientRefusal`). */
  client(chunk: Uint8Array): ClientRefusal | undefined {
    let refusal: ClientRefusal | undefined;
    this.guard(() => {
      this.clientReader.push(chunk);
      for (let packet = this.clientReader.read(); packet !== undefined; packet = this.clientReader.read()) {
        refusal = this.onClientPacket(packet.payload, packet.sequenceId, packet.lastSequenceId);
        if (refusal !== undefined) {
          refusal = { ...refusal, rest: this.clientReader.takeBuffered() };
          return;
        }
      }
    });
    return refusal;
  }

  /** Bytes from the server. */
  server(chunk: Uint8Array): void {
    this.guard(() => {
      this.serverReader.push(chunk);
      for (let packet = this.serverReader.read(); packet !== undefined; packet = this.serverReader.read()) {
        this.onServerPacket(packet.payload);
      }
    });
  }

  /** The session ended: every running command completes as `interrupted`. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    const at = this.options.now();
    for (const entry of this.queue) for (const run of entry.runs) this.complete(run, { status: "interrupted" }, at);
    this.queue.length = 0;
  }

  /** Every server byte belongs to a packet already observed (a safe point to inject or cut). */
  get serverAtPacketBoundary(): boolean {
    return this.serverReader.atPacketBoundary;
  }

  get clientAtPacketBoundary(): boolean {
    return this.clientReader.atPacketBoundary;
  }

  /** Commands awaiting their response. */
  get pendingCount(): number {
    return this.queue.length;
  }

  private guard(work: () => void): void {
    if (this.failure !== undefined) throw this.failure;
    // The session is over (one side closed): whatever the other side still sends is not recorded.
    if (this.ended) return;
    try {
      work();
    } catch (error) {
      // Our own parsing only throws MysqlProtocolError; anything else came from the sink and keeps
      // its identity. Either way the state is no longer trustworthy.
      this.failure = error;
      throw error;
    }
  }

  private cappedText(bytes: Uint8Array): { text: string; truncated: boolean } {
    const end = utf8Boundary(bytes, this.settings.maxQueryBytes);
    return { text: decodeText(bytes.subarray(0, end)), truncated: end < bytes.byteLength };
  }

  private newCommand(fields: Omit<ObservedCommand, "id" | "startedAt" | "textTruncated"> & { textTruncated?: boolean }, at: number): ObservedCommand {
    return { id: this.nextId++, startedAt: at, textTruncated: false, ...fields };
  }

  private onClientPacket(payload: Uint8Array, sequenceId: number, lastSequenceId: number): ClientRefusal | undefined {
    const head = this.queue[0];
    if (head?.localInfile?.streaming === true) {
      if (payload.byteLength === 0) {
        head.localInfile.streaming = false;
        head.reader.afterLocalInfile();
      } else head.localInfile.bytes += payload.byteLength;
      return undefined;
    }
    if (head !== undefined && head.runs[0]!.command.kind === "change_user") return undefined; // its authentication exchange
    if (sequenceId !== 0) {
      throw new MysqlProtocolError("PACKETS_OUT_OF_ORDER", `command packet with sequence id ${sequenceId}`, { context: { sequenceId } });
    }
    if (payload.byteLength === 0) throw violation("empty command packet");
    const at = this.options.now();
    const byte = payload[0]!;
    const name = commandName(byte);
    let runs: Running[];
    let expect: Expect | undefined = Expect.OkOrErr;
    let prepareText: { text: string; truncated: boolean } | undefined;
    const single = (kind: MysqlCommandKind, extra: Partial<ObservedCommand> = {}, text = ""): Running[] => [
      new Running(this.newCommand({ kind, command: name, text, ...extra }, at), ""),
    ];
    switch (byte) {
      case Command.COM_QUERY: {
        const { text, truncated } = this.cappedText(decodeQueryText(payload, this.queryAttributes));
        const pieces = this.multiStatements && !truncated
          ? splitStatements(text, { backslashEscapes: this.backslashEscapes, max: this.settings.maxStatementsPerQuery })
          : [text];
        runs = pieces.map((piece, index) => {
          const keyword = leadingKeyword(piece);
          const position = pieces.length > 1 ? { statementIndex: index, statementCount: pieces.length } : {};
          const command = this.newCommand({ kind: keyword === "KILL" ? "kill" : "query", command: name, text: piece, textTruncated: truncated, ...position }, at);
          return new Running(command, keyword);
        });
        expect = Expect.Query;
        break;
      }
      case Command.COM_STMT_PREPARE:
        prepareText = this.cappedText(payload.subarray(1));
        runs = single("prepare", { textTruncated: prepareText.truncated }, prepareText.text);
        expect = Expect.Prepare;
        break;
      case Command.COM_STMT_EXECUTE:
        runs = [this.onExecute(payload, name, at)];
        expect = Expect.Query;
        break;
      case Command.COM_STMT_BULK_EXECUTE:
        runs = [this.onBulkExecute(payload, name, at)];
        expect = Expect.Query;
        break;
      case Command.COM_STMT_FETCH: {
        const { statementId } = decodeStmtFetch(payload);
        runs = single("fetch", { statementId }, this.statements.get(statementId)?.text ?? "");
        expect = Expect.Rows;
        break;
      }
      case Command.COM_STMT_SEND_LONG_DATA: {
        const { statementId, paramId, data } = decodeStmtSendLongData(payload);
        this.keepLongData(statementId, paramId, data);
        runs = single("send_long_data", { statementId, paramId, bytes: data.byteLength }, this.statements.get(statementId)?.text ?? "");
        expect = undefined;
        break;
      }
      case Command.COM_STMT_CLOSE: {
        const statementId = decodeStatementId(payload);
        runs = single("close_statement", { statementId }, this.statements.get(statementId)?.text ?? "");
        this.statements.delete(statementId);
        expect = undefined;
        break;
      }
      case Command.COM_STMT_RESET: {
        const statementId = decodeStatementId(payload);
        this.statements.get(statementId)?.longData.clear();
        runs = single("reset_statement", { statementId }, this.statements.get(statementId)?.text ?? "");
        break;
      }
      case Command.COM_INIT_DB:
        runs = single("init_db", {}, decodeInitDb(payload));
        break;
      case Command.COM_PING:
        runs = single("ping");
        break;
      case Command.COM_FIELD_LIST:
        runs = single("field_list", {}, decodeFieldList(payload).table);
        expect = Expect.Fields;
        break;
      case Command.COM_RESET_CONNECTION:
        runs = single("reset_connection");
        break;
      case Command.COM_PROCESS_KILL: {
        const connectionId = decodeProcessKill(payload);
        runs = single("kill", { connectionId }, `KILL ${connectionId}`);
        break;
      }
      case Command.COM_CHANGE_USER:
        runs = single("change_user", { user: decodeChangeUser(payload) });
        expect = Expect.Auth;
        break;
      case Command.COM_QUIT:
        runs = single("quit");
        expect = undefined;
        break;
      case Command.COM_STATISTICS:
        runs = single("statistics");
        expect = Expect.Text;
        break;
      case Command.COM_SET_OPTION: {
        const option = decodeSetOption(payload);
        // MYSQL_OPTION_MULTI_STATEMENTS_ON (0) / _OFF (1): the server splits queries from now on, or stops.
        if (option === 0) this.multiStatements = true;
        else if (option === 1) this.multiStatements = false;
        runs = single("set_option", {}, String(option));
        expect = Expect.EofOrErr;
        break;
      }
      case Command.COM_DEBUG:
        runs = single("other");
        expect = Expect.EofOrErr;
        break;
      default:
        // COM_REFRESH, COM_SHUTDOWN, COM_PROCESS_INFO (a result set)… and unknown bytes: the server
        // answers OK/ERR or a result set; the query reader accepts all three.
        runs = single("other");
        expect = Expect.Query;
    }

    const commands = runs.map((run) => run.command);
    const refused = this.sink.screen?.(commands);
    for (const command of commands) this.sink.commandStarted(command);
    if (refused !== undefined) {
      for (const run of runs) this.complete(run, { status: "refused", error: refused }, at);
      return { command: commands[0]!, error: refused, sequenceId: (lastSequenceId + 1) & 0xff, rest: [] };
    }
    if (expect === undefined) {
      for (const run of runs) this.complete(run, { status: "ok" }, at);
      if (byte === Command.COM_QUIT) this.sink.terminated?.(at);
      return undefined;
    }
    if (this.queue.length >= this.settings.maxPending) {
      throw new MysqlProtocolError("INVALID_STATE", "too many commands awaiting a response", { context: { max: this.settings.maxPending } });
    }
    this.queue.push({ runs, index: 0, reader: new ResponseReader(expect, this.options.capabilities), ...(prepareText === undefined ? {} : { prepareText }) });
    return undefined;
  }

  /** COM_STMT_EXECUTE: the prepared text with this execution's values (streamed long data included). */
  private onExecute(payload: Uint8Array, name: string, at: number): Running {
    return this.executeOf(payload, name, at, (statement, budget) => {
      const decoded = decodeStmtExecute(payload, statement.paramCount, statement.types, statement.longData, budget);
      statement.longData.clear();
      return { decoded };
    });
  }

  /** COM_STMT_BULK_EXECUTE: the prepared text with every row's values, and how many rows. */
  private onBulkExecute(payload: Uint8Array, name: string, at: number): Running {
    return this.executeOf(payload, name, at, (statement, budget) => {
      const decoded = decodeStmtBulkExecute(payload, statement.paramCount, statement.types, budget);
      return { decoded, ...(decoded.rows === undefined ? {} : { bulkRows: decoded.rows }) };
    });
  }

  /** An execute of a prepared statement: unknown text and values when its prepare was not seen, else what `decode` reads. */
  private executeOf(
    payload: Uint8Array,
    name: string,
    at: number,
    decode: (
      statement: PreparedStatement,
      budget: CaptureBudget,
    ) => { decoded: { types: readonly ParamType[] | undefined; params: readonly ObservedParam[]; paramsTruncated: boolean }; bulkRows?: number },
  ): Running {
    const statementId = decodeStatementId(payload);
    const statement = this.statements.get(statementId);
    if (statement === undefined) {
      // Prepared before the observer saw it (or evicted): the values cannot be decoded without the count.
      return new Running(this.newCommand({ kind: "execute", command: name, text: "", textTruncated: true, statementId }, at), "");
    }
    const budget: CaptureBudget = { maxParamBytes: this.settings.maxParamBytes, remaining: this.settings.maxCommandParamBytes, exhausted: false };
    const { decoded, bulkRows } = decode(statement, budget);
    statement.types = decoded.types;
    const command = this.newCommand(
      {
        kind: "execute",
        command: name,
        text: statement.text,
        textTruncated: statement.truncated,
        statementId,
        params: decoded.params,
        paramCount: statement.paramCount,
        paramsTruncated: decoded.paramsTruncated,
        ...(bulkRows === undefined ? {} : { bulkRows }),
      },
      at,
    );
    return new Running(command, leadingKeyword(statement.text));
  }

  private keepLongData(statementId: number, paramId: number, data: Uint8Array): void {
    const statement = this.statements.get(statementId);
    if (statement === undefined) return;
    let entry = statement.longData.get(paramId);
    if (entry === undefined) {
      entry = { kept: new Uint8Array(0), total: 0 };
      statement.longData.set(paramId, entry);
    }
    entry.total += data.byteLength;
    const room = this.settings.maxParamBytes - entry.kept.byteLength;
    if (room > 0) {
      const joined = new Uint8Array(entry.kept.byteLength + Math.min(room, data.byteLength));
      joined.set(entry.kept);
      joined.set(data.subarray(0, room), entry.kept.byteLength);
      entry.kept = joined;
    }
  }

  private onServerPacket(payload: Uint8Array): void {
    const head = this.queue[0];
    if (head === undefined) {
      if (payload[0] === 0xff) {
        this.sink.serverError?.(toObservedError(decodeErrPacket(payload)), this.options.now());
        return;
      }
      throw violation("server packet without a command", { header: payload[0] });
    }
    const event = head.reader.push(payload);
    // Rows and column definitions end nothing: the clock is read only when something completes.
    if (event === undefined && !head.reader.done) return;
    const at = this.options.now();
    if (event !== undefined) this.onResponseEvent(head, event, at);
    if (head.reader.done) {
      // Statements the server never reached (the response ended early) did not run.
      for (const run of head.runs) if (!run.done) this.complete(run, { status: "skipped" }, at);
      this.queue.shift();
    }
  }

  private onResponseEvent(entry: Pending, event: ResponseEvent, at: number): void {
    const run = entry.runs[entry.index]!;
    switch (event.t) {
      case "ok": {
        const { ok } = event;
        this.noteStatus(ok.statusFlags);
        this.complete(
          run,
          {
            status: "ok",
            affectedRows: ok.affectedRows,
            lastInsertId: ok.lastInsertId,
            warnings: ok.warnings,
            statusFlags: ok.statusFlags,
            inTransaction: (ok.statusFlags & ServerStatus.SERVER_STATUS_IN_TRANS) !== 0,
            ...(run.resultSets > 0 ? { rows: run.rows, resultSets: run.resultSets } : {}),
            ...(entry.localInfile === undefined ? {} : { localInfile: { fileName: entry.localInfile.fileName, bytes: entry.localInfile.bytes } }),
          },
          at,
        );
        this.advance(entry);
        return;
      }
      case "result_set": {
        run.rows += event.rows;
        run.resultSets++;
        this.noteStatus(event.status);
        // A CALL's result sets are followed by its own OK; any other statement has one result.
        if (run.keyword === "CALL" && event.more) return;
        const kind = run.command.kind;
        this.complete(
          run,
          {
            status: "ok",
            rows: run.rows,
            resultSets: run.resultSets,
            warnings: event.warnings,
            statusFlags: event.status,
            inTransaction: (event.status & ServerStatus.SERVER_STATUS_IN_TRANS) !== 0,
            ...(kind === "execute" && (event.status & ServerStatus.SERVER_STATUS_CURSOR_EXISTS) !== 0 ? { cursorOpened: true } : {}),
            ...(kind === "fetch" ? { lastRowSent: (event.status & ServerStatus.SERVER_STATUS_LAST_ROW_SENT) !== 0 } : {}),
          },
          at,
        );
        this.advance(entry);
        return;
      }
      case "error":
        this.complete(run, { status: "error", error: toObservedError(event.error) }, at);
        return;
      case "local_infile":
        entry.localInfile = { fileName: event.fileName, bytes: 0, streaming: true };
        this.sink.localInfileRequested?.(run.command, event.fileName);
        return;
      case "prepared": {
        const text = entry.prepareText ?? { text: "", truncated: true };
        this.remember(event.statementId, { ...text, paramCount: event.params, types: undefined, longData: new Map() });
        this.complete(run, { status: "ok", statementId: event.statementId, paramCount: event.params, columnCount: event.columns, warnings: event.warnings }, at);
        return;
      }
      case "text":
        this.complete(run, { status: "ok" }, at);
        return;
    }
  }

  /** The next statement of a multi-statement query takes the next result; extra results stay with the last. */
  private advance(entry: Pending): void {
    if (entry.index < entry.runs.length - 1) entry.index++;
  }

  private noteStatus(status: number): void {
    this.backslashEscapes = (status & ServerStatus.SERVER_STATUS_NO_BACKSLASH_ESCAPES) === 0;
  }

  private remember(id: number, statement: PreparedStatement): void {
    this.statements.delete(id);
    this.statements.set(id, statement);
    if (this.statements.size > this.settings.maxPreparedStatements) {
      const oldest = this.statements.keys().next().value;
      if (oldest !== undefined) this.statements.delete(oldest);
    }
  }

  private complete(run: Running, outcome: Omit<Mutable<CommandOutcome>, "completedAt" | "durationUs">, at: number): void {
    if (run.done) {
      // An extra result after a statement completed (a lexical split that differs from the server's): keep the first outcome.
      return;
    }
    run.done = true;
    const start = Math.max(run.command.startedAt, this.lastCompletedAt);
    this.lastCompletedAt = at;
    this.sink.commandCompleted(run.command, { ...outcome, completedAt: at, durationUs: Math.max(0, at - start) });
  }
}

function toObservedError(error: ServerErrorFields): ObservedError {
  return { errno: error.errno, sqlState: error.sqlState, message: error.message };
}

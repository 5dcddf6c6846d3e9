/**
 * The observer: fed the relayed bytes of both directions of a session (after startup), it
 * produces one audit event pair per command — `commandStarted` when the frontend message that
 * runs it is seen, `commandCompleted` with its outcome — without ever holding a result:
 * DataRows are counted, CopyData is counted in bytes, large messages are skipped through.
 *
 * How frontend messages and backend responses pair up
 * (https://www.postgresql.org/docs/current/protocol-flow.html):
 *
 *   - Every frontend message that gets a response is queued in order: Query, Parse, Bind,
 *     Describe, Execute, Close, Sync, FunctionCall (Flush gets none). Backend responses consume
 *     the head: ParseComplete/BindComplete/CloseComplete/NoData/RowDescription end P/B/C/D,
 *     CommandComplete/EmptyQueryResponse/PortalSuspended end an Execute, FunctionCallResponse a
 *     FunctionCall; DataRow and CopyData count towards the head command.
 *   - A simple Query may hold several statements: they are split lexically (sql-split.ts), each
 *     is its own command, and the server's CommandComplete/ErrorResponse sequence ends them in
 *     turn. An error ends the Query: the statements after it are `skipped`.
 *   - An error in the extended protocol makes the server discard messages until Sync: the
 *     first Execute of that batch gets the error, the others are `skipped`.
 *   - ReadyForQuery resynchronises: it pops everything up to the Sync/Query/FunctionCall it
 *     answers, and carries the transaction status. Completions are held until then, so each
 *     `commandCompleted` includes the transaction status after it.
 *   - COPY: CopyInResponse/CopyOutResponse/CopyBothResponse mark the head command as a copy;
 *     CopyData bytes of either direction are counted; the server ignores Sync/Flush during
 *     COPY IN (libpq sends one after an extended-protocol COPY), and so does the observer.
 *   - NoticeResponse attaches to the running command (or goes to `sink.notice`),
 *     NotificationResponse (LISTEN/NOTIFY) and ParameterStatus can arrive any time and go to
 *     the sink directly.
 *
 * Pure: no timers (time comes from `now()`, µs since the epoch), no I/O. Errors are
 * `PostgresProtocolError`s; after one the observer is broken and rethrows it.
 */
import type { TransactionStatus } from "./backend-messages.js";
import { decodeCommandComplete, decodeErrorFields, decodeNotificationResponse, decodeParameterStatus, decodeReadyForQuery } from "./backend-messages.js";
import { ByteCursor, decodeUtf8, utf8Boundary } from "./bytes.js";
import { PostgresProtocolError, violation } from "./errors.js";
import type { Frame, MessageFrame } from "./framing.js";
import { DEFAULT_BACKEND_LIMITS, DEFAULT_FRONTEND_LIMITS, MessageReader } from "./framing.js";
import { decodeClose, decodeCopyFail, decodeDescribe, decodeExecute, decodeFlush, decodeSync, decodeTerminate } from "./frontend-messages.js";
import { BackendCode, FrontendCode } from "./message-codes.js";
import type { ObservedParam } from "./param-capture.js";
import { ParamCapture } from "./param-capture.js";
import { leadingKeyword, skipIgnorable, splitStatements } from "./sql-split.js";

export type { ObservedParam };

export type CommandKind = "query" | "execute" | "copy" | "function_call";

/** One command as seen when it starts. The same object is passed to `commandCompleted`. */
export interface ObservedCommand {
  /** 1, 2, 3… per observer (per session). */
  readonly id: number;
  readonly kind: CommandKind;
  /** The SQL text: the statement of a Query, or the prepared statement's text for an Execute. */
  readonly text: string;
  /** The text was cut at `maxQueryBytes`, or is unknown (empty) because the statement was not seen or was evicted. */
  readonly textTruncated: boolean;
  /** When the frontend message was seen (µs since epoch). */
  readonly startedAt: number;
  /** Execute: prepared statement name ("" = unnamed). */
  readonly statement?: string;
  /** Execute: portal name ("" = unnamed). */
  readonly portal?: string;
  /** Execute: the Execute's row limit (0 = all rows). */
  readonly maxRows?: number;
  /** Execute/FunctionCall: bound values, capped (see `ObservedParam`). */
  readonly params?: readonly ObservedParam[];
  /** Execute/FunctionCall: how many values were bound. */
  readonly paramCount?: number;
  /** Some values were not recorded (the per-command budget `maxCommandParamBytes` ran out). */
  readonly paramsTruncated?: boolean;
  /** FunctionCall: the function's OID. */
  readonly functionOid?: number;
  /** A Query with several statements: this one's 0-based position and the count. */
  readonly statementIndex?: number;
  readonly statementCount?: number;
}

export interface ObservedError {
  readonly severity: string;
  /** SQLSTATE */
  readonly code: string;
  readonly message: string;
  readonly detail?: string;
  readonly hint?: string;
  readonly position?: string;
}

export interface ObservedNotice {
  readonly severity: string;
  readonly code: string;
  readonly message: string;
}

export type CommandStatus =
  /** CommandComplete, EmptyQueryResponse, PortalSuspended or FunctionCallResponse. */
  | "ok"
  /** ErrorResponse (including a failed commit at Sync after the command's CommandComplete). */
  | "error"
  /** Never ran: an earlier error in the same Query or extended-protocol batch. */
  | "skipped"
  /** The session ended (`end()`) before the outcome was seen. */
  | "interrupted";

export interface CommandOutcome {
  readonly status: CommandStatus;
  readonly completedAt: number;
  /**
   * From when the server could start it to its end: from its frontend message, or from the end
   * of the command before it when it was pipelined (the next statement of a Query, the next
   * Execute before Sync).
   */
  readonly durationUs: number;
  /** CommandComplete tag, e.g. "SELECT 5", "INSERT 0 1", "COPY 3". */
  readonly tag?: string;
  /** Rows: from the tag (SELECT/INSERT/UPDATE/DELETE/MERGE/FETCH/MOVE/COPY n), else DataRows counted. */
  readonly rows?: number;
  readonly error?: ObservedError;
  /** From the ReadyForQuery that followed (absent when the session ended first). */
  readonly transactionStatus?: TransactionStatus;
  /** PortalSuspended: Execute's row limit was reached; the portal can be executed again. */
  readonly suspended?: boolean;
  /** EmptyQueryResponse. */
  readonly emptyQuery?: boolean;
  readonly copy?: { readonly direction: "in" | "out" | "both"; readonly bytes: number };
  readonly notices?: readonly ObservedNotice[];
}

export interface ObservedNotification {
  readonly at: number;
  readonly processId: number;
  readonly channel: string;
  readonly payload: string;
}

export interface ObserverSink {
  commandStarted(command: ObservedCommand): void;
  commandCompleted(command: ObservedCommand, outcome: CommandOutcome): void;
  /** LISTEN/NOTIFY: a notification delivered to the client. */
  notification?(notification: ObservedNotification): void;
  /** A NoticeResponse outside any command. */
  notice?(notice: ObservedNotice, at: number): void;
  /** An ErrorResponse no command can own (e.g. FATAL 57P01 while idle). */
  serverError?(error: ObservedError, at: number): void;
  /** ParameterStatus after startup (SET application_name, TimeZone…). */
  parameterStatus?(name: string, value: string, at: number): void;
  /** The client sent Terminate. */
  terminated?(at: number): void;
}

export interface ObserverOptions {
  /** Current time in µs since the epoch. */
  readonly now: () => number;
  /** Bytes kept per bound parameter value. Default 4096. */
  readonly maxParamBytes?: number;
  /** Bytes of parameter values kept per command; later values are counted only. Default 65536. */
  readonly maxCommandParamBytes?: number;
  /** Bytes of SQL text kept per command (and per cached prepared statement). Default 1 MiB. */
  readonly maxQueryBytes?: number;
  /** Prepared statement texts remembered per session (oldest evicted). Default 1000. */
  readonly maxPreparedStatements?: number;
  /** Total bytes of remembered prepared statement texts. Default 16 MiB. */
  readonly maxStatementCacheBytes?: number;
  /** Portals remembered per session (oldest evicted). Default 1000. */
  readonly maxPortals?: number;
  /** Frontend messages awaiting a response, and completions awaiting ReadyForQuery. Default 100000. */
  readonly maxPending?: number;
  /** Notices attached to one command. Default 10. */
  readonly maxNoticesPerCommand?: number;
  /**
   * Statements of one Query recorded as separate commands; the rest of the text becomes one
   * last command (it completes with the first of their results). Default 10000.
   */
  readonly maxStatementsPerQuery?: number;
  /** Bytes kept of an ErrorResponse, NoticeResponse or NotificationResponse. Default 16384. */
  readonly maxErrorBytes?: number;
  /** Bind/FunctionCall messages above this are parsed as they stream in. Default 262144. */
  readonly streamThreshold?: number;
  /** The session's standard_conforming_strings at the start (later changes are tracked). Default true. */
  readonly standardConformingStrings?: boolean;
}

const DEFAULTS = {
  maxParamBytes: 4096,
  maxCommandParamBytes: 65536,
  maxQueryBytes: 1 << 20,
  maxPreparedStatements: 1000,
  maxStatementCacheBytes: 16 << 20,
  maxPortals: 1000,
  maxPending: 100_000,
  maxNoticesPerCommand: 10,
  maxStatementsPerQuery: 10_000,
  maxErrorBytes: 16384,
  streamThreshold: 256 * 1024,
  standardConformingStrings: true,
} as const;

type Settings = { -readonly [K in keyof typeof DEFAULTS]: (typeof DEFAULTS)[K] extends boolean ? boolean : number };

/** Names are identifiers (NAMEDATALEN 64); keep a little more, never unbounded. */
const MAX_NAME_BYTES = 1024;

interface StatementEntry {
  readonly text: string;
  readonly truncated: boolean;
  readonly kind: CommandKind;
}

interface PortalEntry {
  readonly statement: string;
  readonly text: string;
  readonly truncated: boolean;
  readonly kind: CommandKind;
  readonly params: readonly ObservedParam[];
  readonly paramCount: number;
  readonly paramsTruncated: boolean;
}

/** Mutable progress of one command between start and completion. */
class Running {
  rows = 0;
  copyDirection: "in" | "out" | "both" | undefined;
  copyBytes = 0;
  notices: ObservedNotice[] | undefined;
  done = false;
  constructor(
    readonly command: ObservedCommand,
    /** When its frontend message was seen; the duration runs from this or the previous command's end, whichever is later. */
    readonly execStart: number,
  ) {}
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

interface Held {
  readonly run: Running;
  outcome: Mutable<CommandOutcome>;
}

type Pending =
  | { readonly t: "Q"; readonly runs: Running[]; index: number }
  | { readonly t: "P"; readonly name: string; readonly created: StatementEntry; readonly applied: boolean }
  | { readonly t: "B" }
  | { readonly t: "D" }
  | { readonly t: "C" }
  | { readonly t: "E"; readonly run: Running }
  | { readonly t: "S" }
  | { readonly t: "F"; readonly run: Running };

const ROW_COUNT_TAGS = new Set(["SELECT", "INSERT", "UPDATE", "DELETE", "MERGE", "FETCH", "MOVE", "COPY"]);

/** Rows from a command tag, e.g. "INSERT 0 5" → 5, "SELECT 3" → 3; undefined for tags without a count. */
export function rowsFromTag(tag: string): number | undefined {
  const space = tag.indexOf(" ");
  if (space < 0 || !ROW_COUNT_TAGS.has(tag.slice(0, space))) return undefined;
  const last = tag.slice(tag.lastIndexOf(" ") + 1);
  return /^\d+$/.test(last) ? Number(last) : undefined;
}

function toObservedError(fields: ReturnType<typeof decodeErrorFields>): ObservedError {
  return {
    severity: fields.severityNonLocalized ?? fields.severity,
    code: fields.code,
    message: fields.message,
    ...(fields.detail === undefined ? {} : { detail: fields.detail }),
    ...(fields.hint === undefined ? {} : { hint: fields.hint }),
    ...(fields.position === undefined ? {} : { position: fields.position }),
  };
}

export class PostgresObserver {
  private readonly settings: Settings;
  private readonly fe: MessageReader;
  private readonly be: MessageReader;
  private readonly queue: Pending[] = [];
  private head = 0;
  private held: Held[] = [];
  private readonly statements = new Map<string, StatementEntry>();
  private statementBytes = 0;
  private readonly portals = new Map<string, PortalEntry>();
  /** Statements and portals of messages the server discarded (see onDiscarded); cleared at Sync. */
  private readonly discardedStatements = new Map<string, StatementEntry>();
  private readonly discardedPortals = new Map<string, PortalEntry>();
  /** When the server last finished a command: a pipelined command cannot start before that. */
  private lastCompletedAt = -Infinity;
  private nextId = 1;
  /** An extended-protocol error happened: the server discards frontend messages until Sync. */
  private skipToSync = false;
  /** The command receiving frontend CopyData (COPY FROM STDIN / CopyBoth). */
  private copyIn: Running | undefined;
  /** The frontend is in COPY IN: the server ignores its Sync and Flush. */
  private frontendInCopy = false;
  /** Bind/FunctionCall being parsed as it streams in. */
  private streaming: ParamCapture | undefined;
  private failure: unknown;
  private ended = false;

  constructor(
    private readonly sink: ObserverSink,
    private readonly options: ObserverOptions,
  ) {
    this.settings = { ...DEFAULTS };
    for (const key of Object.keys(DEFAULTS) as (keyof Settings)[]) {
      const value = options[key];
      if (value !== undefined) (this.settings as Record<string, unknown>)[key] = value;
    }
    const s = this.settings;
    const queryKeep = s.maxQueryBytes + MAX_NAME_BYTES + 2;
    this.fe = new MessageReader({
      limits: DEFAULT_FRONTEND_LIMITS,
      policy: (code, length) => {
        switch (code) {
          case FrontendCode.CopyData:
            return 0;
          case FrontendCode.Query:
          case FrontendCode.Parse:
            return queryKeep;
          case FrontendCode.Bind:
          case FrontendCode.FunctionCall:
            return length > s.streamThreshold ? "stream" : "buffer";
          default:
            return "buffer";
        }
      },
    });
    this.be = new MessageReader({
      limits: DEFAULT_BACKEND_LIMITS,
      policy: (code) => {
        switch (code) {
          case BackendCode.CommandComplete:
          case BackendCode.ReadyForQuery:
          case BackendCode.ParameterStatus:
            return "buffer";
          case BackendCode.ErrorResponse:
          case BackendCode.NoticeResponse:
          case BackendCode.NotificationResponse:
            return s.maxErrorBytes;
          default:
            // DataRow, CopyData, RowDescription…: only the type and length matter.
            return 0;
        }
      },
    });
  }

  /** Bytes the client sent (after startup). */
  frontend(chunk: Uint8Array): void {
    this.guard(() => {
      this.fe.push(chunk);
      for (let frame = this.fe.read(); frame !== undefined; frame = this.fe.read()) this.onFrontend(frame);
    });
  }

  /** Bytes the server sent (after startup). */
  backend(chunk: Uint8Array): void {
    this.guard(() => {
      this.be.push(chunk);
      for (let frame = this.be.read(); frame !== undefined; frame = this.be.read()) {
        this.onBackend(frame as MessageFrame);
      }
    });
  }

  /**
   * The session is over: commands still waiting are completed as `interrupted`, held
   * completions are emitted without a transaction status. Bytes fed afterwards are ignored.
   * Idempotent.
   */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    const at = this.options.now();
    for (let i = this.head; i < this.queue.length; i++) {
      const entry = this.queue[i]!;
      if (entry.t === "Q") for (const run of entry.runs) this.finish(run, "interrupted", at, {});
      else if (entry.t === "E" || entry.t === "F") this.finish(run(entry), "interrupted", at, {});
    }
    this.queue.length = 0;
    this.head = 0;
    this.flushHeld(undefined);
  }

  /**
   * The server's bytes seen so far end on a message boundary, so the relay can still add a
   * message of its own for the client (a FATAL ErrorResponse when the connection to the server is lost).
   */
  get backendAtMessageBoundary(): boolean {
    return this.be.atMessageBoundary;
  }

  /** Number of frontend messages awaiting a response (for tests and metrics). */
  get pendingCount(): number {
    return this.queue.length - this.head;
  }

  private guard(work: () => void): void {
    if (this.failure !== undefined) throw this.failure;
    // The session is over (one side closed): whatever the other side still sends is not recorded.
    if (this.ended) return;
    try {
      work();
    } catch (error) {
      // Our own parsing only throws PostgresProtocolError; anything else came from the sink
      // and keeps its identity. Either way the state is no longer trustworthy.
      this.failure = error;
      throw error;
    }
  }

  // -------------------------------------------------------------------------------------------
  // Frontend

  private onFrontend(frame: Frame): void {
    if (frame.kind === "start") {
      this.streaming = new ParamCapture(frame.code === FrontendCode.Bind ? "bind" : "function", this.captureLimits());
      return;
    }
    if (frame.kind === "fragment") {
      const capture = this.streaming!;
      capture.feed(frame.bytes);
      if (frame.final) {
        this.streaming = undefined;
        capture.finish();
        if (frame.code === FrontendCode.Bind) this.onBind(capture);
        else this.onFunctionCall(capture);
      }
      return;
    }
    const { code, body } = frame;
    if (this.skipToSync && this.onDiscarded(frame)) return;
    switch (code) {
      case FrontendCode.Query:
        this.onQuery(frame);
        return;
      case FrontendCode.Parse:
        this.onParse(frame);
        return;
      case FrontendCode.Bind:
      case FrontendCode.FunctionCall: {
        const capture = new ParamCapture(code === FrontendCode.Bind ? "bind" : "function", this.captureLimits());
        capture.feed(body);
        capture.finish();
        if (code === FrontendCode.Bind) this.onBind(capture);
        else this.onFunctionCall(capture);
        return;
      }
      case FrontendCode.Execute:
        this.onExecute(decodeExecute(body));
        return;
      case FrontendCode.Describe:
        decodeDescribe(body);
        this.enqueue({ t: "D" });
        return;
      case FrontendCode.Close: {
        const close = decodeClose(body);
        if (close.target === "S") this.forgetStatement(close.name);
        else this.portals.delete(close.name);
        this.enqueue({ t: "C" });
        return;
      }
      case FrontendCode.Sync:
        decodeSync(body);
        if (this.frontendInCopy) return; // ignored by the server during COPY IN
        this.skipToSync = false;
        this.discardedStatements.clear();
        this.discardedPortals.clear();
        this.enqueue({ t: "S" });
        return;
      case FrontendCode.Flush:
        decodeFlush(body);
        return;
      case FrontendCode.CopyData:
        if (this.copyIn !== undefined) this.copyIn.copyBytes += frame.length;
        return;
      case FrontendCode.CopyDone:
        this.frontendInCopy = false;
        this.copyIn = undefined;
        return;
      case FrontendCode.CopyFail:
        decodeCopyFail(body);
        this.frontendInCopy = false;
        this.copyIn = undefined;
        return;
      case FrontendCode.Terminate:
        decodeTerminate(body);
        this.sink.terminated?.(this.options.now());
        return;
      default:
        throw violation(`unexpected frontend message '${code}'`);
    }
  }

  /**
   * After an extended-protocol error the server discards every message until Sync (Terminate
   * and the copy messages are handled as usual). Commands are still recorded — started and
   * `skipped` — with the text the client meant; their statements and portals go to a scratch
   * space that the next Sync clears, since the server never created them.
   */
  private onDiscarded(frame: MessageFrame): boolean {
    const { code, body } = frame;
    switch (code) {
      case FrontendCode.Query:
      case FrontendCode.Parse:
      case FrontendCode.Execute:
        break;
      case FrontendCode.Describe:
        decodeDescribe(body);
        return true;
      case FrontendCode.Close:
        decodeClose(body);
        return true;
      default:
        return false;
    }
    if (code === FrontendCode.Query) this.onQuery(frame);
    else if (code === FrontendCode.Parse) this.onParse(frame);
    else this.onExecute(decodeExecute(body));
    return true;
  }

  private captureLimits() {
    return {
      maxParamBytes: this.settings.maxParamBytes,
      maxTotalBytes: this.settings.maxCommandParamBytes,
      maxNameBytes: MAX_NAME_BYTES,
    };
  }

  /** Text of a Query/Parse body that may be a prefix: up to the NUL, capped at maxQueryBytes. */
  private cappedText(bytes: Uint8Array, complete: boolean): { text: string; truncated: boolean } {
    const nul = bytes.indexOf(0);
    if (complete && nul < 0) throw violation("unterminated query string");
    const end = nul < 0 ? bytes.byteLength : nul;
    const max = this.settings.maxQueryBytes;
    if (end <= max) return { text: decodeUtf8(bytes.subarray(0, end)), truncated: nul < 0 };
    return { text: decodeUtf8(bytes.subarray(0, utf8Boundary(bytes, max))), truncated: true };
  }

  private onQuery(frame: MessageFrame): void {
    const { text, truncated } = this.cappedText(frame.body, !frame.truncated);
    const at = this.options.now();
    const spans = splitStatements(text, { standardConformingStrings: this.settings.standardConformingStrings });
    const max = Math.max(1, this.settings.maxStatementsPerQuery);
    if (spans.length > max) {
      // Bounded state: fold the tail into one command rather than one object per statement.
      spans.splice(max - 1, spans.length, { start: spans[max - 1]!.start, end: spans[spans.length - 1]!.end });
    }
    const runs: Running[] = [];
    if (spans.length <= 1) {
      // One statement (or none: EmptyQueryResponse): record the text exactly as sent.
      runs.push(this.start(this.kindOf(text, "query"), text, truncated, at, {}));
    } else {
      spans.forEach((span, index) => {
        const piece = text.slice(span.start, span.end);
        const last = index === spans.length - 1;
        runs.push(
          this.start(this.kindOf(piece, "query"), piece, truncated && last, at, {
            statementIndex: index,
            statementCount: spans.length,
          }),
        );
      });
    }
    if (this.skipToSync) {
      for (const run of runs) this.finish(run, "skipped", at, {});
      return;
    }
    this.enqueue({ t: "Q", runs, index: 0 });
  }

  private onParse(frame: MessageFrame): void {
    const c = new ByteCursor(frame.body, "Parse");
    const nameEnd = frame.body.indexOf(0);
    if (nameEnd < 0) throw violation("Parse: unterminated statement name");
    const name = decodeUtf8(frame.body.subarray(0, Math.min(nameEnd, MAX_NAME_BYTES)));
    c.offset = nameEnd + 1;
    const rest = frame.body.subarray(c.offset);
    const { text, truncated } = this.cappedText(rest, !frame.truncated);
    if (!frame.truncated) {
      // Validate the parameter type list like the server would.
      c.offset += rest.indexOf(0) + 1;
      const n = c.uint16("parameter type count");
      c.bytesView(n * 4, "parameter types");
      c.end();
    }
    if (this.skipToSync) {
      this.discardedStatements.set(name, { text, truncated, kind: this.kindOf(text, "execute") });
      if (this.discardedStatements.size > this.settings.maxPreparedStatements) {
        this.discardedStatements.delete(this.discardedStatements.keys().next().value!);
      }
      return;
    }
    // The Bind/Execute pipelined behind a Parse must see its text, so it is remembered now and
    // forgotten again if the server refuses the Parse. Except when redefining a named statement
    // we know: the server refuses that (42P05, it must be closed first) and keeps the old one,
    // so the new text only replaces it on ParseComplete — which means our cache was stale, e.g.
    // after a DEALLOCATE we could not see.
    const created: StatementEntry = { text, truncated, kind: this.kindOf(text, "execute") };
    const applied = name === "" || !this.statements.has(name);
    if (applied) this.remember(name, created);
    this.enqueue({ t: "P", name, created, applied });
  }

  private onBind(capture: ParamCapture): void {
    const statement =
      (this.skipToSync ? this.discardedStatements.get(capture.statement) : undefined) ??
      this.statements.get(capture.statement);
    const portals = this.skipToSync ? this.discardedPortals : this.portals;
    portals.set(capture.portal, {
      statement: capture.statement,
      text: statement?.text ?? "",
      truncated: statement === undefined || statement.truncated,
      kind: statement?.kind ?? "execute",
      params: capture.params,
      paramCount: capture.paramCount,
      paramsTruncated: capture.paramsTruncated,
    });
    if (portals.size > this.settings.maxPortals) portals.delete(portals.keys().next().value!);
    if (!this.skipToSync) this.enqueue({ t: "B" });
  }

  private onExecute(execute: { portal: string; maxRows: number }): void {
    const portal =
      (this.skipToSync ? this.discardedPortals.get(execute.portal) : undefined) ?? this.portals.get(execute.portal);
    const at = this.options.now();
    const run = this.start(portal?.kind ?? "execute", portal?.text ?? "", portal === undefined || portal.truncated, at, {
      statement: portal?.statement ?? "",
      portal: execute.portal,
      maxRows: execute.maxRows,
      params: portal?.params ?? [],
      paramCount: portal?.paramCount ?? 0,
      ...(portal?.paramsTruncated === true ? { paramsTruncated: true } : {}),
    });
    if (this.skipToSync) {
      this.finish(run, "skipped", at, {});
      return;
    }
    this.enqueue({ t: "E", run });
  }

  private onFunctionCall(capture: ParamCapture): void {
    const at = this.options.now();
    const run = this.start("function_call", `FunctionCall(${capture.functionOid})`, false, at, {
      functionOid: capture.functionOid,
      params: capture.params,
      paramCount: capture.paramCount,
      ...(capture.paramsTruncated ? { paramsTruncated: true } : {}),
    });
    if (this.skipToSync) {
      this.finish(run, "skipped", at, {});
      return;
    }
    this.enqueue({ t: "F", run });
  }

  private kindOf(text: string, otherwise: CommandKind): CommandKind {
    return leadingKeyword(text) === "COPY" ? "copy" : otherwise;
  }

  private start(
    kind: CommandKind,
    text: string,
    textTruncated: boolean,
    at: number,
    extra: Partial<Omit<ObservedCommand, "id" | "kind" | "text" | "textTruncated" | "startedAt">>,
  ): Running {
    const command: ObservedCommand = { id: this.nextId++, kind, text, textTruncated, startedAt: at, ...extra };
    this.sink.commandStarted(command);
    return new Running(command, at);
  }

  private remember(name: string, entry: StatementEntry): void {
    // Replaced in place (no delete + set): the unnamed statement is replaced on every Parse.
    const old = this.statements.get(name);
    if (old !== undefined) this.statementBytes -= old.text.length;
    this.statements.set(name, entry);
    this.statementBytes += entry.text.length;
    while (
      this.statements.size > this.settings.maxPreparedStatements ||
      (this.statementBytes > this.settings.maxStatementCacheBytes && this.statements.size > 1)
    ) {
      const oldest = this.statements.keys().next().value!;
      this.forgetStatement(oldest);
    }
  }

  private forgetStatement(name: string): void {
    const old = this.statements.get(name);
    if (old === undefined) return;
    this.statements.delete(name);
    this.statementBytes -= old.text.length;
  }

  private enqueue(entry: Pending): void {
    if (this.queue.length - this.head >= this.settings.maxPending) {
      throw new PostgresProtocolError("LIMIT_EXCEEDED", `more than ${this.settings.maxPending} frontend messages await a response`, {
        context: { pending: this.queue.length - this.head },
      });
    }
    this.queue.push(entry);
  }

  // -------------------------------------------------------------------------------------------
  // Backend

  private headEntry(): Pending | undefined {
    return this.head < this.queue.length ? this.queue[this.head] : undefined;
  }

  private pop(): void {
    this.queue[this.head] = undefined as unknown as Pending;
    this.head++;
    if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
  }

  /** The command the backend is currently answering for, if any. */
  private current(): Running | undefined {
    const entry = this.headEntry();
    if (entry === undefined) return undefined;
    switch (entry.t) {
      case "Q":
        return entry.runs[entry.index];
      case "E":
      case "F":
        return entry.run;
      default:
        return undefined;
    }
  }

  private onBackend(frame: MessageFrame): void {
    switch (frame.code) {
      case BackendCode.DataRow: {
        const run = this.current();
        if (run !== undefined) run.rows++;
        return;
      }
      case BackendCode.CopyData: {
        const run = this.current();
        if (run !== undefined) run.copyBytes += frame.length;
        return;
      }
      case BackendCode.CommandComplete:
        this.onCommandEnd({ tag: decodeCommandComplete(frame.body).tag });
        return;
      case BackendCode.EmptyQueryResponse:
        this.onCommandEnd({ emptyQuery: true });
        return;
      case BackendCode.PortalSuspended: {
        const entry = this.headEntry();
        if (entry?.t === "E") {
          this.finish(entry.run, "ok", this.options.now(), { suspended: true });
          this.pop();
        }
        return;
      }
      case BackendCode.FunctionCallResponse: {
        const entry = this.headEntry();
        if (entry?.t === "F") this.finish(entry.run, "ok", this.options.now(), {});
        return;
      }
      case BackendCode.ErrorResponse:
        this.onError(toObservedError(decodeErrorFields(frame.body, "ErrorResponse", frame.truncated)));
        return;
      case BackendCode.ReadyForQuery:
        this.onReady(decodeReadyForQuery(frame.body).status);
        return;
      case BackendCode.ParseComplete: {
        const entry = this.headEntry();
        if (entry?.t !== "P") return;
        if (!entry.applied) this.remember(entry.name, entry.created);
        this.pop();
        return;
      }
      case BackendCode.BindComplete:
        this.popIf("B");
        return;
      case BackendCode.CloseComplete:
        this.popIf("C");
        return;
      case BackendCode.NoData:
      case BackendCode.RowDescription:
        // RowDescription also precedes a Query's rows; only a Describe is ended by it.
        this.popIf("D");
        return;
      case BackendCode.CopyInResponse:
      case BackendCode.CopyBothResponse:
        this.onCopyIn(frame.code === BackendCode.CopyInResponse ? "in" : "both");
        return;
      case BackendCode.CopyOutResponse: {
        const run = this.current();
        if (run !== undefined) run.copyDirection = "out";
        return;
      }
      case BackendCode.NoticeResponse: {
        const fields = decodeErrorFields(frame.body, "NoticeResponse", frame.truncated);
        const notice: ObservedNotice = {
          severity: fields.severityNonLocalized ?? fields.severity,
          code: fields.code,
          message: fields.message,
        };
        const run = this.current();
        if (run === undefined) this.sink.notice?.(notice, this.options.now());
        else if ((run.notices ??= []).length < this.settings.maxNoticesPerCommand) run.notices.push(notice);
        return;
      }
      case BackendCode.NotificationResponse: {
        if (this.sink.notification === undefined) return;
        const n = frame.truncated ? this.lenientNotification(frame.body) : decodeNotificationResponse(frame.body);
        this.sink.notification({ at: this.options.now(), processId: n.processId, channel: n.channel, payload: n.payload });
        return;
      }
      case BackendCode.ParameterStatus: {
        const { name, value } = decodeParameterStatus(frame.body);
        if (name === "standard_conforming_strings") this.settings.standardConformingStrings = value === "on";
        this.sink.parameterStatus?.(name, value, this.options.now());
        return;
      }
      default:
        // ParameterDescription, CopyDone, BackendKeyData, Authentication, NegotiateProtocolVersion: nothing to record.
        return;
    }
  }

  private lenientNotification(body: Uint8Array): { processId: number; channel: string; payload: string } {
    const c = new ByteCursor(body, "NotificationResponse");
    const processId = c.int32("process ID");
    const rest = c.rest();
    const nul = rest.indexOf(0);
    if (nul < 0) return { processId, channel: decodeUtf8(rest), payload: "" };
    return { processId, channel: decodeUtf8(rest.subarray(0, nul)), payload: decodeUtf8(rest.subarray(nul + 1)) };
  }

  private popIf(t: "B" | "C" | "D"): void {
    if (this.headEntry()?.t === t) this.pop();
  }

  private onCommandEnd(result: { tag?: string; emptyQuery?: boolean }): void {
    const entry = this.headEntry();
    if (entry === undefined) return;
    const at = this.options.now();
    if (entry.t === "Q") {
      const run = entry.runs[entry.index];
      if (run === undefined) return;
      this.finish(run, "ok", at, result);
      entry.index++;
    } else if (entry.t === "E") {
      this.finish(entry.run, "ok", at, result);
      this.pop();
    }
  }

  private onCopyIn(direction: "in" | "both"): void {
    const entry = this.headEntry();
    const run = this.current();
    if (run === undefined) return;
    run.copyDirection = direction;
    this.copyIn = run;
    this.frontendInCopy = true;
    if (entry?.t === "E") {
      // libpq sends Sync right after an extended-protocol COPY's Execute; the server ignores a
      // Sync that arrives during COPY IN, so it answers nothing for it.
      let i = this.head + 1;
      while (i < this.queue.length && this.queue[i]!.t === "S") i++;
      if (i > this.head + 1) this.queue.splice(this.head + 1, i - this.head - 1);
    }
  }

  private onError(error: ObservedError): void {
    const at = this.options.now();
    this.frontendInCopy = false;
    this.copyIn = undefined;
    const entry = this.headEntry();
    if (entry === undefined) {
      this.sink.serverError?.(error, at);
      return;
    }
    switch (entry.t) {
      case "Q": {
        const run = entry.runs[entry.index];
        if (run === undefined) {
          this.amendLast(error, at);
          return;
        }
        this.finish(run, "error", at, { error });
        for (let i = entry.index + 1; i < entry.runs.length; i++) this.finish(entry.runs[i]!, "skipped", at, {});
        entry.index = entry.runs.length;
        return;
      }
      case "F":
        if (entry.run.done) this.amendLast(error, at);
        else this.finish(entry.run, "error", at, { error });
        return;
      case "S":
        // The implicit transaction's commit at Sync failed (e.g. a deferred constraint).
        this.amendLast(error, at);
        return;
      default: {
        // Extended protocol: the server skips to the next Sync. The error belongs to the first
        // Execute of the discarded run (the statement that was going to run), the rest never ran.
        if (entry.t === "P" && entry.applied && this.statements.get(entry.name) === entry.created) {
          this.forgetStatement(entry.name);
        }
        let blamed = false;
        while (this.head < this.queue.length && this.queue[this.head]!.t !== "S") {
          const dropped = this.queue[this.head]!;
          if (dropped.t === "E" || dropped.t === "F") {
            this.finish(run(dropped), blamed ? "skipped" : "error", at, blamed ? {} : { error });
            blamed = true;
          } else if (dropped.t === "Q") {
            for (const r of dropped.runs) this.finish(r, "skipped", at, {});
          }
          this.pop();
        }
        if (!blamed) this.sink.serverError?.(error, at);
        if (this.head >= this.queue.length) this.skipToSync = true;
      }
    }
  }

  /** An error after the command already completed: the last completion awaiting ReadyForQuery becomes an error. */
  private amendLast(error: ObservedError, at: number): void {
    const last = this.held[this.held.length - 1];
    if (last === undefined || last.outcome.status !== "ok") {
      this.sink.serverError?.(error, at);
      return;
    }
    last.outcome = { ...last.outcome, status: "error", error };
  }

  private onReady(status: TransactionStatus): void {
    // Pop through the Sync/Query/FunctionCall this ReadyForQuery answers.
    while (this.head < this.queue.length) {
      const entry = this.queue[this.head]!;
      this.pop();
      if (entry.t === "Q") {
        const at = this.options.now();
        for (let i = entry.index; i < entry.runs.length; i++) this.finish(entry.runs[i]!, "skipped", at, {});
        break;
      }
      if (entry.t === "F") {
        if (!entry.run.done) this.finish(entry.run, "skipped", this.options.now(), {});
        break;
      }
      if (entry.t === "S") break;
      if (entry.t === "E") this.finish(entry.run, "skipped", this.options.now(), {});
    }
    this.skipToSync = false;
    this.discardedStatements.clear();
    this.discardedPortals.clear();
    this.frontendInCopy = false;
    this.copyIn = undefined;
    // Portals live until the end of their transaction.
    if (status === "idle") this.portals.clear();
    this.flushHeld(status);
  }

  private finish(
    run: Running,
    status: CommandStatus,
    at: number,
    result: { tag?: string; emptyQuery?: boolean; suspended?: boolean; error?: ObservedError },
  ): void {
    if (run.done) return;
    run.done = true;
    const tagRows = result.tag === undefined ? undefined : rowsFromTag(result.tag);
    const rows = tagRows ?? (run.rows > 0 ? run.rows : undefined);
    // Built by assignment rather than spreads: this runs once per command on the relay path.
    const outcome: Mutable<CommandOutcome> = {
      status,
      completedAt: at,
      durationUs: status === "skipped" ? 0 : Math.max(0, at - Math.max(run.execStart, this.lastCompletedAt)),
    };
    if (result.tag !== undefined) outcome.tag = result.tag;
    if (rows !== undefined) outcome.rows = rows;
    if (result.error !== undefined) outcome.error = result.error;
    if (result.suspended === true) outcome.suspended = true;
    if (result.emptyQuery === true) outcome.emptyQuery = true;
    if (run.copyDirection !== undefined) outcome.copy = { direction: run.copyDirection, bytes: run.copyBytes };
    if (run.notices !== undefined) outcome.notices = run.notices;
    if (status !== "skipped") this.lastCompletedAt = at;
    if (status === "ok" && result.tag !== undefined) this.afterUtility(run.command.text, result.tag);
    this.held.push({ run, outcome });
    if (this.held.length > this.settings.maxPending) this.flushHeld(undefined);
  }

  /**
   * SQL-level PREPARE, DEALLOCATE and DISCARD share the namespace of protocol-level
   * statements: a Bind may name a statement made by `PREPARE`, and `DEALLOCATE` frees a name.
   */
  private afterUtility(text: string, tag: string): void {
    switch (tag) {
      case "PREPARE": {
        const prepared = parsePrepare(text);
        if (prepared !== undefined) {
          this.remember(prepared.name, { text: prepared.text, truncated: false, kind: this.kindOf(prepared.text, "execute") });
        }
        return;
      }
      case "DEALLOCATE": {
        const name = parseDeallocate(text);
        if (name !== undefined) this.forgetStatement(name);
        return;
      }
      case "DEALLOCATE ALL":
      case "DISCARD ALL":
        this.statements.clear();
        this.statementBytes = 0;
        if (tag === "DISCARD ALL") this.portals.clear();
        return;
      default:
        return;
    }
  }

  private flushHeld(status: TransactionStatus | undefined): void {
    if (this.held.length === 0) return;
    const held = this.held;
    this.held = [];
    for (const { run, outcome } of held) {
      // The outcome was private until now, so it can be completed in place.
      if (status !== undefined) outcome.transactionStatus = status;
      this.sink.commandCompleted(run.command, outcome);
    }
  }
}

/** An SQL identifier as the server folds it: "Quoted" kept (with "" unescaped), bare lower-cased. */
function identifier(token: string): string {
  return token.startsWith('"') ? token.slice(1, -1).replace(/""/g, '"') : token.toLowerCase();
}

const IDENT = String.raw`("(?:[^"]|"")+"|[A-Za-z_\u0080-\uffff][\w$\u0080-\uffff]*)`;
const PREPARE_RE = new RegExp(String.raw`^PREPARE\s+${IDENT}\s*(?:\([^)]*\))?\s*AS\s+([\s\S]*?)\s*;?\s*$`, "i");
const DEALLOCATE_RE = new RegExp(String.raw`^DEALLOCATE\s+(?:PREPARE\s+)?${IDENT}\s*;?\s*$`, "i");

/** `PREPARE name [(types)] AS statement` → the name and the statement's text. */
export function parsePrepare(sql: string): { name: string; text: string } | undefined {
  const match = PREPARE_RE.exec(sql.slice(skipIgnorable(sql)));
  return match === null ? undefined : { name: identifier(match[1]!), text: match[2]! };
}

/** `DEALLOCATE [PREPARE] name` → the name. */
export function parseDeallocate(sql: string): string | undefined {
  const match = DEALLOCATE_RE.exec(sql.slice(skipIgnorable(sql)));
  return match === null ? undefined : identifier(match[1]!);
}

function run(entry: { readonly run: Running }): Running {
  return entry.run;
}

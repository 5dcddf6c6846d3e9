import { describe, expect, it } from "vitest";
import { observe } from "../../test/helpers/observer-harness.js";
import { concat, utf8 } from "../../test/helpers/frames.js";
import {
  encodeBackendCopyData,
  encodeBackendCopyDone,
  encodeBindComplete,
  encodeCloseComplete,
  encodeCommandComplete,
  encodeCopyResponse,
  encodeDataRow,
  encodeEmptyQueryResponse,
  encodeErrorResponse,
  encodeFunctionCallResponse,
  encodeNoData,
  encodeNoticeResponse,
  encodeNotificationResponse,
  encodeParameterDescription,
  encodeParameterStatus,
  encodeParseComplete,
  encodePortalSuspended,
  encodeReadyForQuery,
  encodeRowDescription,
} from "./backend-messages.js";
import type { TransactionStatus } from "./backend-messages.js";
import { PostgresProtocolError } from "./errors.js";
import {
  encodeBind,
  encodeClose,
  encodeCopyData,
  encodeCopyDone,
  encodeCopyFail,
  encodeDescribe,
  encodeExecute,
  encodeFlush,
  encodeFunctionCall,
  encodeParse,
  encodeQuery,
  encodeSync,
  encodeTerminate,
} from "./frontend-messages.js";
import { rowsFromTag } from "./observer.js";

const Z = (status: TransactionStatus = "idle") => encodeReadyForQuery({ status });
const C = (tag: string) => encodeCommandComplete({ tag });
const T = encodeRowDescription({
  fields: [{ name: "x", tableOid: 0, columnAttribute: 0, typeOid: 23, typeSize: 4, typeModifier: -1, format: 0 }],
});
const D = (value = "1") => encodeDataRow({ values: [utf8(value)] });
const E = (code: string, message: string) => encodeErrorResponse({ fields: { severity: "ERROR", severityNonLocalized: "ERROR", code, message } });
const text = (s: string) => utf8(s);

describe("simple query", () => {
  it("one statement: started with its text, completed with tag, rows, duration and transaction status", () => {
    const { sink, frontend, backend } = observe();
    frontend(encodeQuery({ query: "SELECT generate_series(1, 3)" }));
    expect(sink.started).toMatchObject([{ id: 1, kind: "query", text: "SELECT generate_series(1, 3)", textTruncated: false }]);
    backend(T, D(), D(), D(), C("SELECT 3"));
    expect(sink.completed).toHaveLength(0); // held for the transaction status
    backend(Z());
    const [done] = sink.completed;
    expect(done?.outcome).toMatchObject({ status: "ok", tag: "SELECT 3", rows: 3, transactionStatus: "idle" });
    expect(done?.outcome.durationUs).toBeGreaterThan(0);
    expect(done?.command).toBe(sink.started[0]);
  });

  it("several statements: one event each, in order, ended by the CommandComplete sequence", () => {
    const { sink, frontend, backend } = observe();
    frontend(encodeQuery({ query: "BEGIN; INSERT INTO t VALUES (1), (2); SELECT * FROM t" }));
    expect(sink.started.map((c) => [c.text, c.statementIndex, c.statementCount])).toEqual([
      ["BEGIN", 0, 3],
      ["INSERT INTO t VALUES (1), (2)", 1, 3],
      ["SELECT * FROM t", 2, 3],
    ]);
    backend(C("BEGIN"), C("INSERT 0 2"), T, D(), D(), C("SELECT 2"), Z("in_transaction"));
    expect(sink.completed.map((c) => [c.command.text, c.outcome.status, c.outcome.tag, c.outcome.rows, c.outcome.transactionStatus])).toEqual([
      ["BEGIN", "ok", "BEGIN", undefined, "in_transaction"],
      ["INSERT INTO t VALUES (1), (2)", "ok", "INSERT 0 2", 2, "in_transaction"],
      ["SELECT * FROM t", "ok", "SELECT 2", 2, "in_transaction"],
    ]);
  });

  it("an error ends the Query: later statements are skipped", () => {
    const { sink, frontend, backend } = observe();
    frontend(encodeQuery({ query: "SELECT 1; SELECT 1/0; SELECT 3" }));
    backend(T, D(), C("SELECT 1"), T, E("22012", "division by zero"), Z());
    expect(sink.completed.map((c) => [c.command.text, c.outcome.status, c.outcome.error?.code])).toEqual([
      ["SELECT 1", "ok", undefined],
      ["SELECT 1/0", "error", "22012"],
      ["SELECT 3", "skipped", undefined],
    ]);
    expect(sink.completed[1]?.outcome.error).toEqual({ severity: "ERROR", code: "22012", message: "division by zero" });
  });

  it("folds statements past maxStatementsPerQuery into one last command", () => {
    const { sink, frontend, backend } = observe({ maxStatementsPerQuery: 3 });
    frontend(encodeQuery({ query: "SELECT 1; SELECT 2; SELECT 3; SELECT 4; SELECT 5" }));
    expect(sink.started.map((c) => c.text)).toEqual(["SELECT 1", "SELECT 2", "SELECT 3; SELECT 4; SELECT 5"]);
    backend(C("SELECT 1"), C("SELECT 1"), C("SELECT 1"), C("SELECT 1"), C("SELECT 1"), Z());
    expect(sink.completed.map((c) => c.outcome.status)).toEqual(["ok", "ok", "ok"]);
  });

  it("an empty query gets EmptyQueryResponse", () => {
    const { sink, frontend, backend } = observe();
    frontend(encodeQuery({ query: " -- nothing" }));
    backend(encodeEmptyQueryResponse(), Z());
    expect(sink.completed).toMatchObject([{ command: { text: " -- nothing" }, outcome: { status: "ok", emptyQuery: true } }]);
  });

  it("caps the recorded text at maxQueryBytes", () => {
    const { sink, frontend, backend } = observe({ maxQueryBytes: 16 });
    frontend(encodeQuery({ query: `SELECT '${"é".repeat(100)}'` }));
    expect(sink.started[0]).toMatchObject({ textTruncated: true });
    expect(Buffer.byteLength(sink.started[0]!.text)).toBeLessThanOrEqual(16);
    expect(sink.started[0]!.text).not.toContain("\uFFFD");
    backend(C("SELECT 1"), Z());
    expect(sink.completed[0]?.outcome.status).toBe("ok");
  });
});

describe("extended protocol", () => {
  const bind = (params: (Uint8Array | null)[], statement = "", portal = "", paramFormats: number[] = []) =>
    encodeBind({ portal, statement, paramFormats, params, resultFormats: [] });

  it("a pgbench-like pipeline: unnamed statements, one Sync, params recorded", () => {
    const { sink, frontend, backend } = observe();
    frontend(
      encodeParse({ name: "", query: "UPDATE accounts SET abalance = abalance + $1 WHERE aid = $2", paramTypes: [] }),
      bind([text("-42"), text("7")]),
      encodeExecute({ portal: "", maxRows: 0 }),
      encodeParse({ name: "", query: "SELECT abalance FROM accounts WHERE aid = $1", paramTypes: [] }),
      bind([text("7")]),
      encodeDescribe({ target: "P", name: "" }),
      encodeExecute({ portal: "", maxRows: 0 }),
      encodeSync(),
    );
    expect(sink.started.map((c) => [c.kind, c.text, c.params])).toEqual([
      ["execute", "UPDATE accounts SET abalance = abalance + $1 WHERE aid = $2", ["-42", "7"]],
      ["execute", "SELECT abalance FROM accounts WHERE aid = $1", ["7"]],
    ]);
    expect(sink.started[0]).toMatchObject({ statement: "", portal: "", maxRows: 0, paramCount: 2 });
    backend(encodeParseComplete(), encodeBindComplete(), C("UPDATE 1"), encodeParseComplete(), encodeBindComplete(), T, D("-42"), C("SELECT 1"), Z());
    expect(sink.completed.map((c) => [c.outcome.status, c.outcome.tag, c.outcome.rows, c.outcome.transactionStatus])).toEqual([
      ["ok", "UPDATE 1", 1, "idle"],
      ["ok", "SELECT 1", 1, "idle"],
    ]);
  });

  it("named statements are remembered per session until closed; a redefinition without Close is refused", () => {
    const { sink, frontend, backend } = observe();
    frontend(encodeParse({ name: "s1", query: "SELECT $1::int", paramTypes: [23] }), encodeSync());
    backend(encodeParseComplete(), Z());
    frontend(bind([text("5")], "s1", "p1"), encodeExecute({ portal: "p1", maxRows: 0 }), encodeSync());
    // Parse of an existing name: the server answers 42P05 and keeps the old text.
    frontend(encodeParse({ name: "s1", query: "SELECT 'other'", paramTypes: [] }), encodeSync());
    frontend(bind([text("6")], "s1"), encodeExecute({ portal: "", maxRows: 0 }), encodeSync());
    frontend(encodeClose({ target: "S", name: "s1" }), encodeParse({ name: "s1", query: "SELECT 'new'", paramTypes: [] }), bind([], "s1"), encodeExecute({ portal: "", maxRows: 0 }), encodeSync());
    expect(sink.started.map((c) => [c.text, c.statement, c.portal, c.params])).toEqual([
      ["SELECT $1::int", "s1", "p1", ["5"]],
      ["SELECT $1::int", "s1", "", ["6"]],
      ["SELECT 'new'", "s1", "", []],
    ]);
    backend(encodeBindComplete(), D("5"), C("SELECT 1"), Z());
    backend(E("42P05", 'prepared statement "s1" already exists'), Z());
    backend(encodeBindComplete(), D("6"), C("SELECT 1"), Z());
    backend(encodeCloseComplete(), encodeParseComplete(), encodeBindComplete(), D("new"), C("SELECT 1"), Z());
    expect(sink.completed.map((c) => c.outcome.status)).toEqual(["ok", "ok", "ok"]);
    expect(sink.events.filter((e) => e.event === "serverError")).toHaveLength(1); // the failed Parse had no Execute
  });

  it("follows SQL-level PREPARE, DEALLOCATE and DISCARD ALL, which share the statement namespace", () => {
    const { sink, frontend, backend } = observe();
    frontend(encodeQuery({ query: "PREPARE Fetch_One (int) AS SELECT $1 + 1; PREPARE \"Quoted\" AS SELECT 2" }));
    backend(C("PREPARE"), C("PREPARE"), Z());
    frontend(bind([text("41")], "fetch_one"), encodeExecute({ portal: "", maxRows: 0 }), bind([], "Quoted"), encodeExecute({ portal: "", maxRows: 0 }), encodeSync());
    backend(encodeBindComplete(), D("42"), C("SELECT 1"), encodeBindComplete(), D("2"), C("SELECT 1"), Z());
    // A name freed by DEALLOCATE can be parsed again with another text.
    frontend(encodeParse({ name: "s", query: "SELECT 'old'", paramTypes: [] }), encodeSync());
    backend(encodeParseComplete(), Z());
    frontend(encodeQuery({ query: "DEALLOCATE s" }));
    backend(C("DEALLOCATE"), Z());
    frontend(encodeParse({ name: "s", query: "SELECT 'new'", paramTypes: [] }), bind([], "s"), encodeExecute({ portal: "", maxRows: 0 }), encodeSync());
    backend(encodeParseComplete(), encodeBindComplete(), D(), C("SELECT 1"), Z());
    frontend(encodeQuery({ query: "DISCARD ALL" }));
    backend(C("DISCARD ALL"), Z());
    frontend(bind([], "s"), encodeExecute({ portal: "", maxRows: 0 }), encodeSync());
    expect(sink.started.filter((c) => c.kind === "execute").map((c) => [c.statement, c.text])).toEqual([
      ["fetch_one", "SELECT $1 + 1"],
      ["Quoted", "SELECT 2"],
      ["s", "SELECT 'new'"],
      ["s", ""],
    ]);
  });

  it("a Parse the server accepts replaces a name our cache thought taken", () => {
    const { sink, frontend, backend } = observe();
    frontend(encodeParse({ name: "s", query: "SELECT 'a'", paramTypes: [] }), encodeSync());
    backend(encodeParseComplete(), Z());
    // Freed behind our back (say, by DEALLOCATE inside a function): the server accepts the new Parse.
    frontend(encodeParse({ name: "s", query: "SELECT 'b'", paramTypes: [] }), encodeSync());
    backend(encodeParseComplete(), Z());
    frontend(bind([], "s"), encodeExecute({ portal: "", maxRows: 0 }));
    expect(sink.started[0]?.text).toBe("SELECT 'b'");
  });

  it("an unnamed Parse replaces the unnamed statement", () => {
    const { sink, frontend } = observe();
    frontend(encodeParse({ name: "", query: "SELECT 1", paramTypes: [] }), encodeParse({ name: "", query: "SELECT 2", paramTypes: [] }), bind([]), encodeExecute({ portal: "", maxRows: 0 }));
    expect(sink.started[0]?.text).toBe("SELECT 2");
  });

  it("an error mid-pipeline blames the next Execute and skips the rest up to Sync", () => {
    const { sink, frontend, backend } = observe();
    frontend(
      encodeParse({ name: "", query: "INSERT INTO t VALUES ($1)", paramTypes: [] }),
      bind([text("1")]),
      encodeExecute({ portal: "", maxRows: 0 }),
      encodeParse({ name: "", query: "INSERT INTO t VALUES ($1, $2)", paramTypes: [] }),
      bind([text("2")]),
      encodeExecute({ portal: "", maxRows: 0 }),
      encodeParse({ name: "", query: "INSERT INTO t VALUES ($1)", paramTypes: [] }),
      bind([text("3")]),
      encodeExecute({ portal: "", maxRows: 0 }),
      encodeSync(),
      encodeQuery({ query: "SELECT 1" }),
    );
    backend(
      encodeParseComplete(),
      encodeBindComplete(),
      C("INSERT 0 1"),
      encodeParseComplete(),
      E("08P01", "bind message supplies 1 parameters, but prepared statement requires 2"),
      Z(),
      T,
      D(),
      C("SELECT 1"),
      Z(),
    );
    expect(sink.completed.map((c) => [c.command.params, c.outcome.status, c.outcome.error?.code])).toEqual([
      [["1"], "ok", undefined],
      [["2"], "error", "08P01"],
      [["3"], "skipped", undefined],
      [undefined, "ok", undefined],
    ]);
  });

  it("after an error, messages that arrive before the Sync are recorded as skipped", () => {
    const { sink, frontend, backend } = observe();
    frontend(encodeParse({ name: "", query: "SELEC 1", paramTypes: [] }), bind([]), encodeExecute({ portal: "", maxRows: 0 }), encodeFlush());
    backend(E("42601", 'syntax error at or near "SELEC"'));
    frontend(encodeParse({ name: "", query: "SELECT 2", paramTypes: [] }), bind([]), encodeExecute({ portal: "", maxRows: 0 }), encodeSync());
    backend(Z());
    frontend(bind([]), encodeExecute({ portal: "", maxRows: 0 }), encodeSync());
    backend(E("26000", "unnamed prepared statement does not exist"), Z());
    expect(sink.completed.map((c) => [c.command.text, c.outcome.status])).toEqual([
      ["SELEC 1", "error"],
      ["SELECT 2", "skipped"],
      // The discarded Parse did not create a statement: the text is unknown, and the server agrees.
      ["", "error"],
    ]);
    expect(sink.completed[2]?.command.textTruncated).toBe(true);
  });

  it("PortalSuspended ends an Execute with a row limit; the next Execute continues the portal", () => {
    const { sink, frontend, backend } = observe();
    frontend(
      encodeQuery({ query: "BEGIN" }),
      encodeParse({ name: "", query: "SELECT * FROM big", paramTypes: [] }),
      bind([], "", "cur"),
      encodeExecute({ portal: "cur", maxRows: 2 }),
      encodeSync(),
      encodeExecute({ portal: "cur", maxRows: 2 }),
      encodeSync(),
    );
    backend(C("BEGIN"), Z("in_transaction"), encodeParseComplete(), encodeBindComplete(), D(), D(), encodePortalSuspended(), Z("in_transaction"), D(), C("SELECT 1"), Z("in_transaction"));
    expect(sink.completed.map((c) => [c.command.text, c.command.maxRows, c.outcome.suspended, c.outcome.rows, c.outcome.tag])).toEqual([
      ["BEGIN", undefined, undefined, undefined, "BEGIN"],
      ["SELECT * FROM big", 2, true, 2, undefined],
      ["SELECT * FROM big", 2, undefined, 1, "SELECT 1"],
    ]);
  });

  it("Describe and Close produce no events and keep the queue in step", () => {
    const { sink, observer, frontend, backend } = observe();
    frontend(encodeParse({ name: "q", query: "SELECT $1", paramTypes: [] }), encodeDescribe({ target: "S", name: "q" }), encodeSync());
    backend(encodeParseComplete(), encodeParameterDescription({ paramTypes: [25] }), T, Z());
    frontend(encodeClose({ target: "S", name: "q" }), encodeSync());
    backend(encodeCloseComplete(), Z());
    frontend(encodeParse({ name: "", query: "CREATE TABLE x()", paramTypes: [] }), bind([]), encodeDescribe({ target: "P", name: "" }), encodeExecute({ portal: "", maxRows: 0 }), encodeSync());
    backend(encodeParseComplete(), encodeBindComplete(), encodeNoData(), C("CREATE TABLE"), Z());
    expect(sink.completed.map((c) => [c.command.text, c.outcome.tag, c.outcome.rows])).toEqual([["CREATE TABLE x()", "CREATE TABLE", undefined]]);
    expect(observer.pendingCount).toBe(0);
  });

  it("a failed commit at Sync turns the completed command into an error, keeping its tag", () => {
    const { sink, frontend, backend } = observe();
    frontend(encodeParse({ name: "", query: "INSERT INTO child VALUES (1)", paramTypes: [] }), bind([]), encodeExecute({ portal: "", maxRows: 0 }), encodeSync());
    backend(encodeParseComplete(), encodeBindComplete(), C("INSERT 0 1"), E("23503", "insert or update violates foreign key constraint"), Z());
    expect(sink.completed[0]?.outcome).toMatchObject({ status: "error", tag: "INSERT 0 1", error: { code: "23503" } });
  });

  it("records binary parameters as hex, NULL as null, and caps long values", () => {
    const { sink, frontend } = observe({ maxParamBytes: 8 });
    frontend(
      encodeParse({ name: "", query: "INSERT INTO t VALUES ($1, $2, $3, $4)", paramTypes: [] }),
      bind([new Uint8Array([0, 0, 0, 42]), null, text("0123456789abc"), new Uint8Array(20).fill(0xab)], "", "", [1, 0, 0, 1]),
      encodeExecute({ portal: "", maxRows: 0 }),
    );
    expect(sink.started[0]?.params).toEqual([
      { hex: "0000002a", bytes: 4, truncated: false },
      null,
      { text: "01234567", bytes: 13, truncated: true },
      { hex: "abababababababab", bytes: 20, truncated: true },
    ]);
  });

  it("stops recording values past the per-command budget but counts them", () => {
    const { sink, frontend } = observe({ maxParamBytes: 100, maxCommandParamBytes: 250 });
    const params = Array.from({ length: 10 }, (_, i) => text(String(i).repeat(100)));
    frontend(encodeParse({ name: "", query: "q", paramTypes: [] }), bind(params), encodeExecute({ portal: "", maxRows: 0 }));
    expect(sink.started[0]?.paramCount).toBe(10);
    expect(sink.started[0]?.paramsTruncated).toBe(true);
    expect(sink.started[0]?.params?.length).toBeLessThan(10);
    expect(sink.started[0]?.params?.[0]).toBe("0".repeat(100));
  });

  it("evicts the oldest prepared statement past maxPreparedStatements", () => {
    const { sink, frontend } = observe({ maxPreparedStatements: 2 });
    for (const name of ["a", "b", "c"]) frontend(encodeParse({ name, query: `SELECT '${name}'`, paramTypes: [] }));
    frontend(bind([], "a"), encodeExecute({ portal: "", maxRows: 0 }), bind([], "c"), encodeExecute({ portal: "", maxRows: 0 }));
    expect(sink.started.map((c) => [c.text, c.textTruncated])).toEqual([
      ["", true],
      ["SELECT 'c'", false],
    ]);
  });

  it("refuses to queue more than maxPending messages awaiting a response", () => {
    const { frontend } = observe({ maxPending: 5 });
    expect(() => frontend(...Array.from({ length: 6 }, () => encodeSync()))).toThrow(PostgresProtocolError);
  });
});

describe("COPY", () => {
  it("COPY FROM STDIN by simple query: kind copy, bytes in, rows from the tag", () => {
    const { sink, frontend, backend } = observe();
    frontend(encodeQuery({ query: "COPY t (a, b) FROM STDIN" }));
    backend(encodeCopyResponse({ type: "CopyInResponse", format: 0, columnFormats: [0, 0] }));
    frontend(encodeCopyData({ data: text("1\tone\n") }), encodeCopyData({ data: text("2\ttwo\n") }), encodeCopyDone());
    backend(C("COPY 2"), Z());
    expect(sink.completed).toMatchObject([
      { command: { kind: "copy", text: "COPY t (a, b) FROM STDIN" }, outcome: { status: "ok", tag: "COPY 2", rows: 2, copy: { direction: "in", bytes: 12 } } },
    ]);
  });

  it("COPY TO STDOUT: bytes out", () => {
    const { sink, frontend, backend } = observe();
    frontend(encodeQuery({ query: "copy t to stdout" }));
    backend(
      encodeCopyResponse({ type: "CopyOutResponse", format: 0, columnFormats: [0] }),
      encodeBackendCopyData({ data: text("1\n") }),
      encodeBackendCopyData({ data: text("22\n") }),
      encodeBackendCopyDone(),
      C("COPY 2"),
      Z(),
    );
    expect(sink.completed[0]).toMatchObject({ command: { kind: "copy" }, outcome: { rows: 2, copy: { direction: "out", bytes: 5 } } });
  });

  it("COPY FROM STDIN over the extended protocol: the Sync libpq sends right after Execute is ignored", () => {
    const { sink, observer, frontend, backend } = observe();
    frontend(
      encodeParse({ name: "", query: "COPY t FROM STDIN", paramTypes: [] }),
      encodeBind({ portal: "", statement: "", paramFormats: [], params: [], resultFormats: [] }),
      encodeDescribe({ target: "P", name: "" }),
      encodeExecute({ portal: "", maxRows: 0 }),
      encodeSync(),
    );
    backend(encodeParseComplete(), encodeBindComplete(), encodeNoData(), encodeCopyResponse({ type: "CopyInResponse", format: 0, columnFormats: [0] }));
    frontend(encodeCopyData({ data: text("1\n") }), encodeFlush(), encodeSync(), encodeCopyDone(), encodeSync());
    backend(C("COPY 1"), Z());
    expect(observer.pendingCount).toBe(0);
    frontend(encodeQuery({ query: "SELECT 1" }));
    backend(D(), C("SELECT 1"), Z());
    expect(sink.completed.map((c) => [c.command.kind, c.outcome.status, c.outcome.copy?.bytes])).toEqual([
      ["copy", "ok", 2],
      ["query", "ok", undefined],
    ]);
  });

  it("CopyFail: the copy ends with the server's error", () => {
    const { sink, frontend, backend } = observe();
    frontend(encodeQuery({ query: "COPY t FROM STDIN" }));
    backend(encodeCopyResponse({ type: "CopyInResponse", format: 0, columnFormats: [0] }));
    frontend(encodeCopyData({ data: text("1\n") }), encodeCopyFail({ message: "cancelled" }));
    backend(E("57014", "COPY from stdin failed: cancelled"), Z());
    expect(sink.completed[0]?.outcome).toMatchObject({ status: "error", error: { code: "57014" }, copy: { direction: "in", bytes: 2 } });
  });
});

describe("other messages", () => {
  it("FunctionCall: kind function_call with its arguments", () => {
    const { sink, frontend, backend } = observe();
    frontend(encodeFunctionCall({ functionOid: 954, argFormats: [1], args: [new Uint8Array([0, 0, 0, 1])], resultFormat: 1 }));
    backend(encodeFunctionCallResponse({ result: new Uint8Array([0, 0, 0, 0]) }), Z());
    expect(sink.completed).toMatchObject([
      { command: { kind: "function_call", functionOid: 954, text: "FunctionCall(954)", params: [{ hex: "00000001" }] }, outcome: { status: "ok" } },
    ]);
  });

  it("notices attach to the running command; notifications and parameter changes go to the sink at any time", () => {
    const { sink, frontend, backend } = observe();
    const notice = encodeNoticeResponse({ fields: { severity: "NOTICE", code: "00000", message: "relation exists, skipping" } });
    backend(encodeNotificationResponse({ processId: 1, channel: "jobs", payload: "idle" }));
    frontend(encodeQuery({ query: "CREATE TABLE IF NOT EXISTS t()" }));
    backend(notice, encodeNotificationResponse({ processId: 2, channel: "jobs", payload: "mid" }), C("CREATE TABLE"), Z());
    backend(notice, encodeParameterStatus({ name: "application_name", value: "x" }));
    expect(sink.completed[0]?.outcome.notices).toEqual([{ severity: "NOTICE", code: "00000", message: "relation exists, skipping" }]);
    expect(sink.events.filter((e) => e.event !== "started" && e.event !== "completed").map((e) => e.event)).toEqual([
      "notification",
      "notification",
      "notice",
      "parameterStatus",
    ]);
  });

  it("tracks standard_conforming_strings for splitting", () => {
    const { sink, frontend, backend } = observe();
    backend(encodeParameterStatus({ name: "standard_conforming_strings", value: "off" }));
    frontend(encodeQuery({ query: "SELECT 'a\\'; b'; SELECT 2" }));
    expect(sink.started.map((c) => c.text)).toEqual(["SELECT 'a\\'; b'", "SELECT 2"]);
  });

  it("a FATAL error while idle goes to serverError; Terminate is reported; end() interrupts what is left", () => {
    const { sink, observer, frontend, backend } = observe();
    backend(encodeErrorResponse({ fields: { severity: "FATAL", code: "57P01", message: "terminating connection due to administrator command" } }));
    frontend(encodeQuery({ query: "SELECT pg_sleep(10)" }));
    frontend(encodeTerminate());
    observer.end();
    expect(sink.events.map((e) => e.event)).toEqual(["serverError", "started", "terminated", "completed"]);
    expect(sink.completed[0]?.outcome).toMatchObject({ status: "interrupted" });
    expect(sink.completed[0]?.outcome.transactionStatus).toBeUndefined();
    frontend(encodeQuery({ query: "SELECT 'after the end'" })); // ignored
    expect(sink.started).toHaveLength(1);
  });

  it("rejects an invalid frontend message and stays failed", () => {
    const { frontend } = observe();
    expect(() => frontend(new Uint8Array([0x70, 0, 0, 0, 4]))).toThrow(PostgresProtocolError);
    expect(() => frontend(encodeSync())).toThrow(PostgresProtocolError);
  });
});

describe("large messages", () => {
  it("counts a 100 MB result in DataRows without holding it", () => {
    const { sink, observer, frontend, backend } = observe();
    frontend(encodeQuery({ query: "SELECT big" }));
    const row = encodeDataRow({ values: [new Uint8Array(1_000_000)] });
    const chunk = 65536;
    let maxHeld = 0;
    for (let r = 0; r < 100; r++) {
      for (let at = 0; at < row.byteLength; at += chunk) {
        backend(row.subarray(at, at + chunk));
        maxHeld = Math.max(maxHeld, (observer as unknown as { be: { buffered: number } }).be.buffered);
      }
    }
    backend(C("SELECT 100"), Z());
    expect(sink.completed[0]?.outcome.rows).toBe(100);
    expect(maxHeld).toBeLessThanOrEqual(chunk);
  });

  it("records the capped parameters of a streamed multi-megabyte Bind", () => {
    const { sink, frontend } = observe({ maxParamBytes: 16 });
    const big = new Uint8Array(3_000_000).fill(0x41);
    const message = concat([
      encodeParse({ name: "", query: "INSERT INTO blobs VALUES ($1, $2)", paramTypes: [] }),
      encodeBind({ portal: "", statement: "", paramFormats: [], params: [big, text("small")], resultFormats: [] }),
      encodeExecute({ portal: "", maxRows: 0 }),
    ]);
    for (let at = 0; at < message.byteLength; at += 1000) frontend(message.subarray(at, at + 1000));
    expect(sink.started[0]?.params).toEqual([{ text: "A".repeat(16), bytes: 3_000_000, truncated: true }, "small"]);
  });
});

describe("rowsFromTag", () => {
  it("reads counts from the tags that carry one", () => {
    expect(rowsFromTag("INSERT 0 5")).toBe(5);
    expect(rowsFromTag("SELECT 3")).toBe(3);
    expect(rowsFromTag("MERGE 2")).toBe(2);
    expect(rowsFromTag("COPY 10")).toBe(10);
    expect(rowsFromTag("CREATE TABLE")).toBeUndefined();
    expect(rowsFromTag("SELECT")).toBeUndefined();
  });
});

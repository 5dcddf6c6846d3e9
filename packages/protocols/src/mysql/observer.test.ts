import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MysqlRecordingSink, tickingClock } from "../../test/helpers/mysql-observer-harness.js";
import { Capability, Command, ServerStatus } from "./constants.js";
import { MysqlProtocolError } from "./errors.js";
import { encodePacket } from "./framing.js";
import { MysqlObserver } from "./observer.js";
import { leadingKeyword, splitStatements } from "./sql-split.js";

const text = (s: string): number[] => [...Buffer.from(s)];
const u16 = (n: number): number[] => [n & 0xff, n >> 8];
const u32 = (n: number): number[] => [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, n >>> 24];
const packet = (sequenceId: number, ...payload: number[][]): Uint8Array => encodePacket(sequenceId, Uint8Array.from(payload.flat()));

/** A ColumnDefinition41 for a VARCHAR column named `name` (skipped by the observer, but well formed). */
const columnDefinition = (name: string): number[] => [
  ...[3, ...text("def")], 0, 0, 0, name.length, ...text(name), 0, 0x0c, ...u16(45), ...u32(80), 253, ...u16(0), 0, 0, 0,
];
const ok = (header: number, affected: number, status: number): number[] => [header, affected, 0, ...u16(status), ...u16(0)];
const err = (errno: number, sqlState: string, message: string): number[] => [0xff, ...u16(errno), 0x23, ...text(sqlState), ...text(message)];

function observer(capabilities: number, sink = new MysqlRecordingSink()) {
  return { sink, observer: new MysqlObserver(sink, { now: tickingClock(), capabilities }) };
}

describe("MysqlObserver on hand-made packets", () => {
  it("ends a result set at an OK packet with header 0xFE under CLIENT_DEPRECATE_EOF", () => {
    const { sink, observer: o } = observer(Capability.CLIENT_PROTOCOL_41 | Capability.CLIENT_DEPRECATE_EOF);
    o.client(packet(0, [Command.COM_QUERY], text("SELECT v FROM t")));
    o.server(packet(1, [1]));
    o.server(packet(2, columnDefinition("v")));
    // No EOF after the definitions; two rows (one starts with 0xFE as a 1-byte value would not: lenenc 0xFE needs ≥ 9 bytes).
    o.server(packet(3, [1, ...text("a")]));
    o.server(packet(4, [2, ...text("bb")]));
    o.server(packet(5, ok(0xfe, 0, ServerStatus.SERVER_STATUS_IN_TRANS)));
    expect(sink.completed).toMatchObject([{ command: { kind: "query", text: "SELECT v FROM t" }, outcome: { status: "ok", rows: 2, resultSets: 1, inTransaction: true } }]);
    expect(o.pendingCount).toBe(0);
  });

  it("needs the EOF after the column definitions without CLIENT_DEPRECATE_EOF", () => {
    const { sink, observer: o } = observer(Capability.CLIENT_PROTOCOL_41);
    o.client(packet(0, [Command.COM_QUERY], text("SELECT v FROM t")));
    o.server(Buffer.concat([packet(1, [1]), packet(2, columnDefinition("v")), packet(3, [0xfe, 0, 0, 2, 0]), packet(4, [1, ...text("a")]), packet(5, [0xfe, 0, 0, 2, 0])]));
    expect(sink.completed[0]?.outcome).toMatchObject({ status: "ok", rows: 1 });
  });

  it("lets the listener refuse COM_CHANGE_USER: recorded as refused, an ERR to send, never awaited", () => {
    const sink = new MysqlRecordingSink();
    sink.screen = (commands) => (commands[0]?.kind === "change_user" ? { errno: 1227, sqlState: "42000", message: "COM_CHANGE_USER is not allowed through the gateway" } : undefined);
    const { observer: o } = observer(Capability.CLIENT_PROTOCOL_41, sink);
    const ping = packet(0, [Command.COM_PING]);
    const refusal = o.client(Buffer.concat([packet(0, [Command.COM_CHANGE_USER], text("mallory"), [0]), ping]));
    expect(refusal).toMatchObject({ command: { kind: "change_user", user: "mallory" }, error: { errno: 1227 }, sequenceId: 1 });
    expect(Buffer.concat(refusal!.rest)).toEqual(Buffer.from(ping));
    expect(sink.completed[0]?.outcome).toMatchObject({ status: "refused", error: { errno: 1227, sqlState: "42000" } });
    expect(o.pendingCount).toBe(0);
    o.client(Buffer.concat(refusal!.rest));
    o.server(packet(1, ok(0, 0, 2)));
    expect(sink.completed.map((c) => [c.command.kind, c.outcome.status])).toEqual([["change_user", "refused"], ["ping", "ok"]]);
  });

  it("records COM_STMT_SEND_LONG_DATA as the parameter's value of the next execute, and CLOSE without a reply", () => {
    const { sink, observer: o } = observer(Capability.CLIENT_PROTOCOL_41);
    o.client(packet(0, [Command.COM_STMT_PREPARE], text("INSERT INTO t VALUES (?, ?)")));
    o.server(Buffer.concat([packet(1, [0, ...u32(7), ...u16(0), ...u16(2), 0, ...u16(0)]), packet(2, columnDefinition("?")), packet(3, columnDefinition("?")), packet(4, [0xfe, 0, 0, 2, 0])]));
    o.client(packet(0, [Command.COM_STMT_SEND_LONG_DATA], u32(7), u16(1), text("long ")));
    o.client(packet(0, [Command.COM_STMT_SEND_LONG_DATA], u32(7), u16(1), text("value")));
    // Parameter 0: LONGLONG 42; parameter 1: its value came as long data (no bytes here).
    o.client(packet(0, [Command.COM_STMT_EXECUTE], u32(7), [0], u32(1), [0], [1], [8, 0, 252, 0], [42, 0, 0, 0, 0, 0, 0, 0]));
    o.server(packet(1, ok(0, 1, 2)));
    // Types are not resent: remembered from the previous execute; parameter 1 is NULL.
    o.client(packet(0, [Command.COM_STMT_EXECUTE], u32(7), [0], u32(1), [0b10], [0], [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]));
    o.server(packet(1, ok(0, 1, 2)));
    o.client(packet(0, [Command.COM_STMT_CLOSE], u32(7)));
    const done = sink.completed;
    expect(done.map((c) => c.command.kind)).toEqual(["prepare", "send_long_data", "send_long_data", "execute", "execute", "close_statement"]);
    expect(done[3]!.command).toMatchObject({ statementId: 7, params: ["42", "long value"], paramCount: 2 });
    expect(done[4]!.command.params).toEqual(["-1", null]);
    expect(done[5]!.command).toMatchObject({ text: "INSERT INTO t VALUES (?, ?)", statementId: 7 });
    expect(o.pendingCount).toBe(0);
  });

  it("records COM_FIELD_LIST until its EOF, and refuses a command packet whose sequence id is not 0", () => {
    const { sink, observer: o } = observer(Capability.CLIENT_PROTOCOL_41);
    o.client(packet(0, [Command.COM_FIELD_LIST], text("t"), [0]));
    o.server(Buffer.concat([packet(1, columnDefinition("a")), packet(2, columnDefinition("b")), packet(3, [0xfe, 0, 0, 2, 0])]));
    expect(sink.completed[0]).toMatchObject({ command: { kind: "field_list", text: "t" }, outcome: { status: "ok" } });
    expect(() => o.client(packet(3, [Command.COM_PING]))).toThrow(expect.objectContaining({ code: "PACKETS_OUT_OF_ORDER" }));
    // Broken for good: the same error again, whatever comes next.
    expect(() => o.client(packet(0, [Command.COM_PING]))).toThrow(expect.objectContaining({ code: "PACKETS_OUT_OF_ORDER" }));
  });

  it("reports an ERR outside any command, and interrupts what is running at end()", () => {
    const { sink, observer: o } = observer(Capability.CLIENT_PROTOCOL_41);
    o.server(packet(0, err(1927, "70100", "Connection was killed")));
    o.client(packet(0, [Command.COM_QUERY], text("SELECT SLEEP(10)")));
    o.end();
    expect(sink.events[0]).toEqual({ event: "serverError", error: { errno: 1927, sqlState: "70100", message: "Connection was killed" } });
    expect(sink.completed[0]?.outcome.status).toBe("interrupted");
  });

  it("gives only coded protocol errors for random and truncated packets", () => {
    const caps = Capability.CLIENT_PROTOCOL_41 | Capability.CLIENT_MULTI_STATEMENTS;
    const valid = [
      packet(0, [Command.COM_QUERY], text("SELECT 1; SELECT 2")),
      packet(0, [Command.COM_STMT_EXECUTE], u32(1), [0], u32(1)),
      packet(0, [Command.COM_STMT_PREPARE], text("SELECT ?")),
      packet(1, [1]),
      packet(2, columnDefinition("v")),
      packet(1, [0, ...u32(1), ...u16(1), ...u16(1), 0, 0, 0]),
    ];
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            toServer: fc.boolean(),
            bytes: fc.oneof(
              fc.uint8Array({ maxLength: 40 }),
              fc.constantFrom(...valid),
              fc.tuple(fc.constantFrom(...valid), fc.nat()).map(([p, n]) => p.subarray(0, n % p.byteLength)),
              // Well-framed packets with random payloads reach the decoders, not just the framing.
              fc.tuple(fc.nat(3), fc.uint8Array({ minLength: 1, maxLength: 30 })).map(([sequenceId, payload]) => packet(sequenceId, [...payload])),
            ),
          }),
          { maxLength: 16 },
        ),
        (steps) => {
          const { observer: o } = observer(caps);
          try {
            for (const { toServer, bytes } of steps) (toServer ? o.client(bytes) : o.server(bytes));
            o.end();
          } catch (error) {
            expect(error).toBeInstanceOf(MysqlProtocolError);
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe("splitStatements", () => {
  it("splits at semicolons outside strings, identifiers and comments", () => {
    expect(splitStatements("SELECT 'a;b', \"c;d\", `e;f`; -- x;y\nSELECT 2 # z;\n; /* ; */ SELECT 3;")).toEqual([
      "SELECT 'a;b', \"c;d\", `e;f`",
      "-- x;y\nSELECT 2 # z;",
      "/* ; */ SELECT 3",
    ]);
    expect(splitStatements("SELECT 'it\\'s;' ; SELECT 'x''; y'")).toEqual(["SELECT 'it\\'s;'", "SELECT 'x''; y'"]);
    expect(splitStatements("SELECT 'a\\';' ; SELECT 1", { backslashEscapes: false })).toEqual(["SELECT 'a\\'", "' ; SELECT 1"]);
    expect(splitStatements("SELECT 1--2; SELECT 3")).toEqual(["SELECT 1--2", "SELECT 3"]);
    expect(splitStatements("  ")).toEqual([""]);
    expect(splitStatements("SELECT 1; SELECT 2; SELECT 3", { max: 2 })).toEqual(["SELECT 1", "SELECT 2; SELECT 3"]);
  });

  it("finds the leading keyword after comments and parentheses", () => {
    expect(leadingKeyword("/* hi */ -- x\n (call p())")).toBe("CALL");
    expect(leadingKeyword("# c\nkill query 5")).toBe("KILL");
  });
});

import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { canonicalEvent, canonicalHeader, canonicalJson, canonicalSeal } from "./canonical.js";
import { eventHash, genesisHash } from "./chain.js";

describe("canonical encoding", () => {
  it("is RFC 8785 JSON: sorted keys, no whitespace, undefined members left out, non-finite numbers null", () => {
    expect(canonicalJson({ b: 1, a: [true, null, "x"], c: undefined, "é": 2, B: 3 })).toBe('{"B":3,"a":[true,null,"x"],"b":1,"é":2}');
    expect(canonicalJson({ z: { y: 1, x: [{ b: 2, a: 1 }] } })).toBe('{"z":{"x":[{"a":1,"b":2}],"y":1}}');
    expect(canonicalJson([undefined, Number.NaN, Number.POSITIVE_INFINITY, -0, 1e21, 0.1])).toBe("[null,null,null,0,1e+21,0.1]");
    expect(canonicalJson("tab\t\"quote\" \u0001 é 🙂")).toBe(JSON.stringify("tab\t\"quote\" \u0001 é 🙂"));
    expect(() => canonicalJson({ n: 10n })).toThrow(TypeError);
  });

  it("agrees with JSON.stringify after a round trip through JSON, whatever the key order (what the store gives back)", () => {
    const value = { details: { rows: 5, tag: "SELECT 5", nested: { z: 1, a: [1, "two", { d: null, c: false }] } }, params: ["1", null, { hex: "00ff", bytes: 2 }] };
    const reordered = JSON.parse(JSON.stringify({ params: value.params, details: { nested: value.details.nested, tag: "SELECT 5", rows: 5 } })) as unknown;
    expect(canonicalJson(reordered)).toBe(canonicalJson(value));
  });

  it("encodes an event as the documented array, and hashes prev_hash bytes then that text", () => {
    const event = {
      sessionId: "s-1",
      seq: 2,
      timeUs: 1_709_294_400_123_456,
      kind: "query",
      command: "select $1",
      params: ["42"],
      outcome: "ok" as const,
      details: { tag: "SELECT 1", rows: 1 },
      durationUs: 812,
    };
    const text = '["gatehouse-event-v1","s-1",2,1709294400123456,"query","select $1",["42"],"ok",{"rows":1,"tag":"SELECT 1"},812]';
    expect(canonicalEvent(event)).toBe(text);
    // Missing fields are null, not left out: the array's positions are the fields.
    expect(canonicalEvent({ sessionId: "s-1", seq: 1, timeUs: 5, kind: "connect" })).toBe('["gatehouse-event-v1","s-1",1,5,"connect",null,null,null,null,null]');
    const prev = "ab".repeat(32);
    const expected = createHash("sha256").update(Buffer.concat([Buffer.from(prev, "hex"), Buffer.from(text, "utf8")])).digest("hex");
    expect(eventHash(prev, event)).toBe(expected);
  });

  it("encodes the session header and the seal as documented", () => {
    const session = { id: "s-1", identity: { name: "agent", groups: ["sre"] }, connection: "app", protocol: "postgres", startedUs: 7, clientAddress: "127.0.0.1" };
    const header = '["gatehouse-session-v1","s-1","agent",null,null,["sre"],null,"app","postgres",null,"127.0.0.1",null,7]';
    expect(canonicalHeader(session)).toBe(header);
    expect(genesisHash(session)).toBe(createHash("sha256").update(header).digest("hex"));
    // What the store reads back (nulls and [] instead of missing) encodes the same.
    expect(canonicalHeader({ ...session, identity: { name: "agent", issuer: null, subject: null, groups: ["sre"], method: null }, connector: null, clientApplication: null })).toBe(header);
    expect(canonicalSeal({ sessionId: "s-1", genesis: "00", eventCount: 3, finalHash: "ff", endedUs: 9, endReason: "client_closed" })).toBe(
      '["gatehouse-seal-v1","s-1","00",3,"ff",9,"client_closed"]',
    );
  });
});

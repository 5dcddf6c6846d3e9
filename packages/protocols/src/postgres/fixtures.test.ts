/**
 * Real traffic captured by test/real-traffic.test.ts (psql, pgbench through a gateway, to
 * Postgres 15): the parsers and the observer give the same result however the bytes are cut.
 */
import { describe, expect, it } from "vitest";
import { concat, readMessages } from "../../test/helpers/frames.js";
import { FIXTURES, loadFixture } from "../../test/helpers/fixtures.js";
import { replay } from "../../test/helpers/replay.js";
import { decodeBackendMessage } from "./backend-messages.js";
import { DEFAULT_BACKEND_LIMITS } from "./framing.js";
import { decodeFrontendMessage } from "./frontend-messages.js";

describe.each(FIXTURES)("fixture %s", (name) => {
  const fixture = loadFixture(name);
  const frontend = concat(fixture.chunks.filter((c) => c.from === "frontend").map((c) => c.bytes));
  const backend = concat(fixture.chunks.filter((c) => c.from === "backend").map((c) => c.bytes));

  it("parses into messages that all decode, the same at every split offset", () => {
    for (const [stream, options, decode] of [
      [frontend, {}, decodeFrontendMessage],
      [backend, { limits: DEFAULT_BACKEND_LIMITS }, decodeBackendMessage],
    ] as const) {
      const whole = readMessages([stream], options);
      expect(whole.length).toBeGreaterThan(0);
      for (const m of whole) decode(m.code, m.body);
      const signature = JSON.stringify(whole.map((m) => [m.code, Buffer.from(m.body).toString("base64")]));
      for (let at = 1; at < stream.byteLength; at++) {
        const split = readMessages([stream.subarray(0, at), stream.subarray(at)], options);
        expect(JSON.stringify(split.map((m) => [m.code, Buffer.from(m.body).toString("base64")]))).toBe(signature);
      }
    }
  });

  it("gives the same audit events when every chunk is cut at any offset", () => {
    const reference = replay(fixture);
    const completed = reference.filter((e) => e.event === "completed");
    expect(completed.length).toBeGreaterThan(0);
    expect(reference.filter((e) => e.event === "started")).toHaveLength(completed.length);
    const longest = Math.max(...fixture.chunks.map((c) => c.bytes.byteLength));
    for (let cut = 0; cut < longest; cut++) expect(replay(fixture, cut)).toEqual(reference);
  });
});

describe("what the fixtures record", () => {
  const completed = (name: (typeof FIXTURES)[number]) =>
    replay(loadFixture(name)).flatMap((e) => (e.event === "completed" ? [e] : []));

  it("pgbench -M extended / prepared: 3 tpcb-like transactions, every statement ok with its parameters", () => {
    for (const name of ["pgbench-extended", "pgbench-prepared"] as const) {
      const events = completed(name);
      expect(events).toHaveLength(21);
      expect(events.every((e) => e.outcome.status === "ok" && e.command.kind === "execute")).toBe(true);
      expect(events.filter((e) => e.outcome.tag === "COMMIT").map((e) => e.outcome.transactionStatus)).toEqual(["idle", "idle", "idle"]);
      const insert = events.find((e) => e.command.text.startsWith("INSERT INTO pgbench_history"));
      expect(insert?.command.params).toHaveLength(4);
      expect(insert?.outcome.tag).toBe("INSERT 0 1");
    }
    expect(new Set(completed("pgbench-prepared").map((e) => e.command.statement)).size).toBe(7);
  });

  it("psql \\copy: 50 rows in, 10 rows out", () => {
    const copies = completed("psql-copy").filter((e) => e.command.kind === "copy");
    expect(copies.map((e) => [e.outcome.copy?.direction, e.outcome.rows])).toEqual([
      ["in", 50],
      ["out", 10],
    ]);
  });

  it("psql -c with four statements: ok, ok, error 22012, skipped", () => {
    expect(completed("psql-simple").map((e) => e.outcome.status)).toEqual(["ok", "ok", "error", "skipped"]);
  });
});

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { SessionEvent, SessionRecord } from "@gatehouse/store";
import { afterAll, describe, expect, it } from "vitest";
import { eventHash, genesisHash } from "./chain.js";
import { loadOrCreateSigningKey, parsePublicKeys, signSeal } from "./signing.js";
import { verifySession } from "./verify.js";

const dir = mkdtempSync(join(tmpdir(), "gatehouse-verify-"));
const other = mkdtempSync(join(tmpdir(), "gatehouse-verify-other-"));
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  rmSync(other, { recursive: true, force: true });
});
const { key } = loadOrCreateSigningKey(dir);
const keys = parsePublicKeys(key.publicKeyPem, "test");

/** A session of `n` events chained and sealed the way the recorder does it (or left open). */
function recorded(n: number, options: { open?: boolean; signer?: typeof key } = {}): { session: SessionRecord; events: SessionEvent[] } {
  const base = { id: `s-${n}`, identity: { name: "agent", issuer: null, subject: null, groups: [], method: "access_key" as const }, connection: "app", protocol: "postgres", connector: "dc1", clientAddress: "10.0.0.1", clientApplication: "psql", startedUs: 1_000_000 };
  const genesis = genesisHash(base);
  let prev = genesis;
  const events: SessionEvent[] = [];
  for (let seq = 1; seq <= n; seq++) {
    const e: SessionEvent = { sessionId: base.id, seq, timeUs: 1_000_000 + seq, kind: "query", command: `select ${seq}`, params: null, outcome: "ok", details: { rows: seq }, durationUs: 10 };
    e.prevHash = prev;
    e.hash = eventHash(prev, e);
    prev = e.hash;
    events.push(e);
  }
  const endedUs = 2_000_000;
  const seal = options.open ? null : signSeal(options.signer ?? key, { sessionId: base.id, genesis, eventCount: n, finalHash: prev, endedUs, endReason: "client_closed" });
  return {
    session: { ...base, endedUs: options.open ? null : endedUs, endReason: options.open ? null : "client_closed", eventCount: n, finalHash: options.open ? null : prev, sealSignature: seal },
    events,
  };
}

const failureOf = (r: { session: SessionRecord; events: SessionEvent[] }) => verifySession(r.session, r.events, keys).failure;

describe("verifySession", () => {
  it("passes an untouched session, an empty one, and an open one", () => {
    for (const r of [recorded(5), recorded(0), recorded(3, { open: true })]) {
      const verdict = verifySession(r.session, r.events, keys);
      expect(verdict).toMatchObject({ ok: true, events: r.events.length });
    }
    expect(verifySession(recorded(3, { open: true }).session, recorded(3, { open: true }).events, keys).open).toBe(true);
  });

  it("names an edited event", () => {
    const r = recorded(5);
    r.events[2] = { ...r.events[2]!, command: "drop table users" };
    expect(failureOf(r)).toMatchObject({ sessionId: "s-5", seq: 3, reason: "edited" });
    const p = recorded(5);
    p.events[1] = { ...p.events[1]!, details: { rows: 999 } };
    expect(failureOf(p)).toMatchObject({ seq: 2, reason: "edited" });
  });

  it("names a deleted event: in the middle, the last one, and one deleted with the rest renumbered", () => {
    const middle = recorded(5);
    middle.events.splice(1, 1);
    expect(failureOf(middle)).toMatchObject({ seq: 2, reason: "deleted" });
    const last = recorded(5);
    last.events.pop();
    expect(failureOf(last)).toMatchObject({ seq: 5, reason: "deleted" });
    const renumbered = recorded(5);
    renumbered.events.splice(1, 1);
    renumbered.events = renumbered.events.map((e, i) => ({ ...e, seq: i + 1 }));
    expect(failureOf(renumbered)).toMatchObject({ seq: 2, reason: "deleted" });
  });

  it("names two swapped events as reordered", () => {
    const r = recorded(5);
    const [a, b] = [r.events[1]!, r.events[2]!];
    r.events[1] = { ...b, seq: 2 };
    r.events[2] = { ...a, seq: 3 };
    expect(failureOf(r)).toMatchObject({ seq: 2, reason: "reordered" });
    const first = recorded(3);
    const [x, y] = [first.events[0]!, first.events[1]!];
    first.events[0] = { ...y, seq: 1 };
    first.events[1] = { ...x, seq: 2 };
    expect(failureOf(first)).toMatchObject({ seq: 1, reason: "reordered" });
  });

  it("names inserted events: a duplicate seq, one appended after the seal, one chained in the middle", () => {
    const dup = recorded(4);
    dup.events.splice(2, 0, { ...dup.events[1]!, command: "select 'extra'" });
    expect(failureOf(dup)).toMatchObject({ seq: 2, reason: "inserted" });

    const appended = recorded(3);
    const last = appended.events[2]!;
    const extra: SessionEvent = { ...last, seq: 4, command: "select 'late'", prevHash: last.hash! };
    extra.hash = eventHash(last.hash!, extra);
    appended.events.push(extra);
    expect(failureOf(appended)).toMatchObject({ seq: 4, reason: "inserted" });

    // A forger chains a new event after seq 1, renumbers the rest without re-hashing them.
    const middle = recorded(4);
    const forged: SessionEvent = { ...middle.events[1]!, command: "select 'forged'", prevHash: middle.events[0]!.hash! };
    forged.hash = eventHash(forged.prevHash!, forged);
    middle.events = [middle.events[0]!, forged, ...middle.events.slice(1).map((e) => ({ ...e, seq: e.seq + 1 }))];
    expect(failureOf(middle)).toMatchObject({ seq: 2, reason: "inserted" });
  });

  it("names an event injected by hand as inserted: without a hash, with a made-up hash, in the middle or after the seal", () => {
    const junk = "ab".repeat(32);
    const inject = (r: ReturnType<typeof recorded>, at: number, fields: Partial<SessionEvent>) => {
      const injected: SessionEvent = { ...r.events[0]!, seq: at, command: "select 'injected'", prevHash: null, hash: null, ...fields };
      r.events = [...r.events.slice(0, at - 1), injected, ...r.events.slice(at - 1).map((e) => ({ ...e, seq: e.seq + 1 }))];
      return r;
    };
    for (const fields of [{}, { hash: junk, prevHash: junk }]) {
      // In the middle, the rest renumbered to make room.
      expect(failureOf(inject(recorded(4), 3, fields))).toMatchObject({ seq: 3, reason: "inserted", message: expect.stringContaining("seq 4 was chained right after seq 2") });
      // As the first event.
      expect(failureOf(inject(recorded(3), 1, fields))).toMatchObject({ seq: 1, reason: "inserted" });
      // After the last, in a sealed session and in an open one.
      expect(failureOf(inject(recorded(3), 4, fields))).toMatchObject({ seq: 4, reason: "inserted", message: expect.stringContaining("sealed after seq 3") });
    }
    // Linked to the last good event but with a made-up hash: inserted, not edited.
    const linked = recorded(3);
    expect(failureOf(inject(linked, 2, { prevHash: linked.events[0]!.hash!, hash: junk }))).toMatchObject({ seq: 2, reason: "inserted" });
    // A session from before the chain (no hashes anywhere, no seal) is still only unsealed.
    const legacy = recorded(2, { open: true });
    legacy.events = legacy.events.map((e) => ({ ...e, prevHash: null, hash: null }));
    expect(failureOf(legacy)).toMatchObject({ seq: 1, reason: "unsealed" });
  });

  it("catches a session row that was changed, an end without a seal, a forged seal, a rewritten chain, an unknown key", () => {
    const header = recorded(2);
    header.session = { ...header.session, identity: { ...header.session.identity, name: "someone-else" } };
    expect(failureOf(header)).toMatchObject({ seq: null, reason: "edited" });

    const unsealed = recorded(2);
    unsealed.session = { ...unsealed.session, sealSignature: null };
    expect(failureOf(unsealed)).toMatchObject({ seq: null, reason: "unsealed" });

    const reason = recorded(2);
    reason.session = { ...reason.session, endReason: "client_closed_quietly" };
    expect(failureOf(reason)).toMatchObject({ seq: null, reason: "bad_seal" });

    // Every event rewritten and re-hashed consistently: only the seal can tell.
    const rewritten = recorded(2);
    let prev = genesisHash(rewritten.session);
    rewritten.events = rewritten.events.map((e) => {
      const changed: SessionEvent = { ...e, command: `${e.command} -- rewritten`, prevHash: prev };
      changed.hash = eventHash(prev, changed);
      prev = changed.hash;
      return changed;
    });
    expect(failureOf(rewritten)).toMatchObject({ seq: null, reason: "edited" });

    const foreign = recorded(2, { signer: loadOrCreateSigningKey(other).key });
    expect(failureOf(foreign)).toMatchObject({ seq: null, reason: "unknown_key" });
  });

  it("checks an open session's count too", () => {
    const r = recorded(3, { open: true });
    r.events.pop();
    expect(failureOf(r)).toMatchObject({ seq: 3, reason: "deleted" });
  });
});

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Checkpoint, SessionRecord } from "@gatehouse/store";
import { afterAll, describe, expect, it } from "vitest";
import { genesisHash } from "./chain.js";
import { CheckpointChain } from "./checkpoints.js";
import { formatCheckpointFile, parseCheckpointFile } from "./checkpoint-file.js";
import { loadOrCreateSigningKey, parsePublicKeys } from "./signing.js";
import { verifyCheckpoints, type CheckpointInputs } from "./verify-checkpoints.js";

const dir = mkdtempSync(join(tmpdir(), "gatehouse-checkpoints-"));
const otherDir = mkdtempSync(join(tmpdir(), "gatehouse-checkpoints-other-"));
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  rmSync(otherDir, { recursive: true, force: true });
});
const { key } = loadOrCreateSigningKey(dir);
const keys = parsePublicKeys(key.publicKeyPem, "test");
const DAY = 86_400_000_000;
const T0 = Date.UTC(2026, 0, 1) * 1000;

/** A session row as the store would hold it: ended (with a seal) or open. */
function row(id: string, startedUs: number, end?: { endedUs: number; eventCount: number; finalHash: string }): SessionRecord {
  return {
    id,
    identity: { name: "agent" },
    connection: "app",
    protocol: "postgres",
    startedUs,
    endedUs: end?.endedUs ?? null,
    endReason: end ? "client_closed" : null,
    eventCount: end?.eventCount ?? 0,
    finalHash: end?.finalHash ?? null,
    sealSignature: end ? `ed25519:${key.keyId}:x` : null,
  };
}

/** A gateway's history, as its recorder writes it: opens, seals, states, a retention cut. */
function history() {
  const chain = new CheckpointChain(key, undefined);
  const written: Checkpoint[] = [];
  const sessions = new Map<string, SessionRecord>();
  const add = (c: Checkpoint) => {
    chain.advance(c);
    written.push(c);
    return c;
  };
  const open = (id: string, at: number) => {
    sessions.set(id, row(id, at));
    add(chain.next("open", id, { genesis: genesisHash(row(id, at)), startedUs: at }, at));
  };
  const seal = (id: string, at: number) => {
    const finalHash = "cd".repeat(32);
    add(chain.next("seal", id, { eventCount: 3, finalHash, endedUs: at, endReason: "client_closed" }, at));
    sessions.set(id, row(id, sessions.get(id)!.startedUs, { endedUs: at, eventCount: 3, finalHash }));
  };
  open("old", T0);
  seal("old", T0 + 1_000);
  open("old-open", T0 + 2_000);
  open("recent", T0 + 40 * DAY);
  seal("recent", T0 + 40 * DAY + 1_000);
  add(chain.next("state", null, { live: ["old-open"] }, T0 + 41 * DAY));
  open("live", T0 + 42 * DAY);
  return { chain, written, sessions, add, open, seal };
}

const check = (overrides: Partial<CheckpointInputs> & Pick<CheckpointInputs, "stored" | "sessions">) => verifyCheckpoints({ complete: true, keys, ...overrides });
const failuresOf = (report: ReturnType<typeof verifyCheckpoints>) => [
  ...report.chainFailures.map((f) => [`chain ${f.seq}`, f.reason]),
  ...report.sessionFailures.map((f) => [f.sessionId, f.reason]),
];

describe("verifyCheckpoints", () => {
  it("passes a gateway's untouched history, and tells nothing from a session still live", () => {
    const { written, sessions } = history();
    const report = check({ stored: written, sessions });
    expect(failuresOf(report)).toEqual([]);
    expect(report).toMatchObject({ checkpoints: 7, gateways: [key.keyId], retained: 0 });
  });

  it("tells sessions removed under a signed retention cut from a session deleted by hand", () => {
    const { written, sessions, chain, add } = history();
    // Retention: sessions started before Feb 1 and ended by now may go.
    add(chain.next("retention", null, { cutoffUs: T0 + 35 * DAY, horizonUs: Date.UTC(2026, 1, 1) * 1000 }, T0 + 43 * DAY));
    sessions.delete("old");
    expect(failuresOf(check({ stored: written, sessions }))).toEqual([]);
    expect(check({ stored: written, sessions }).retained).toBe(1);
    // Deleted by hand: a recent session the cut does not cover, and an old one that never ended.
    sessions.delete("recent");
    sessions.delete("old-open");
    const report = check({ stored: written, sessions });
    expect(failuresOf(report)).toEqual([
      ["old-open", "missing"],
      ["recent", "missing"],
    ]);
    expect(report.sessionFailures[1]!.message).toMatch(/opened at 2026-02-10T.* and sealed, but not in the store, and no signed retention cut covers it: deleted by hand/);
  });

  it("finds a removed seal by its checkpoint, and, with that gone too, by a later state of the gateway", () => {
    const { written, sessions } = history();
    sessions.set("recent", row("recent", T0 + 40 * DAY));
    expect(failuresOf(check({ stored: written, sessions }))).toEqual([["recent", "unsealed"]]);
    // The seal checkpoint deleted as well: the gap shows, and the state checkpoint after it does
    // not have the session live.
    const withoutSeal = written.filter((c) => !(c.kind === "seal" && c.sessionId === "recent"));
    const report = check({ stored: withoutSeal, sessions });
    expect(failuresOf(report)).toEqual([
      ["chain 5", "cut"],
      ["recent", "unsealed"],
    ]);
    expect(report.sessionFailures[0]!.message).toMatch(/no longer has it live/);
  });

  it("names an edited, a re-linked and a foreign checkpoint", () => {
    const { written, sessions } = history();
    const edited = written.map((c) => (c.seq === 2 ? { ...c, details: { ...c.details, eventCount: 2 } } : c));
    expect(failuresOf(check({ stored: edited, sessions }))[0]).toEqual(["chain 2", "edited"]);
    const resigned = written.map((c) => (c.seq === 3 ? { ...c, signature: written[2]!.signature.replace(/.{4}$/, "AAA=") } : c));
    expect(failuresOf(check({ stored: resigned, sessions }))[0]).toEqual(["chain 3", "bad_seal"]);
    const other = parsePublicKeys(loadOrCreateSigningKey(otherDir).key.publicKeyPem, "other");
    expect(failuresOf(check({ stored: written, sessions, keys: other }))[0]).toEqual(["chain 1", "unknown_key"]);
  });

  it("holds the store to an export: a cut tail, a differing checkpoint, and an export that does not verify", () => {
    const { written, sessions } = history();
    const file = formatCheckpointFile(written, T0);
    const exported = parseCheckpointFile(file, "export.jsonl");
    expect(exported).toEqual(written);
    // The store lost its last three checkpoints (and the session they spoke of).
    sessions.delete("live");
    const report = check({ stored: written.slice(0, 5), sessions, exported });
    expect(failuresOf(report)).toEqual([
      ["chain 6", "cut"],
      ["live", "missing"],
    ]);
    expect(report.chainFailures[0]!.message).toBe("checkpoints 6–7 are in the exported copy but not in the store");
    // Without the export, the store's chain alone looks whole; the running gateway's head does not.
    expect(failuresOf(check({ stored: written.slice(0, 5), sessions }))).toEqual([]);
    expect(failuresOf(check({ stored: written.slice(0, 5), sessions, heads: [{ gateway: key.keyId, seq: 7, hash: written[6]!.hash }] }))).toEqual([["chain 6", "cut"]]);
    expect(failuresOf(check({ stored: written, sessions: history().sessions, heads: [{ gateway: key.keyId, seq: 7, hash: "ee".repeat(32) }] }))).toEqual([["chain 7", "edited"]]);
    // A forged line in the export is not trusted.
    const forged = exported.map((c) => (c.seq === 7 ? { ...c, sessionId: "ghost" } : c));
    expect(failuresOf(check({ stored: written, sessions: history().sessions, exported: forged }))).toEqual([["chain 7", "edited"]]);
    expect(() => parseCheckpointFile('{"format":"other"}\n', "x.jsonl")).toThrow(/x.jsonl:1: not a checkpoint export/);
    expect(() => parseCheckpointFile(`${file.split("\n")[0]}\n{"gateway":1}\n`, "x.jsonl")).toThrow(/x.jsonl:2: not a checkpoint/);
  });

  it("names a session whose row was changed after its gateway opened it, events or not", () => {
    const { written, sessions } = history();
    sessions.set("live", { ...sessions.get("live")!, identity: { name: "someone-else" } });
    expect(failuresOf(check({ stored: written, sessions }))).toEqual([["live", "edited"]]);
  });

  it("names a session no gateway opened, though its chain ran before and after it", () => {
    const { written, sessions } = history();
    sessions.set("forged", row("forged", T0 + 41 * DAY));
    sessions.set("from-before", row("from-before", T0 - DAY));
    expect(failuresOf(check({ stored: written, sessions }))).toEqual([["forged", "inserted"]]);
  });
});

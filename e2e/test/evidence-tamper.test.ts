import { generateKeyPairSync } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, queryStore, startEvidenceStack, type EvidenceStack } from "./evidence-support.js";

// Someone with write access to the store edits history after the fact: changes one event's text,
// deletes another, swaps two. `gatehouse verify` names each session, the first bad sequence
// number and what happened, and exits non-zero; an untouched session still verifies.
// Then the store's owner goes after whole sessions and seals (issue 9 §1): un-seals a session and
// trims its events, deletes a session, injects events, deletes checkpoints. The gateway's signed
// checkpoint chain, and an export of it kept elsewhere, show each.

let stack: EvidenceStack;

beforeAll(async () => {
  stack = await startEvidenceStack({ storeDatabase: true });
});

afterAll(async () => {
  await stack?.stop();
});

const store = <T extends pg.QueryResultRow>(sql: string, params: unknown[] = []) => queryStore<T>(stack.storeUrl!, sql, params);

describe("a tampered store", () => {
  it("verify names the edited, the deleted and the swapped events, session by session", async () => {
    const labels = ["edited", "deleted", "swapped", "untouched"];
    for (const label of labels) {
      const client = await stack.client(`tamper-${label}`);
      for (let i = 1; i <= 4; i++) await client.query(`select ${i} as step`);
      await client.end();
    }
    const ids = await eventually("four closed sessions in the store", async () => {
      const rows = await store<{ id: string; app: string }>("select id, client_application as app from sessions where ended_at is not null and client_application like 'tamper-%'");
      return rows.length === 4 ? Object.fromEntries(rows.map((r) => [r.app.slice("tamper-".length), r.id])) : undefined;
    });
    const keyFile = await stack.publicKeyFile();
    const verify = (args: string[]) => stack.cli(["verify", ...args, "--store-url", stack.storeUrl!, "--public-key", keyFile]);
    expect((await verify(["--all"])).code).toBe(0);

    // Events: 1 connect, 2-5 the four statements, 6 disconnect.
    const seqOf = async (id: string, command: string) =>
      Number((await store<{ seq: string }>("select seq from events where session_id = $1 and command = $2", [id, command]))[0]!.seq);
    const edited = await seqOf(ids.edited!, "select 2 as step");
    await store("update events set command = 'select 2 as harmless' where session_id = $1 and seq = $2", [ids.edited, edited]);
    const deleted = await seqOf(ids.deleted!, "select 3 as step");
    await store("delete from events where session_id = $1 and seq = $2", [ids.deleted, deleted]);
    const swapped = await seqOf(ids.swapped!, "select 1 as step");
    await store("update events set seq = case seq when $2::int8 then $2::int8 + 1 else $2::int8 end where session_id = $1 and seq in ($2::int8, $2::int8 + 1)", [ids.swapped, swapped]);

    const all = await verify(["--all"]);
    expect(all.code).toBe(1);
    const lines = all.stdout.trim().split("\n");
    expect(lines).toHaveLength(3);
    expect(lines).toEqual(
      expect.arrayContaining([
        expect.stringMatching(new RegExp(`^FAIL  ${ids.edited}  seq ${edited}  edited  `)),
        expect.stringMatching(new RegExp(`^FAIL  ${ids.deleted}  seq ${deleted}  deleted  `)),
        expect.stringMatching(new RegExp(`^FAIL  ${ids.swapped}  seq ${swapped}  reordered  `)),
      ]),
    );
    expect(all.stdout).not.toContain(ids.untouched);
    expect(all.stderr).toContain("4 sessions verified from the store: 1 ok, 3 failed");

    const json = JSON.parse((await verify(["--all", "--json"])).stdout) as { failures: { sessionId: string; seq: number; reason: string }[] };
    expect(json.failures.map((f) => [f.sessionId, f.seq, f.reason]).sort()).toEqual(
      [
        [ids.edited, edited, "edited"],
        [ids.deleted, deleted, "deleted"],
        [ids.swapped, swapped, "reordered"],
      ].sort(),
    );
    const one = await verify([ids.untouched!]);
    expect(one.code).toBe(0);
    // Checked against some other gateway's key, even the untouched seal does not pass.
    const otherKey = join(stack.dir, "other-public.pem");
    writeFileSync(otherKey, generateKeyPairSync("ed25519").publicKey.export({ type: "spki", format: "pem" }) as string);
    const wrongKey = await stack.cli(["verify", ids.untouched!, "--store-url", stack.storeUrl!, "--public-key", otherKey]);
    expect(wrongKey.code).toBe(1);
    expect(wrongKey.stdout).toMatch(new RegExp(`^FAIL  ${ids.untouched}  session  unknown_key  `));
  });

  it("verify catches an un-sealed session, a deleted one, injected events and a cut checkpoint chain", async () => {
    const labels = ["unsealed", "deleted", "nohash", "junk", "kept"];
    for (const label of labels) {
      const client = await stack.client(`owner-${label}`);
      for (let i = 1; i <= 4; i++) await client.query(`select ${i} as step`);
      await client.end();
    }
    const ids = await eventually("five closed sessions in the store, with their seal checkpoints", async () => {
      const rows = await store<{ id: string; app: string }>("select id, client_application as app from sessions where ended_at is not null and client_application like 'owner-%'");
      const seals = await store("select 1 from checkpoints where kind = 'seal' and session_id = any($1)", [rows.map((r) => r.id)]);
      return rows.length === 5 && seals.length === 5 ? Object.fromEntries(rows.map((r) => [r.app.slice("owner-".length), r.id])) : undefined;
    });
    const keyFile = await stack.publicKeyFile();
    const verify = (args: string[]) => stack.cli(["verify", ...args, "--store-url", stack.storeUrl!, "--public-key", keyFile]);
    expect((await verify(labels.map((l) => ids[l]!))).code).toBe(0);
    // An export of the checkpoints, kept where the store's owner cannot write.
    const exportFile = join(stack.dir, "checkpoints.jsonl");
    const exported = await stack.cli(["checkpoints", "export", "--out", exportFile, "--store-url", stack.storeUrl!]);
    expect(exported.code).toBe(0);
    expect(exported.stderr).toMatch(/checkpoints \(\d+ new from the store\)/);

    // Events: 1 connect, 2-5 the four statements, 6 disconnect.
    // 1. Un-seal a session, delete its later events and fix event_count: it looks open and intact.
    await store("update sessions set ended_at = null, end_reason = null, final_hash = null, seal_signature = null where id = $1", [ids.unsealed]);
    await store("delete from events where session_id = $1 and seq > 3", [ids.unsealed]);
    await store("update sessions set event_count = 3 where id = $1", [ids.unsealed]);
    const unsealedAlone = await verify([ids.unsealed!]);
    expect(unsealedAlone.code).toBe(1);
    expect(unsealedAlone.stdout).toMatch(new RegExp(`^FAIL  ${ids.unsealed}  session  unsealed  sealed at .* with 6 events, but open in the store: its seal was removed`, "m"));
    // 2. Delete a whole session.
    await store("delete from events where session_id = $1", [ids.deleted]);
    await store("delete from sessions where id = $1", [ids.deleted]);
    // 3. Inject an event without a hash in the middle (the rest renumbered, the count fixed), and
    //    one with a made-up hash after the last.
    await store("update events set seq = seq + 1000 where session_id = $1 and seq >= 3", [ids.nohash]);
    await store("update events set seq = seq - 999 where session_id = $1 and seq >= 1000", [ids.nohash]);
    await store("insert into events (session_id, seq, ts, kind, command, outcome) select session_id, 3, ts, 'query', 'select 0', 'ok' from events where session_id = $1 and seq = 2", [ids.nohash]);
    await store("update sessions set event_count = event_count + 1 where id = $1", [ids.nohash]);
    await store(
      "insert into events (session_id, seq, ts, kind, command, outcome, prev_hash, hash) select session_id, 7, ts, 'query', 'select 0', 'ok', hash, repeat('ab', 32) from events where session_id = $1 and seq = 6",
      [ids.junk],
    );

    const all = await verify(["--all"]);
    expect(all.code).toBe(1);
    const line = (id: string) => all.stdout.split("\n").find((l) => l.includes(id)) ?? "";
    expect(line(ids.unsealed!)).toMatch(new RegExp(`^FAIL  ${ids.unsealed}  session  unsealed  .*its seal was removed`));
    expect(line(ids.deleted!)).toMatch(new RegExp(`^FAIL  ${ids.deleted}  session  missing  opened at .* and sealed, but not in the store, and no signed retention cut covers it: deleted by hand`));
    expect(line(ids.nohash!)).toMatch(new RegExp(`^FAIL  ${ids.nohash}  seq 3  inserted  seq 3 was never in the chain \\(no hash\\): seq 4 was chained right after seq 2`));
    expect(line(ids.junk!)).toMatch(new RegExp(`^FAIL  ${ids.junk}  seq 7  inserted  the session was sealed after seq 6`));
    expect(all.stdout).not.toContain(ids.kept);
    expect(all.stderr).toMatch(/, 1 deleted from the store; \d+ checkpoints of 1 gateway checked/);

    // 4. Delete checkpoints: the un-sealed session's seal (a gap in the chain), and the chain's tail.
    const [seal] = await store<{ seq: string }>("select seq from checkpoints where kind = 'seal' and session_id = $1", [ids.unsealed]);
    const sealSeq = Number(seal!.seq);
    await store("delete from checkpoints where kind = 'seal' and session_id = $1", [ids.unsealed]);
    const exportedSeqs = readFileSync(exportFile, "utf8").trim().split("\n").slice(1).map((l) => (JSON.parse(l) as { seq: number }).seq);
    const lastExported = Math.max(...exportedSeqs);
    await store("delete from checkpoints where seq >= $1", [lastExported - 1]);
    const cut = await verify(["--all", "--checkpoints", exportFile]);
    expect(cut.code).toBe(1);
    expect(cut.stdout).toMatch(new RegExp(`^FAIL  checkpoints [0-9a-f]{16}  seq ${sealSeq}  cut  checkpoint ${sealSeq} is missing`, "m"));
    expect(cut.stdout).toMatch(new RegExp(`^FAIL  checkpoints [0-9a-f]{16}  seq ${lastExported - 1}  cut  checkpoints ${lastExported - 1}–${lastExported} are in the exported copy but not in the store`, "m"));
    // The seal is gone from the store's chain, but the export still holds it.
    expect(cut.stdout).toMatch(new RegExp(`^FAIL  ${ids.unsealed}  session  unsealed  `, "m"));
    // Without the export, the running gateway (asked through its API) knows where its chain ends.
    const live = await stack.cli(["verify", "--all", "--public-key", keyFile]);
    expect(live.code).toBe(1);
    expect(live.stdout).toMatch(/^FAIL  checkpoints [0-9a-f]{16}  seq \d+  cut  the store's chain ends at \d+; the running gateway's is at \d+/m);
  });
});

import { generateKeyPairSync } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, queryStore, startEvidenceStack, type EvidenceStack } from "./evidence-support.js";

// Someone with write access to the store edits history after the fact: changes one event's text,
// deletes another, swaps two. `gatehouse verify` names each session, the first bad sequence
// number and what happened, and exits non-zero; an untouched session still verifies.

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
});

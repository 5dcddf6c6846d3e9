import { openStore } from "@gatehouse/store";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, startEvidenceStack, startStorePostgres, type EvidenceStack, type StorePostgres } from "./evidence-support.js";

// Strict recording with a small journal and the store away: the journal fills, the next command
// is refused with 53100 (disk full) and never reaches the resource; nothing that ran is missing
// from the record; once the store is back the journal empties and recording resumes.

let storePg: StorePostgres;
let stack: EvidenceStack;
let storeUrl: string;

beforeAll(async () => {
  storePg = await startStorePostgres();
  const admin = await storePg.admin();
  await admin.query("create database gatehouse");
  await admin.end();
  storeUrl = storePg.url("gatehouse");
  stack = await startEvidenceStack({ storeUrl, recording: { mode: "strict", journal: { maxBytes: 128 * 1024, segmentBytes: 32 * 1024 } } });
});

afterAll(async () => {
  await stack?.stop();
  storePg?.destroy();
});

describe("a full journal in strict mode", () => {
  it("refuses the command with 53100, lets nothing unrecorded reach the resource, and recovers when space returns", async () => {
    const resource = await stack.resource.client(stack.db.name);
    const client = await stack.client("full");
    await client.query("insert into imports (id, note) values (0, 'before the outage')");
    storePg.stop();

    let succeeded = 0;
    let refusal: (Error & { code?: string; severity?: string }) | undefined;
    for (let i = 1; i <= 10_000 && !refusal; i++) {
      try {
        await client.query(`insert into imports (id, note) values (${i}, '${"n".repeat(200)}')`);
        succeeded++;
      } catch (error) {
        refusal = error as Error & { code?: string };
      }
    }
    expect(refusal).toMatchObject({ code: "53100", severity: "FATAL" });
    expect(refusal!.message).toContain("journal is full");
    expect(succeeded).toBeGreaterThan(10);
    // Exactly the inserts the client saw succeed reached the resource: the refused one did not run.
    const { rows } = await resource.query<{ n: string }>("select count(*) as n from imports");
    expect(Number(rows[0]!.n)).toBe(succeeded + 1);
    await resource.end();
    await client.end().catch(() => undefined);

    // Space returns: the store is back, the journal is shipped and emptied, new sessions record again.
    storePg.start();
    await stack.gateway.proc.waitFor((l) => l.msg === "the store is back; shipping the journal again", 60_000);
    const after = await eventually("a new session accepted", async () => {
      const c = await stack.client("after-full");
      return c;
    });
    const { rows: answer } = await after.query<{ ok: number }>("select 1 as ok");
    expect(answer).toEqual([{ ok: 1 }]);
    await after.end();

    const owner = await openStore({ url: storeUrl });
    try {
      const sessions = await owner.sessions.list({ limit: 100 });
      const full = sessions.find((s) => s.clientApplication === "full")!;
      expect(full.endReason).toBe("recording_unavailable");
      const recorded = (await owner.sessions.get(full.id))!.events.filter((e) => e.kind === "query");
      // Every insert that ran is in the record; the refused one is not.
      expect(recorded).toHaveLength(succeeded + 1);
      expect(recorded.at(-1)!.command).toBe(`insert into imports (id, note) values (${succeeded}, '${"n".repeat(200)}')`);
      await eventually("the new session in the store", async () => ((await owner.sessions.list({ limit: 100 })).find((s) => s.clientApplication === "after-full" && s.endedUs !== null) ? true : undefined));
    } finally {
      await owner.close();
    }
    const verify = await stack.cli(["verify", "--all", "--store-url", storeUrl, "--public-key", await stack.publicKeyFile()]);
    expect(verify.code).toBe(0);
  });
});

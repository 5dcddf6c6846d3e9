import { closeSync, openSync, readdirSync, readSync, statSync, writeSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, queryStore, startEvidenceStack, type EvidenceStack } from "./evidence-support.js";

// `kill -9` the gateway in the middle of a session, with a statement running and half an entry
// left at the end of its journal. The next start drops the torn entry, closes the session as
// `gateway_restart` with the running statement recorded as interrupted, and it all verifies.

let stack: EvidenceStack;

beforeAll(async () => {
  stack = await startEvidenceStack({ storeDatabase: true });
});

afterAll(async () => {
  await stack?.stop();
});

const store = <T extends pg.QueryResultRow>(sql: string, params: unknown[] = []) => queryStore<T>(stack.storeUrl!, sql, params);

/** The journal segment holding data, and where its data ends (segments are zero-filled ahead). */
function journalTail(): { path: string; end: number } {
  const dir = join(stack.dir, "data", "journal");
  const tails = readdirSync(dir)
    .filter((n) => n.endsWith(".seg"))
    .map((n) => {
      const path = join(dir, n);
      const buf = Buffer.alloc(statSync(path).size);
      const fd = openSync(path, "r");
      readSync(fd, buf, 0, buf.length, 0);
      closeSync(fd);
      let end = buf.length;
      while (end > 0 && buf[end - 1] === 0) end--;
      return { path, end };
    })
    .filter((t) => t.end > 0);
  return tails[tails.length - 1]!;
}

describe("gateway killed mid-session", () => {
  it("closes the session on restart with its events intact and verifiable, dropping a torn journal tail", async () => {
    const client = await stack.client("crash");
    for (let i = 1; i <= 5; i++) await client.query(`select ${i} as before_crash`);
    const sleeping = client.query("select pg_sleep(30) as never_finishes").catch((e: unknown) => e);
    // Strict recording: the statement reaches the server only once its start is in the journal.
    const resource = await stack.resource.client(stack.db.name);
    await eventually("pg_sleep running on the resource", async () => {
      const { rows } = await resource.query("select 1 from pg_stat_activity where query = 'select pg_sleep(30) as never_finishes' and state = 'active'");
      return rows.length > 0 ? true : undefined;
    });
    await resource.end();

    await stack.gateway.proc.stop("SIGKILL");
    expect(await sleeping).toBeInstanceOf(Error);
    // A crash mid-write: the header of an entry that never got its bytes.
    const tail = journalTail();
    const torn = Buffer.alloc(24, 0x5a);
    torn.writeUInt32LE(4000, 0);
    const fd = openSync(tail.path, "r+");
    writeSync(fd, torn, 0, torn.length, tail.end);
    closeSync(fd);

    const restarted = await stack.restartGateway();
    const recovered = await restarted.proc.waitFor((l) => l.msg === "journal recovered");
    expect(recovered).toMatchObject({ tornEntries: 1, sessionsClosed: 1 });

    const session = await eventually("the session closed in the store", async () => {
      const rows = await store<{ id: string; end_reason: string | null }>("select id, end_reason from sessions where client_application = 'crash'");
      return rows[0]?.end_reason ? rows[0] : undefined;
    });
    expect(session.end_reason).toBe("gateway_restart");
    const events = await store<{ seq: number; command: string | null; outcome: string | null; status: string | null }>(
      "select seq::int as seq, command, outcome, details->>'status' as status from events where session_id = $1 order by seq",
      [session.id],
    );
    const statements = events.filter((e) => e.command !== null);
    expect(statements.map((e) => [e.command, e.outcome, e.status])).toEqual([
      ...[1, 2, 3, 4, 5].map((i) => [`select ${i} as before_crash`, "ok", null]),
      ["select pg_sleep(30) as never_finishes", null, "interrupted"],
    ]);
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));

    // Through the running gateway's API (the default when a gateway runs from this directory)...
    const viaApi = await stack.cli(["verify", session.id]);
    expect(viaApi.stderr).toBe("");
    expect(viaApi.code).toBe(0);
    expect(viaApi.stdout).toContain("1 session verified from the gateway's API");
    // ...and straight from the store, every session.
    const all = await stack.cli(["verify", "--all", "--store-url", stack.storeUrl!, "--public-key", await stack.publicKeyFile()]);
    expect(all.code).toBe(0);
  });
});

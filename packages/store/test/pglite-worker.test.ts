// The embedded store on its worker thread: what crossing the thread must keep (transactions held
// open in the worker, savepoints, errors with their codes and SQLSTATEs, result types), when the
// thread keeps the process alive, and what a dead thread does to calls. The shared suite runs on
// it too (store.embedded.test.ts).
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { openStore, StoreError, type PgliteWorkerExecutor, type Store } from "../src/index.js";
import { event, newSession } from "./suite.js";

let store: Store;
let sql: PgliteWorkerExecutor;

beforeAll(async () => {
  store = await openStore({ memory: true });
  sql = store.sql as PgliteWorkerExecutor;
  await sql.query("create table t (id int primary key, v text not null)");
});
afterAll(async () => {
  await store?.close();
});
beforeEach(async () => {
  await sql.query("truncate t");
});

const ids = async (): Promise<number[]> =>
  (await sql.query<{ id: number }>("select id from t order by id")).map((r) => r.id);

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => {
      throw new Error("expected a rejection");
    },
    (err: unknown) => err,
  );
}

describe("embedded store on a worker thread", () => {
  it("runs on another thread", () => {
    expect(sql.worker.threadId).toBeGreaterThan(0);
  });

  it("rolls a transaction back when fn throws, passing fn's own error through unchanged", async () => {
    const mine = new Error("changed my mind");
    const err = await rejection(
      sql.transaction(async (tx) => {
        await tx.query("insert into t values (1, 'a')");
        expect(await tx.query("select id from t")).toEqual([{ id: 1 }]);
        throw mine;
      }),
    );
    expect(err).toBe(mine);
    expect(await ids()).toEqual([]);
    // The transaction has ended in the worker: the store takes plain queries and commits again.
    await sql.transaction((tx) => tx.query("insert into t values (2, 'b')"));
    expect(await ids()).toEqual([2]);
  });

  it("nests savepoints: a failure inside one undoes that one only", async () => {
    const result = await sql.transaction(async (tx) => {
      await tx.query("insert into t values (1, 'outer')");
      await tx.transaction(async (sp) => {
        await sp.query("insert into t values (2, 'savepoint')");
        await expect(
          sp.transaction(async (inner) => {
            await inner.query("insert into t values (3, 'inner')");
            throw new Error("inner only");
          }),
        ).rejects.toThrow("inner only");
        await sp.query("insert into t values (4, 'savepoint again')");
      });
      // A failed statement in a savepoint leaves the transaction usable.
      const err = await rejection(tx.transaction((sp) => sp.query("insert into t values (1, 'duplicate')")));
      expect(err).toMatchObject({ code: "QUERY_FAILED", context: { sqlstate: "23505" } });
      await tx.query("insert into t values (5, 'outer again')");
      return "committed";
    });
    expect(result).toBe("committed");
    expect(await ids()).toEqual([1, 2, 4, 5]);
  });

  it("refuses to close a transaction, as on the calling thread", async () => {
    await sql.transaction(async (tx) => {
      expect(await rejection(tx.close())).toMatchObject({ code: "INVALID_ARGUMENT" });
    });
  });

  it("returns a failed statement as a StoreError with its SQLSTATE and the driver's fields", async () => {
    const err = await rejection(sql.query("insert into t values ($1, $2)", [1, null]));
    expect(err).toBeInstanceOf(StoreError);
    expect(err).toMatchObject({ code: "QUERY_FAILED", context: { sqlstate: "23502" } });
    expect((err as StoreError).message).toContain('null value in column "v"');
    const cause = (err as StoreError).cause;
    expect(cause).toBeInstanceOf(Error);
    expect(cause).toMatchObject({ code: "23502", table: "t", column: "v", severity: "ERROR" });

    const bad = await rejection(sql.query("select 'x'::int"));
    expect(bad).toMatchObject({ code: "QUERY_FAILED", context: { sqlstate: "22P02" } });
  });

  it("keeps what the gateway's shipper reads to tell bad data from an outage", async () => {
    await store.sessions.create(newSession("shipped"));
    // An event for a session stored nowhere: 23503 from the database, NOT_FOUND from the store.
    const missing = await rejection(store.record({ events: [event("nobody", 1)] }));
    expect(missing).toBeInstanceOf(StoreError);
    expect(missing).toMatchObject({ code: "NOT_FOUND", context: { sqlstate: "23503" } });
    expect((missing as StoreError).cause).toMatchObject({ code: "23503" });
    // A stored (session, seq) through insertBatch: 23505, CONFLICT.
    await store.events.insertBatch([event("shipped", 1)]);
    const duplicate = await rejection(store.events.insertBatch([event("shipped", 1)]));
    expect(duplicate).toMatchObject({ code: "CONFLICT", context: { sqlstate: "23505" } });
  });

  it("returns int8, json, timestamps and bytes with the types of the calling thread", async () => {
    const [row] = await sql.query<Record<string, unknown>>(
      `select 3::int8 as small, 9007199254740993::int8 as big, '{"a":[1,null]}'::jsonb as j,
              '2024-03-01T12:00:00.123Z'::timestamptz as at, '\\x0102'::bytea as b, null as n`,
    );
    expect(row).toEqual({
      small: 3,
      big: 9007199254740993n,
      j: { a: [1, null] },
      at: new Date("2024-03-01T12:00:00.123Z"),
      b: new Uint8Array([1, 2]),
      n: null,
    });
    expect(row?.["at"]).toBeInstanceOf(Date);
  });

  it("keeps the process alive while a call waits for its answer, and not once idle", async () => {
    // A script that awaits a slow query at top level and never closes the store: it must print
    // the answer (a worker left unreferenced would let the process exit first, code 13) and then
    // exit by itself.
    const index = fileURLToPath(new URL("../src/index.ts", import.meta.url));
    const script = `
      const { openStore } = await import(${JSON.stringify(index)});
      const store = await openStore({ memory: true });
      const [row] = await store.sql.query("select pg_sleep(0.5), 42 as answer");
      console.log("answer", row.answer);
    `;
    const child = spawn(
      process.execPath,
      ["--import", import.meta.resolve("tsx"), "--input-type=module", "-e", script],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    let out = "";
    child.stdout.on("data", (chunk: Buffer) => (out += chunk.toString()));
    const code = await new Promise((resolve) => child.once("exit", resolve));
    expect(out).toContain("answer 42");
    expect(code).toBe(0);
  }, 60_000);

  // Last: the thread is gone afterwards.
  it("fails pending and later calls with CONNECT_FAILED once the thread died, and still closes", async () => {
    const pending = sql.query("select pg_sleep(5)");
    await sql.worker.terminate();
    const err = await rejection(pending);
    expect(err).toBeInstanceOf(StoreError);
    expect(err).toMatchObject({ code: "CONNECT_FAILED" });
    expect((err as StoreError).message).toContain("thread stopped");
    for (const call of [
      sql.query("select 1"),
      sql.transaction((tx) => tx.query("select 1")),
      store.record({ events: [event("shipped", 2)] }),
    ]) {
      expect(await rejection(call)).toMatchObject({ code: "CONNECT_FAILED" });
    }
    await store.close();
    expect(await rejection(sql.query("select 1"))).toMatchObject({ code: "CLOSED" });
  });
});

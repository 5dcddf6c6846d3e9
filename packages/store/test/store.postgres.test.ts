// The shared suite against a real Postgres server, plus what only a server can show: several
// connections, two gateways migrating at once, an unreachable server.
import { createServer, connect, type AddressInfo, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createPostgresExecutor, migrations, openStore, StoreError } from "../src/index.js";
import { createTestDatabase, probePostgres, type TestDatabase } from "./helpers.js";
import { defineSearchSuite } from "./search-suite.js";
import { defineStoreSuite } from "./suite.js";

const probe = await probePostgres();
const title = probe.available ? "postgres driver" : `postgres driver — SKIPPED: ${probe.reason}`;
// The default reporter shows only a count of skipped tests; say why where it will be read.
if (!probe.available) process.stderr.write(`\n[store] ${title}\n\n`);

describe.skipIf(!probe.available)(title, () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => {
    await db?.drop();
  });

  defineStoreSuite(() => ({
    open: () => openStore({ url: db.url, maxConnections: 4 }),
    serializesTransactions: false,
    fresh: async () => {
      const fresh = await createTestDatabase();
      const sql = createPostgresExecutor({ url: fresh.url, maxConnections: 1 });
      return {
        sql,
        dispose: async () => {
          await sql.close();
          await fresh.drop();
        },
      };
    },
  }));

  describe("search", () => {
    defineSearchSuite(() => ({
    trigram: true,
      open: () => openStore({ url: db.url, maxConnections: 4 }),
      fresh: async () => {
        const fresh = await createTestDatabase();
        const sql = createPostgresExecutor({ url: fresh.url, maxConnections: 1 });
        return {
          sql,
          dispose: async () => {
            await sql.close();
            await fresh.drop();
          },
        };
      },
    }));
  });

  describe("server only", () => {
    it("carries notifications between two stores on one database (what gateways use to hand each other a cancel)", async () => {
      const a = await openStore({ url: db.url, maxConnections: 2 });
      const b = await openStore({ url: db.url, maxConnections: 2 });
      try {
        const heard: string[] = [];
        const listening = await a.notifications!.listen("gatehouse_test_channel", (p) => heard.push(p));
        await b.notifications!.notify("gatehouse_test_channel", '{"hello":1}');
        const deadline = Date.now() + 5_000;
        while (heard.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
        expect(heard).toEqual(['{"hello":1}']);
        await listening.unlisten();
      } finally {
        await a.close();
        await b.close();
      }
    });

    it("lets two gateways migrate a fresh database at once", async () => {
      const fresh = await createTestDatabase();
      try {
        const stores = await Promise.all([openStore({ url: fresh.url }), openStore({ url: fresh.url })]);
        const rows = await stores[0].sql.query<{ version: number }>("select version from schema_migrations");
        expect(rows.map((r) => r.version)).toEqual(migrations.map((m) => m.version));
        await Promise.all(stores.map((s) => s.close()));
      } finally {
        await fresh.drop();
      }
    });

    it("a connection lost while the driver reads the array types fails that query, not the process", async () => {
      // postgres.js reads the server's array types after each connection's startup, from a socket
      // handler that drops the promise: when the connection is lost then and the dial after it is
      // refused, that promise rejected unhandled, which ends a Node process (a gateway's, here:
      // patches/postgres@3.4.9.patch). A proxy cuts the link at that query and resets the next dial.
      const target = new URL(db.url);
      const sockets = new Set<Socket>();
      let armed = false;
      let resets = 0;
      const proxy = createServer((client) => {
        if (armed && resets === 1) {
          resets++;
          client.resetAndDestroy();
          return;
        }
        const server = connect(Number(target.port || 5432), target.hostname);
        sockets.add(client).add(server);
        const cut = () => (client.destroy(), server.destroy());
        client.on("data", (chunk: Buffer) => {
          if (armed && resets === 0 && chunk.includes("typarray")) {
            resets++;
            cut();
          } else server.write(chunk);
        });
        server.on("data", (chunk: Buffer) => client.write(chunk));
        client.on("error", cut).on("close", cut);
        server.on("error", cut).on("close", cut);
      });
      await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
      const unhandled: unknown[] = [];
      const onUnhandled = (reason: unknown) => unhandled.push(reason);
      process.on("unhandledRejection", onUnhandled);
      const url = new URL(db.url);
      url.host = `127.0.0.1:${(proxy.address() as AddressInfo).port}`;
      const store = await openStore({ url: url.href, maxConnections: 1, connectTimeoutSeconds: 2 });
      try {
        // The store's connection goes; the next query dials again, into the cut and the reset.
        armed = true;
        for (const socket of sockets) socket.destroy();
        await new Promise((resolve) => setTimeout(resolve, 100));
        await store.sql.query("select 1").catch(() => undefined);
        await new Promise((resolve) => setTimeout(resolve, 300));
        expect(resets).toBe(2);
        expect(unhandled).toEqual([]);
        // And the store works again once the server can be reached.
        expect(await store.sql.query<{ one: number }>("select 1 as one")).toEqual([{ one: 1 }]);
      } finally {
        process.off("unhandledRejection", onUnhandled);
        await store.close();
        for (const socket of sockets) socket.destroy();
        await new Promise((resolve) => proxy.close(resolve));
      }
    });

    it("opens at most maxConnections connections", async () => {
      const store = await openStore({ url: db.url, maxConnections: 2 });
      try {
        const pids = await Promise.all(
          Array.from({ length: 8 }, () =>
            store.sql.query<{ pid: number }>("select pg_backend_pid() as pid, pg_sleep(0.05)"),
          ),
        );
        expect(new Set(pids.map((rows) => rows[0]?.pid)).size).toBe(2);
      } finally {
        await store.close();
      }
    });

    it("fails to open with CONNECT_FAILED when nothing answers", async () => {
      const err: unknown = await openStore({ url: "postgres://postgres:secret@127.0.0.1:1/x", connectTimeoutSeconds: 2 }).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(StoreError);
      expect((err as StoreError).code).toBe("CONNECT_FAILED");
      expect((err as StoreError).message).not.toContain("secret");
    });
  });
});

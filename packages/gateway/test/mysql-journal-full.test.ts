import { rmSync } from "node:fs";
import { join } from "node:path";
import mysql from "mysql2/promise";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { validateConfig } from "../src/config/load.js";
import { startGateway, type Gateway } from "../src/gateway.js";
import { AccessKeys } from "../src/identity/access-keys.js";
import { createLogger } from "../src/logger.js";
import { createStoreDatabase } from "./support/store-database.js";
import { canMountTmpfs, fillDisk, mountTmpfs } from "./support/tmpfs.js";

// As journal-disk-full.test.ts, for the MySQL listener: the data directory on a small tmpfs,
// strict recording; once the disk is full a new session is refused with ERR 1021 (ER_DISK_FULL),
// and sessions are recorded again when space returns. No connector runs: a session that gets
// through is refused 1429 (connector unavailable), which is how the test sees it got through.

let disk: ReturnType<typeof mountTmpfs>;
let db: Awaited<ReturnType<typeof createStoreDatabase>>;
let gateway: Gateway;
let key: string;

interface MysqlError extends Error {
  errno?: number;
  sqlState?: string;
}

async function login(): Promise<MysqlError> {
  try {
    const connection = await mysql.createConnection({ ...gateway.mysql!, user: "agent", password: key, database: "app", connectTimeout: 10_000 });
    await connection.end();
    throw new Error("the connection was accepted (no connector runs in this test)");
  } catch (error) {
    return error as MysqlError;
  }
}

describe.skipIf(!canMountTmpfs())("mysql: a full disk under the journal (tmpfs)", () => {
  beforeAll(async () => {
    disk = mountTmpfs("1m");
    db = await createStoreDatabase("gatehouse_mysql_diskfull");
    gateway = await startGateway(
      validateConfig({
        dataDir: join(disk.path, "data"),
        listen: { api: "127.0.0.1:0", mysql: "127.0.0.1:0" },
        store: { url: db.url() },
        recording: { mode: "strict", journal: { segmentBytes: 16 * 1024, maxBytes: 64 * 1024 * 1024 } },
        connectors: [{ name: "dc1", tokenSha256: "a".repeat(64) }],
        connections: [{ name: "app", protocol: "mysql", connector: "dc1", target: { host: "127.0.0.1", port: 3306 }, allow: [{ identity: "agent" }] }],
      }),
      { logger: createLogger("fatal") },
    );
    const keys = new AccessKeys(gateway.store, () => Date.now() * 1000);
    key = (await keys.create("agent")).key;
    await keys.close();
  });

  afterAll(async () => {
    await gateway?.close();
    await db?.drop();
    disk?.unmount();
  });

  it("refuses new sessions with ERR 1021, and records again once space returns", async () => {
    expect((await login()).errno).toBe(1429);
    const filler = join(disk.path, "filler");
    fillDisk(filler);
    let refusal: MysqlError | undefined;
    for (let i = 0; i < 500 && !refusal; i++) {
      const error = await login();
      if (error.errno !== 1429) refusal = error;
    }
    expect(refusal).toMatchObject({ errno: 1021, sqlState: "HY000" });
    expect(refusal!.message).toContain("the disk under its journal is full");

    rmSync(filler);
    const deadline = Date.now() + 10_000;
    let after: MysqlError | undefined;
    while (Date.now() < deadline && (after = await login()).errno !== 1429) await new Promise((resolve) => setTimeout(resolve, 200));
    expect(after?.errno).toBe(1429);
  }, 30_000);
});

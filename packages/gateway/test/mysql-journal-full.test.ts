import mysql from "mysql2/promise";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { firstRefusal, loginOnceSpaceReturns, startGatewayOnSmallDisk, type GatewayOnSmallDisk } from "./support/full-journal.js";
import { canMountTmpfs } from "./support/tmpfs.js";

// As journal-disk-full.test.ts, for the MySQL listener: the data directory on a small tmpfs,
// strict recording; once the disk is full a new session is refused with ERR 1021 (ER_DISK_FULL),
// and sessions are recorded again when space returns. No connector runs: a session that gets
// through is refused 1429 (connector unavailable), which is how the test sees it got through.

let started: GatewayOnSmallDisk;

interface MysqlError extends Error {
  errno?: number;
  sqlState?: string;
}

async function login(): Promise<MysqlError> {
  try {
    const connection = await mysql.createConnection({ ...started.gateway.mysql!, user: "agent", password: started.key, database: "app", connectTimeout: 10_000 });
    await connection.end();
    throw new Error("the connection was accepted (no connector runs in this test)");
  } catch (error) {
    return error as MysqlError;
  }
}

const gotThrough = (error: MysqlError) => error.errno === 1429;

describe.skipIf(!canMountTmpfs())("mysql: a full disk under the journal (tmpfs)", () => {
  beforeAll(async () => {
    started = await startGatewayOnSmallDisk("mysql", { host: "127.0.0.1", port: 3306 });
  });

  afterAll(async () => {
    await started?.close();
  });

  it("refuses new sessions with ERR 1021, and records again once space returns", async () => {
    expect((await login()).errno).toBe(1429);
    const giveBack = started.fill();
    const refusal = await firstRefusal(login, gotThrough);
    expect(refusal).toMatchObject({ errno: 1021, sqlState: "HY000" });
    expect(refusal!.message).toContain("the disk under its journal is full");

    giveBack();
    const after = await loginOnceSpaceReturns(login, gotThrough);
    expect(after?.errno).toBe(1429);
  }, 30_000);
});

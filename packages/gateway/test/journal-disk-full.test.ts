import { rmSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { validateConfig } from "../src/config/load.js";
import { startGateway, type Gateway } from "../src/gateway.js";
import { AccessKeys } from "../src/identity/access-keys.js";
import { createLogger } from "../src/logger.js";
import { createStoreDatabase } from "./support/store-database.js";
import { canMountTmpfs, fillDisk, mountTmpfs } from "./support/tmpfs.js";

// The gateway's data directory on a small tmpfs, strict recording: once the disk is full the
// journal cannot make its next segment (ENOSPC), and a new session is refused with 53100 (disk_full),
// as docs/evidence.md promises — not 58030 (io_error), which is for a disk that fails. /readyz says
// why new sessions fail. When space returns, sessions are recorded again.

let disk: ReturnType<typeof mountTmpfs>;
let db: Awaited<ReturnType<typeof createStoreDatabase>>;
let gateway: Gateway;
let key: string;

interface PgError extends Error {
  code?: string;
}

async function login(): Promise<PgError> {
  const client = new pg.Client({ host: gateway.postgres!.host, port: gateway.postgres!.port, user: "agent", password: key, database: "app", ssl: { rejectUnauthorized: false } });
  client.on("error", () => undefined);
  try {
    await client.connect();
    throw new Error("the connection was accepted (no connector runs in this test)");
  } catch (error) {
    return error as PgError;
  } finally {
    await client.end().catch(() => undefined);
  }
}

describe.skipIf(!canMountTmpfs())("a full disk under the journal (tmpfs)", () => {
  beforeAll(async () => {
    disk = mountTmpfs("1m");
    db = await createStoreDatabase("gatehouse_diskfull");
    gateway = await startGateway(
      validateConfig({
        dataDir: join(disk.path, "data"),
        listen: { api: "127.0.0.1:0", postgres: "127.0.0.1:0" },
        store: { url: db.url() },
        recording: { mode: "strict", journal: { segmentBytes: 16 * 1024, maxBytes: 64 * 1024 * 1024 } },
        connectors: [{ name: "dc1", tokenSha256: "a".repeat(64) }],
        connections: [{ name: "app", protocol: "postgres", connector: "dc1", target: { host: "127.0.0.1", port: 5432 }, allow: [{ identity: "agent" }] }],
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

  it("refuses new sessions with 53100, says so in /readyz, and records again once space returns", async () => {
    expect((await login()).code).toBe("08006");
    const filler = join(disk.path, "filler");
    fillDisk(filler);
    // Each session (open, connect, close) fills the journal's segment; the next segment cannot be made.
    let refusal: PgError | undefined;
    for (let i = 0; i < 500 && !refusal; i++) {
      const error = await login();
      if (error.code !== "08006") refusal = error;
    }
    expect(refusal).toMatchObject({ code: "53100", severity: "FATAL" });
    expect(refusal!.message).toContain("the disk under its journal is full");

    const response = await fetch(`${gateway.apiUrl}/readyz`);
    expect(response.status).toBe(503);
    expect(await response.json()).toEqual({
      status: "not_ready",
      reason: "new sessions are refused: the disk under the recording journal is full",
      checks: { recording: "disk_full", store: "ok", config: "loaded" },
    });

    rmSync(filler);
    const deadline = Date.now() + 10_000;
    let after: PgError | undefined;
    while (Date.now() < deadline && (after = await login()).code !== "08006") await new Promise((resolve) => setTimeout(resolve, 200));
    expect(after?.code).toBe("08006");
    expect((await fetch(`${gateway.apiUrl}/readyz`)).status).toBe(200);
  }, 30_000);
});

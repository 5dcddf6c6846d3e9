import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { firstRefusal, loginOnceSpaceReturns, startGatewayOnSmallDisk, type GatewayOnSmallDisk } from "./support/full-journal.js";
import { canMountTmpfs } from "./support/tmpfs.js";

// The gateway's data directory on a small tmpfs, strict recording: once the disk is full the
// journal cannot make its next segment (ENOSPC), and a new session is refused with 53100 (disk_full),
// as docs/evidence.md promises — not 58030 (io_error), which is for a disk that fails. /readyz says
// why new sessions fail. When space returns, sessions are recorded again.

let started: GatewayOnSmallDisk;

interface PgError extends Error {
  code?: string;
}

async function login(): Promise<PgError> {
  const client = new pg.Client({ host: started.gateway.postgres!.host, port: started.gateway.postgres!.port, user: "agent", password: started.key, database: "app", ssl: { rejectUnauthorized: false } });
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

const gotThrough = (error: PgError) => error.code === "08006";

describe.skipIf(!canMountTmpfs())("a full disk under the journal (tmpfs)", () => {
  beforeAll(async () => {
    started = await startGatewayOnSmallDisk("postgres", { host: "127.0.0.1", port: 5432 });
  });

  afterAll(async () => {
    await started?.close();
  });

  it("refuses new sessions with 53100, says so in /readyz, and records again once space returns", async () => {
    const { gateway } = started;
    expect((await login()).code).toBe("08006");
    const giveBack = started.fill();
    // Each session (open, connect, close) fills the journal's segment; the next segment cannot be made.
    const refusal = await firstRefusal(login, gotThrough);
    expect(refusal).toMatchObject({ code: "53100", severity: "FATAL" });
    expect(refusal!.message).toContain("the disk under its journal is full");

    const response = await fetch(`${gateway.apiUrl}/readyz`);
    expect(response.status).toBe(503);
    expect(await response.json()).toEqual({
      status: "not_ready",
      reason: "new sessions are refused: the disk under the recording journal is full",
      checks: { recording: "disk_full", store: "ok", config: "loaded", listeners: { "listen.api": "listening", "listen.postgres": "listening" } },
    });

    giveBack();
    const after = await loginOnceSpaceReturns(login, gotThrough);
    expect(after?.code).toBe("08006");
    expect((await fetch(`${gateway.apiUrl}/readyz`)).status).toBe(200);
  }, 30_000);
});

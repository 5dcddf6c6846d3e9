// The shared suite against the embedded driver (PGlite in a temporary directory), on its worker
// thread and on the calling thread, plus the data directory's lock and the in-memory mode.
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  LOCK_FILE_NAME,
  openPgliteExecutor,
  openPgliteWorkerExecutor,
  openStore,
  StoreError,
  type PgliteWorkerExecutor,
} from "../src/index.js";
import { defineSearchSuite } from "./search-suite.js";
import { defineStoreSuite, newSession } from "./suite.js";

const dir = mkdtempSync(join(tmpdir(), "gatehouse-store-test-"));
const lockPath = join(dir, LOCK_FILE_NAME);

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

// Both suites use the same directory, one after the other (vitest runs a file's top-level blocks
// in order), so the second reopens what the first made rather than initializing PGlite again.
describe("embedded driver on a worker thread", () => {
  defineStoreSuite(() => ({
    open: () => openStore({ dataDir: dir }),
    serializesTransactions: true,
    fresh: async () => {
      const sql = await openPgliteWorkerExecutor();
      return { sql, dispose: () => sql.close() };
    },
  }));
});

describe("embedded driver on the calling thread", () => {
  defineStoreSuite(() => ({
    open: () => openStore({ dataDir: dir, worker: false }),
    serializesTransactions: true,
    fresh: async () => {
      const sql = await openPgliteExecutor();
      return { sql, dispose: () => sql.close() };
    },
  }));
});

// In memory: the directory above is for the suites that reopen it.
describe("embedded driver: search", () => {
  defineSearchSuite(() => ({
    trigram: false,
    open: () => openStore({ memory: true }),
    fresh: async () => {
      const sql = await openPgliteWorkerExecutor();
      return { sql, dispose: () => sql.close() };
    },
  }));
});

/** The pid of a process that has exited, so surely is not alive. */
async function deadPid(): Promise<number> {
  const child = spawn(process.execPath, ["-e", ""], { stdio: "ignore" });
  await new Promise((resolve) => child.once("exit", resolve));
  return child.pid as number;
}

async function openError(options: Parameters<typeof openStore>[0]): Promise<StoreError> {
  const err: unknown = await openStore(options).then(
    async (store) => {
      await store.close();
      return undefined;
    },
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StoreError);
  return err as StoreError;
}

// Runs after the suites above have closed their stores, on the same directory.
describe("embedded data directory lock", () => {
  it("takes over a stale lock, holds the directory while open, and lets go on close", async () => {
    writeFileSync(lockPath, `${await deadPid()}\n`);
    const store = await openStore({ dataDir: dir });
    try {
      expect(readFileSync(lockPath, "utf8")).toBe(`${process.pid}\n`);
      // A second open of the same directory, even from this process, is refused.
      const err = await openError({ dataDir: dir });
      expect(err.code).toBe("LOCKED");
      expect(err.context).toMatchObject({ dataDir: dir, pid: process.pid });
      expect(err.message).toContain(dir);
      expect(err.message).toContain(String(process.pid));
      // ...and the refused open did not take the lock away from the first.
      expect(readFileSync(lockPath, "utf8")).toBe(`${process.pid}\n`);
      await store.sessions.create(newSession("still-works"));
    } finally {
      await store.close();
    }
    expect(existsSync(lockPath)).toBe(false);
  });

  it("is one lock whichever thread PGlite runs on", async () => {
    const store = await openStore({ dataDir: dir });
    try {
      expect((await openError({ dataDir: dir, worker: false })).code).toBe("LOCKED");
    } finally {
      await store.close();
    }
    const again = await openStore({ dataDir: dir, worker: false });
    try {
      expect((await openError({ dataDir: dir })).code).toBe("LOCKED");
    } finally {
      await again.close();
    }
    expect(existsSync(lockPath)).toBe(false);
  });

  it("starts a new thread on the directory when its thread died, keeps the directory until closed, then opens it again", async () => {
    const store = await openStore({ dataDir: dir });
    await store.sessions.create(newSession("before-crash"));
    const writing = store.sessions.create(newSession("during-crash"));
    const first = (store.sql as PgliteWorkerExecutor).worker;
    const firstThreadId = first.threadId;
    await first.terminate();
    await writing.catch(() => {}); // Committed or not: the thread died around it.
    // The next calls run on a new thread, over the same data.
    expect((await store.sessions.get("before-crash"))?.session.id).toBe("before-crash");
    await store.sessions.create(newSession("after-crash"));
    expect((store.sql as PgliteWorkerExecutor).worker.threadId).not.toBe(firstThreadId);
    expect((await openError({ dataDir: dir })).code).toBe("LOCKED");
    await store.close();
    expect(existsSync(lockPath)).toBe(false);
    const reopened = await openStore({ dataDir: dir });
    try {
      expect((await reopened.sessions.get("before-crash"))?.session.id).toBe("before-crash");
      expect((await reopened.sessions.get("after-crash"))?.session.id).toBe("after-crash");
    } finally {
      await reopened.close();
    }
  });

  it("refuses a directory locked by another live process, naming it", async () => {
    const other = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60_000)"], { stdio: "ignore" });
    try {
      writeFileSync(lockPath, `${other.pid}\n`);
      const err = await openError({ dataDir: dir });
      expect(err.code).toBe("LOCKED");
      expect(err.context.pid).toBe(other.pid);
      expect(err.message).toContain(`process ${other.pid}`);
      expect(readFileSync(lockPath, "utf8")).toBe(`${other.pid}\n`);
    } finally {
      other.kill();
      rmSync(lockPath, { force: true });
    }
  });

  it("takes over a lock naming this pid when this process does not hold it (a restarted container)", async () => {
    writeFileSync(lockPath, `${process.pid}\n`);
    const store = await openStore({ dataDir: dir });
    await store.close();
    expect(existsSync(lockPath)).toBe(false);
  });

  it("takes over a lock file left empty by a crash", async () => {
    writeFileSync(lockPath, "");
    const store = await openStore({ dataDir: dir });
    expect(readFileSync(lockPath, "utf8")).toBe(`${process.pid}\n`);
    await store.close();
  });
});

describe("embedded in memory", () => {
  it("works without a directory", async () => {
    const store = await openStore({ memory: true });
    try {
      await store.sessions.create(newSession("m1"));
      expect((await store.sessions.last())?.id).toBe("m1");
    } finally {
      await store.close();
    }
  });

  it("needs to be told where the store is", async () => {
    expect((await openError({})).code).toBe("INVALID_ARGUMENT");
    expect((await openError({ memory: true, dataDir: dir })).code).toBe("INVALID_ARGUMENT");
  });
});

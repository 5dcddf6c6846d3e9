import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";
import { StoreError } from "./errors.js";

export const LOCK_FILE_NAME = "gatehouse-store.lock";

/** A held lock on an embedded data directory. */
export interface DirLock {
  readonly path: string;
  release(): void;
}

/**
 * Lock files this process holds. A lock naming our own pid is ours only if it is listed here:
 * otherwise it was left by an earlier process that had the same pid — the usual case in a
 * container, where the gateway restarts as pid 1 on the same volume.
 */
const heldHere = new Set<string>();

/**
 * Takes `<dir>/gatehouse-store.lock` (or `options.fileName`), so two processes never open one
 * PGlite data directory (or the gateway's journal) at once (PGlite has no lock of its own, and two writers would corrupt it). The file is created with
 * O_EXCL and holds the owner's pid. A lock whose pid is no longer alive was left by a crash and is
 * taken over; a live one — including this very process, which has the directory open already —
 * makes the open fail with LOCKED.
 *
 * Pids are compared on this host only: two containers that share the directory through a volume
 * each see their own pid namespace, and this lock cannot tell them apart.
 */
export function acquireDirLock(dir: string, options: { fileName?: string; what?: string } = {}): DirLock {
  const path = join(dir, options.fileName ?? LOCK_FILE_NAME);
  const what = options.what ?? "the store directory";
  const content = `${process.pid}\n`;
  // Two attempts: the first may find a stale lock, remove it, and leave the second to create ours.
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, "wx", 0o644);
      try {
        writeSync(fd, content);
      } finally {
        closeSync(fd);
      }
      heldHere.add(path);
      return {
        path,
        release: () => {
          heldHere.delete(path);
          releaseDirLock(path, content);
        },
      };
    } catch (err) {
      if (!isErrno(err, "EEXIST")) {
        throw new StoreError("CONNECT_FAILED", `cannot create the lock file ${path}: ${String(err)}`, {
          cause: err,
          context: { dataDir: dir },
        });
      }
    }
    const held = readLock(path);
    if (held === undefined) continue; // Removed between our open and our read: try again.
    const ownStale = held.pid === process.pid && !heldHere.has(path);
    if (held.pid !== undefined && !ownStale && isAlive(held.pid)) {
      throw new StoreError(
        "LOCKED",
        `${what} ${dir} is in use by process ${held.pid} (lock file ${path}); ` +
          "stop that process, or use another directory",
        { context: { dataDir: dir, pid: held.pid } },
      );
    }
    // Stale (dead pid, our pid from an earlier life, or a file cut short by a crash between
    // create and write). Re-read it right before removing it, so as not to remove a lock that
    // another process took over meanwhile.
    if (readLock(path)?.raw === held.raw) {
      try {
        unlinkSync(path);
      } catch (err) {
        if (!isErrno(err, "ENOENT")) throw lockError(dir, path, err);
      }
    }
  }
  const holder = readLock(path)?.pid;
  throw new StoreError(
    "LOCKED",
    `${what} ${dir} is being locked by another process${holder === undefined ? "" : ` (${holder})`}`,
    { context: holder === undefined ? { dataDir: dir } : { dataDir: dir, pid: holder } },
  );
}

function releaseDirLock(path: string, content: string): void {
  // Only remove the file if it is still ours.
  if (readLock(path)?.raw !== content) return;
  try {
    unlinkSync(path);
  } catch (err) {
    if (!isErrno(err, "ENOENT")) throw err;
  }
}

function readLock(path: string): { raw: string; pid: number | undefined } | undefined {
  let raw: string;
  try {
    raw = readFileSync(path, "utf8");
  } catch (err) {
    if (isErrno(err, "ENOENT")) return undefined;
    throw err;
  }
  const pid = Number.parseInt(raw.trim(), 10);
  return { raw, pid: Number.isSafeInteger(pid) && pid > 0 ? pid : undefined };
}

/** Signal 0 checks for existence without touching the process. EPERM: alive, someone else's. */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return isErrno(err, "EPERM");
  }
}

function isErrno(err: unknown, code: string): boolean {
  return typeof err === "object" && err !== null && (err as { code?: unknown }).code === code;
}

function lockError(dir: string, path: string, err: unknown): StoreError {
  return new StoreError("CONNECT_FAILED", `cannot take over the stale lock file ${path}: ${String(err)}`, {
    cause: err,
    context: { dataDir: dir },
  });
}

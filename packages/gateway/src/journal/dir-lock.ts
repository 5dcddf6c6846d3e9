import { closeSync, openSync, readFileSync, unlinkSync, writeSync } from "node:fs";
import { join } from "node:path";
import { GatewayError } from "../errors.js";

/**
 * An exclusive pid lock on a directory (O_EXCL file holding the owner's pid). Two gateways must
 * never append to one journal. A lock whose process is gone was left by a crash (`kill -9`) and is
 * taken over — that is the restart the journal exists for.
 */
export function lockDirectory(dir: string, name: string): { release(): void } {
  const path = join(dir, name);
  if (heldHere.has(path)) throw new GatewayError("JOURNAL_FAILED", `the journal ${dir} is already open in this process (pid ${process.pid})`);
  const content = `${process.pid}\n`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, "wx", 0o600);
      try {
        writeSync(fd, content);
      } finally {
        closeSync(fd);
      }
      heldHere.add(path);
      return {
        release: () => {
          heldHere.delete(path);
          if (readOptional(path) === content) unlinkSync(path);
        },
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") {
        throw new GatewayError("JOURNAL_FAILED", `cannot create the lock ${path}: ${(error as Error).message}`, { cause: error });
      }
    }
    const held = readOptional(path);
    const pid = Number.parseInt(held ?? "", 10);
    // Our own pid in the file means an earlier life of this container's pid 1: stale too.
    if (Number.isSafeInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
      throw new GatewayError("JOURNAL_FAILED", `the journal ${dir} is in use by process ${pid} (lock file ${path}): two gateways cannot share a data directory`);
    }
    try {
      unlinkSync(path);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
  }
  throw new GatewayError("JOURNAL_FAILED", `the journal ${dir} is being locked by another process`);
}

/** Locks this process holds: our own pid in a lock file is stale only if it is not one of these. */
const heldHere = new Set<string>();

function readOptional(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

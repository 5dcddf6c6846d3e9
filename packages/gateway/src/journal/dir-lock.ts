import { acquireDirLock, StoreError } from "@gatehouse/store";
import { GatewayError } from "../errors.js";

/**
 * An exclusive pid lock on the journal directory: two gateways must never append to one
 * journal. The same O_EXCL pid lock the embedded store uses; a lock whose process is gone was
 * left by a crash (`kill -9`) and is taken over — that is the restart the journal exists for.
 */
export function lockDirectory(dir: string, name: string): { release(): void } {
  try {
    return acquireDirLock(dir, { fileName: name, what: "the journal" });
  } catch (error) {
    if (error instanceof StoreError) {
      const pid = error.context.pid;
      const holder = pid === undefined ? "" : ` (held by pid ${String(pid)})`;
      throw new GatewayError("JOURNAL_FAILED", `two gateways cannot share a data directory${holder}: ${error.message}`, { cause: error });
    }
    throw error;
  }
}

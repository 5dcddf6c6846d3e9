import { mkdirSync } from "node:fs";
import { resolve } from "node:path";
import { PGlite, types as pgTypes, type Transaction } from "@electric-sql/pglite";
import { StoreError, toStoreError } from "../errors.js";
import { normalizeParams, parseInt8, type SqlExecutor } from "../executor.js";
import { acquireDirLock, type DirLock } from "../lock.js";

export interface PgliteExecutorOptions {
  /** Directory holding the database; created if missing. Left out: an in-memory database. */
  dataDir?: string;
}

/**
 * A SqlExecutor over PGlite, Postgres compiled to WebAssembly and run on the calling thread (see
 * openPgliteWorkerExecutor for one on its own thread). Takes the data directory's lock until
 * `close()`.
 */
export async function openPgliteExecutor(options: PgliteExecutorOptions = {}): Promise<SqlExecutor> {
  const dataDir = options.dataDir === undefined ? undefined : resolve(options.dataDir);
  const lock = dataDir === undefined ? undefined : lockDataDir(dataDir);
  try {
    return await openPglite(dataDir, () => lock?.release());
  } catch (err) {
    lock?.release();
    throw err;
  }
}

/** Creates the data directory if missing and takes its lock (see acquireDirLock). */
export function lockDataDir(dataDir: string): DirLock {
  try {
    mkdirSync(dataDir, { recursive: true });
  } catch (err) {
    throw new StoreError("CONNECT_FAILED", `cannot create the store directory ${dataDir}: ${String(err)}`, {
      cause: err,
      context: { dataDir },
    });
  }
  return acquireDirLock(dataDir);
}

/**
 * Opens PGlite in `dataDir` (absolute; left out: in memory) without locking it: the caller holds
 * the lock, and `onClose` runs once when the executor is closed.
 *
 * PGlite is a single session. Its `transaction()` holds an exclusive mutex for the whole
 * callback, and plain queries wait on the same mutex, so two concurrent transactions never
 * interleave and a query from outside never lands inside someone else's transaction. That is why
 * code inside `transaction(fn)` must use `tx`, never the outer executor.
 */
export async function openPglite(dataDir: string | undefined, onClose?: () => void): Promise<SqlExecutor> {
  let pg: PGlite;
  try {
    pg = await PGlite.create(dataDir, {
      // int8 the same way as the postgres driver: a number when exact, else a bigint.
      parsers: { [pgTypes.INT8]: parseInt8 },
      // No pg_trgm here, on purpose: its index on commands (migration 006) made PGlite's inserts 3×
      // slower (≈ 32,600 → 10,000 events/s, docs/benchmarks.md "Search"), and an embedded store is
      // small enough for a text search to scan. PGlite can load it (@electric-sql/pglite/contrib/pg_trgm).
    });
  } catch (err) {
    throw new StoreError(
      "CONNECT_FAILED",
      `cannot open the embedded store${dataDir === undefined ? " (in memory)" : ` in ${dataDir}`}: ${String(err)}`,
      { cause: err, context: dataDir === undefined ? {} : { dataDir } },
    );
  }

  let closed = false;
  const ensureOpen = (): void => {
    if (closed) throw new StoreError("CLOSED", "the store is closed");
  };

  const wrapTx = (tx: Transaction, depth: number): SqlExecutor => {
    const query = async <T>(text: string, params?: unknown[]): Promise<T[]> => {
      ensureOpen();
      try {
        return (await tx.query<T>(text, normalizeParams(params))).rows;
      } catch (err) {
        throw toStoreError("QUERY_FAILED", "query failed", err);
      }
    };
    return {
      query,
      // PGlite has no nested transactions: a savepoint gives `fn` the same all-or-nothing.
      transaction: async (fn) => {
        const name = `gatehouse_sp_${depth}`;
        await query(`savepoint ${name}`);
        try {
          const result = await fn(wrapTx(tx, depth + 1));
          await query(`release savepoint ${name}`);
          return result;
        } catch (err) {
          await query(`rollback to savepoint ${name}`);
          throw err;
        }
      },
      close: () => Promise.reject(new StoreError("INVALID_ARGUMENT", "close the store, not a transaction")),
    };
  };

  return {
    query: async <T>(text: string, params?: unknown[]) => {
      ensureOpen();
      try {
        return (await pg.query<T>(text, normalizeParams(params))).rows;
      } catch (err) {
        throw toStoreError("QUERY_FAILED", "query failed", err);
      }
    },
    transaction: async (fn) => {
      ensureOpen();
      let fromFn: { error: unknown } | undefined;
      try {
        return await pg.transaction(async (tx) => {
          try {
            return await fn(wrapTx(tx, 1));
          } catch (error) {
            fromFn = { error };
            throw error;
          }
        });
      } catch (err) {
        if (fromFn !== undefined && fromFn.error === err) throw err;
        throw toStoreError("QUERY_FAILED", "transaction failed", err);
      }
    },
    close: async () => {
      if (closed) return;
      closed = true;
      try {
        await pg.close();
      } finally {
        onClose?.();
      }
    },
  };
}

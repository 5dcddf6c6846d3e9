// The embedded store's worker thread (started by pglite-worker.ts): PGlite runs here, so its
// WebAssembly work and synchronous file I/O stall this thread instead of the caller's event loop.
// The main thread holds the data directory's lock.
import { parentPort, workerData } from "node:worker_threads";
import { StoreError } from "../errors.js";
import type { SqlExecutor } from "../executor.js";
import { openPglite } from "./pglite.js";
import { encodeError, type Reply, type Request, type Started, type WorkerInit } from "./pglite-worker-messages.js";

/** A transaction held open for the main thread, until it says how to end it. */
interface OpenTransaction {
  sql: SqlExecutor;
  end(commit: boolean): Promise<void>;
}

/** What a transaction's callback throws to make the executor roll it back. */
const ROLLBACK = Symbol("rollback");

const port = parentPort;
if (port === null) throw new Error("pglite-worker-entry runs as a worker thread (see openPgliteWorkerExecutor)");
const { dataDir } = workerData as WorkerInit;

let sql: SqlExecutor | undefined;
try {
  sql = await openPglite(dataDir);
  port.postMessage({ started: true } satisfies Started);
} catch (err) {
  port.postMessage({ started: false, error: encodeError(err) } satisfies Started);
}

if (sql !== undefined) {
  const store = sql;
  const open = new Map<number, OpenTransaction>();
  let lastTx = 0;

  const target = (tx: number | undefined): SqlExecutor => {
    if (tx === undefined) return store;
    const held = open.get(tx);
    if (held === undefined) throw new StoreError("QUERY_FAILED", "query failed: the transaction has ended");
    return held.sql;
  };

  /**
   * Enters `parent.transaction` and stays inside it, answering once it is in (with the number
   * that names it) and leaving it when the main thread ends it.
   */
  const begin = (parent: SqlExecutor): Promise<number> =>
    new Promise((began, failed) => {
      const id = ++lastTx;
      let decide!: (commit: boolean) => void;
      const decided = new Promise<boolean>((resolve) => (decide = resolve));
      const done = parent.transaction(async (tx) => {
        open.set(id, {
          sql: tx,
          end: (commit) => {
            decide(commit);
            // A rollback asked for is what was meant to happen; anything else is the end's error.
            return done.catch((err: unknown) => {
              if (err !== ROLLBACK) throw err;
            });
          },
        });
        began(id);
        if (!(await decided)) throw ROLLBACK;
      });
      // Failing to begin (BEGIN, SAVEPOINT, a closed store) rejects the begin; once begun, the
      // end's answer carries the outcome, so here it is only kept from being unhandled.
      done.then(undefined, (err: unknown) => {
        open.delete(id);
        failed(err);
      });
    });

  const handle = async (request: Request): Promise<unknown> => {
    switch (request.op) {
      case "query":
        return target(request.tx).query(request.sql, request.params);
      case "begin":
        return begin(target(request.tx));
      case "end": {
        const held = open.get(request.tx);
        if (held === undefined) throw new StoreError("QUERY_FAILED", "transaction failed: it has ended already");
        open.delete(request.tx);
        return held.end(request.commit);
      }
      case "close":
        return store.close();
    }
  };

  const reply = (message: Reply): void => {
    try {
      port.postMessage(message);
    } catch (err) {
      // A value structured clone cannot copy: the caller gets an error rather than no answer.
      port.postMessage({ id: message.id, ok: false, error: encodeError(err) } satisfies Reply);
    }
  };

  port.on("message", (request: Request) => {
    handle(request).then(
      (value) => reply({ id: request.id, ok: true, value }),
      (err: unknown) => reply({ id: request.id, ok: false, error: encodeError(err) }),
    );
  });
}

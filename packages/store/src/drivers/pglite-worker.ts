import { resolve } from "node:path";
import { Worker } from "node:worker_threads";
import { StoreError, toStoreError, type StoreErrorContext } from "../errors.js";
import { normalizeParams, type SqlExecutor } from "../executor.js";
import type { DirLock } from "../lock.js";
import { lockDataDir, type PgliteExecutorOptions } from "./pglite.js";
import { decodeError, type Reply, type Request, type Started, type WorkerInit } from "./pglite-worker-messages.js";

/** The embedded store on its own thread. */
export interface PgliteWorkerExecutor extends SqlExecutor {
  /** The thread PGlite runs on (for its threadId, or performance.eventLoopUtilization). */
  readonly worker: Worker;
}

/** A request before it is given its id. */
type WithoutId<R> = R extends unknown ? Omit<R, "id"> : never;
type Call = WithoutId<Request>;

/**
 * A SqlExecutor over PGlite running in a worker thread: PGlite's WebAssembly work and synchronous
 * file I/O (tens of ms per batch of events) stall that thread, not the caller's event loop.
 * Queries, transactions (held open in the worker while `fn` runs here) and savepoints behave as
 * with openPgliteExecutor, errors arrive as the same StoreErrors, and results keep their types
 * (structured clone carries bigints, Dates and parsed JSON). The data directory's lock is held on
 * this thread until `close()`. Should the thread die, the calls pending fail with CONNECT_FAILED
 * and the next call starts a new thread on the data directory (an in-memory store is gone: every
 * later call fails with that CONNECT_FAILED).
 */
export async function openPgliteWorkerExecutor(options: PgliteExecutorOptions = {}): Promise<PgliteWorkerExecutor> {
  const dataDir = options.dataDir === undefined ? undefined : resolve(options.dataDir);
  const context: StoreErrorContext = dataDir === undefined ? {} : { dataDir };
  const lock = dataDir === undefined ? undefined : lockDataDir(dataDir);
  try {
    const init: WorkerInit = dataDir === undefined ? {} : { dataDir };
    const worker = startWorker(init);
    await started(worker, context);
    return connect(init, worker, lock, context);
  } catch (err) {
    lock?.release();
    throw err;
  }
}

/**
 * Runs the compiled entry next to this module (dist). Under vitest, which runs src, this module
 * is the .ts file: the .ts entry is loaded through tsx, registered from an eval bootstrap because
 * `--import tsx` in a worker's execArgv does not take on Node 20. tsx is a devDependency: only
 * tests get here.
 */
function startWorker(init: WorkerInit): Worker {
  const here = import.meta.url;
  if (!here.endsWith(".ts")) return new Worker(new URL("./pglite-worker-entry.js", here), { workerData: init });
  const tsx = import.meta.resolve("tsx/esm/api");
  const entry = new URL("./pglite-worker-entry.ts", here).href;
  const bootstrap = `import(${JSON.stringify(tsx)}).then((tsx) => { tsx.register(); return import(${JSON.stringify(entry)}); });`;
  return new Worker(bootstrap, { eval: true, workerData: init });
}

/** Waits for the worker to have opened PGlite; if it cannot, the worker is stopped. */
async function started(worker: Worker, context: StoreErrorContext): Promise<void> {
  let onMessage!: (message: Started) => void;
  let onError!: (err: Error) => void;
  let onExit!: (code: number) => void;
  try {
    await new Promise<void>((resolve, reject) => {
      onMessage = (message) => (message.started ? resolve() : reject(decodeError(message.error)));
      onError = (err) =>
        reject(new StoreError("CONNECT_FAILED", `the embedded store's thread failed: ${err.message}`, { cause: err, context }));
      onExit = (code) =>
        reject(new StoreError("CONNECT_FAILED", `the embedded store's thread exited (code ${code}) before opening it`, { context }));
      worker.once("message", onMessage).once("error", onError).once("exit", onExit);
    });
  } catch (err) {
    await worker.terminate();
    throw err;
  } finally {
    // Not removeAllListeners: the worker's own listeners (which ref and unref its port) stay.
    worker.off("message", onMessage).off("error", onError).off("exit", onExit);
  }
}

function connect(init: WorkerInit, first: Worker, lock: DirLock | undefined, context: StoreErrorContext): PgliteWorkerExecutor {
  const pending = new Map<number, { resolve(value: unknown): void; reject(err: unknown): void }>();
  let lastId = 0;
  let closed = false;
  /** The thread calls go to; undefined once it died, until the next call starts another. */
  let worker: Worker | undefined = first;
  /** The latest thread started (what `.worker` shows). */
  let latest = first;
  let restarting: Promise<Worker> | undefined;
  /** Why the last thread stopped. */
  let lost: StoreError | undefined;

  const wire = (thread: Worker): void => {
    let crash: Error | undefined;
    thread.on("message", (reply: Reply) => {
      const call = pending.get(reply.id);
      if (call === undefined) return;
      pending.delete(reply.id);
      if (pending.size === 0) thread.unref();
      if (reply.ok) call.resolve(reply.value);
      else call.reject(decodeError(reply.error));
    });
    thread.on("error", (err) => {
      crash = err;
    });
    thread.on("exit", (code) => {
      if (worker === thread) worker = undefined;
      const gone = closed
        ? new StoreError("CLOSED", "the store was closed during the call")
        : new StoreError(
            "CONNECT_FAILED",
            `the embedded store's thread stopped (exit code ${code}${crash === undefined ? "" : `: ${crash.message}`}); ` +
              (init.dataDir === undefined ? "an in-memory store is gone with it" : "the next call starts it again"),
            { context, ...(crash === undefined ? {} : { cause: crash }) },
          );
      for (const call of pending.values()) call.reject(gone);
      pending.clear();
      lost = gone;
    });
    // Referenced only while a call is waiting for its answer: an idle store does not keep the
    // process alive (as PGlite on the calling thread would not), a pending call does. After the
    // listeners: adding a "message" listener refs the worker's port.
    thread.unref();
  };
  wire(first);

  /**
   * The live thread, or a new one when it died: PGlite recovers the data directory as Postgres
   * does after a crash, so the store (and the gateway's shipper, which retries) carries on
   * instead of failing every call until a restart.
   */
  const thread = (): Worker | Promise<Worker> => {
    if (worker !== undefined) return worker;
    // An in-memory database died with its thread: a new one would be empty, without its tables.
    if (init.dataDir === undefined) throw lost;
    return (restarting ??= (async () => {
      try {
        const next = startWorker(init);
        await started(next, context);
        wire(next);
        worker = latest = next;
        return next;
      } finally {
        restarting = undefined;
      }
    })());
  };

  /** Sends a call, closed or not (close itself goes through here). */
  const send = async (call: Call): Promise<unknown> => {
    const target = await thread();
    const id = ++lastId;
    return new Promise((resolve, reject) => {
      try {
        target.postMessage({ ...call, id });
      } catch (err) {
        // A parameter structured clone cannot copy (a function, a symbol): nothing was sent.
        reject(toStoreError("QUERY_FAILED", "query failed", err));
        return;
      }
      pending.set(id, { resolve, reject });
      if (pending.size === 1) target.ref();
    });
  };
  const request = (call: Call): Promise<unknown> =>
    closed ? Promise.reject(new StoreError("CLOSED", "the store is closed")) : send(call);

  const query = <T>(tx: number | undefined, sql: string, params: unknown[] | undefined): Promise<T[]> =>
    request({ op: "query", sql, params: normalizeParams(params), ...(tx === undefined ? {} : { tx }) }) as Promise<T[]>;

  /** `fn` runs here while the worker holds the transaction (or savepoint, inside `parent`) open. */
  const transaction = async <T>(parent: number | undefined, fn: (tx: SqlExecutor) => Promise<T>): Promise<T> => {
    const tx = (await request({ op: "begin", ...(parent === undefined ? {} : { tx: parent }) })) as number;
    let result: T;
    try {
      result = await fn(inTransaction(tx));
    } catch (err) {
      await request({ op: "end", tx, commit: false });
      throw err;
    }
    await request({ op: "end", tx, commit: true });
    return result;
  };

  const inTransaction = (tx: number): SqlExecutor => ({
    query: (sql, params) => query(tx, sql, params),
    transaction: (fn) => transaction(tx, fn),
    close: () => Promise.reject(new StoreError("INVALID_ARGUMENT", "close the store, not a transaction")),
  });

  return {
    get worker() {
      return latest;
    },
    query: (sql, params) => query(undefined, sql, params),
    transaction: (fn) => transaction(undefined, fn),
    close: async () => {
      if (closed) return;
      closed = true;
      try {
        await restarting?.catch(() => undefined);
        if (worker !== undefined) await send({ op: "close" });
      } finally {
        await latest.terminate();
        lock?.release();
      }
    },
  };
}

// What the main thread and the embedded store's worker thread (pglite-worker.ts,
// pglite-worker-entry.ts) say to each other, and how errors cross between them.
import { StoreError, type StoreErrorCode, type StoreErrorContext } from "../errors.js";

/** workerData: where the database is (absolute; left out: in memory). */
export interface WorkerInit {
  dataDir?: string;
}

/**
 * A call from the main thread. `tx` names a transaction the worker holds open (a number it gave
 * in answer to `begin`); left out, the call goes to the store itself.
 */
export type Request =
  | { id: number; op: "query"; tx?: number; sql: string; params: unknown[] }
  /** Opens a transaction, or a savepoint inside `tx`; answered with the new transaction's number. */
  | { id: number; op: "begin"; tx?: number }
  /** Commits or rolls back `tx`; answered once it has. */
  | { id: number; op: "end"; tx: number; commit: boolean }
  | { id: number; op: "close" };

export type Reply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: EncodedError };

/** The first message of the worker: PGlite is open, or could not be. */
export type Started = { started: true } | { started: false; error: EncodedError };

/**
 * An error as it can be posted: structured clone keeps an Error's message but drops its class and
 * its other properties, and the store's callers need both (StoreError's code and context, the
 * driver error's SQLSTATE in `code`, its `detail`, `constraint`...).
 */
export interface EncodedError {
  message: string;
  name?: string;
  stack?: string;
  /** Set when the error is a StoreError. */
  store?: { code: StoreErrorCode; context: StoreErrorContext };
  /** The error's own properties with a string, number or boolean value. */
  fields?: Record<string, string | number | boolean>;
  cause?: EncodedError;
}

/** How many causes deep an error is carried over; deeper ones are left out (and cycles end). */
const MAX_CAUSES = 4;

export function encodeError(err: unknown, depth = 0): EncodedError {
  if (!(err instanceof Error)) return { message: String(err) };
  const encoded: EncodedError = { message: err.message, name: err.name };
  if (err.stack !== undefined) encoded.stack = err.stack;
  if (err instanceof StoreError) {
    encoded.store = { code: err.code, context: err.context };
  } else {
    const fields: Record<string, string | number | boolean> = {};
    for (const [key, value] of Object.entries(err)) {
      // Big values (PGlite puts the query's `params` on its errors) are not worth the copy.
      if (typeof value === "string" || typeof value === "number" || typeof value === "boolean") fields[key] = value;
    }
    encoded.fields = fields;
  }
  if (err.cause !== undefined && depth < MAX_CAUSES) encoded.cause = encodeError(err.cause, depth + 1);
  return encoded;
}

/** The error again, on this side: a StoreError as a StoreError, anything else as an Error with its fields. */
export function decodeError(encoded: EncodedError): Error {
  const cause = encoded.cause === undefined ? undefined : decodeError(encoded.cause);
  if (encoded.store !== undefined) {
    return new StoreError(encoded.store.code, encoded.message, {
      context: encoded.store.context,
      ...(cause === undefined ? {} : { cause }),
    });
  }
  const err = new Error(encoded.message, cause === undefined ? undefined : { cause });
  Object.assign(err, encoded.fields);
  if (encoded.name !== undefined && encoded.name !== "Error") err.name = encoded.name;
  if (encoded.stack !== undefined) err.stack = encoded.stack;
  return err;
}

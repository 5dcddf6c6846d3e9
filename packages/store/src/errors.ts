/** Every failure the store raises. `code` is closed so callers can switch on it. */
export type StoreErrorCode =
  /** The embedded data directory is held by another live process (see `context.pid`). */
  | "LOCKED"
  /** The database could not be reached or opened. */
  | "CONNECT_FAILED"
  /** Applying the schema migrations failed; nothing of the failed run was kept. */
  | "MIGRATION_FAILED"
  /** The database was migrated by a newer gatehouse than this one: refusing to write into it. */
  | "SCHEMA_TOO_NEW"
  /** An insert or update was refused or could not reach the database. */
  | "WRITE_FAILED"
  /** A read failed. */
  | "QUERY_FAILED"
  /** The thing named does not exist (e.g. closing an unknown session). */
  | "NOT_FOUND"
  /** The write contradicts what is stored (duplicate id, session already closed). */
  | "CONFLICT"
  /** A value handed to the store is out of range or malformed; nothing was sent. */
  | "INVALID_ARGUMENT"
  /** The store or writer was closed before or during the call. */
  | "CLOSED";

/** What a caller needs to act on the error. Only the keys that apply are set. */
export interface StoreErrorContext {
  /** The embedded data directory involved. */
  dataDir?: string;
  /** The process that holds the lock (LOCKED). */
  pid?: number;
  /** SQLSTATE of the database error underneath, when there is one. */
  sqlstate?: string;
  /** The migration being applied (MIGRATION_FAILED, SCHEMA_TOO_NEW). */
  migration?: string;
  /** Session id the call was about. */
  sessionId?: string;
  /** Number of events in the failed batch (WRITE_FAILED from the writer). */
  batchSize?: number;
}

export class StoreError extends Error {
  override readonly name = "StoreError";
  readonly context: StoreErrorContext;

  constructor(
    readonly code: StoreErrorCode,
    message: string,
    options?: { cause?: unknown; context?: StoreErrorContext },
  ) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.context = options?.context ?? {};
  }
}

/** The SQLSTATE of a driver error (postgres.js and PGlite both put it on `.code`), if it has one. */
export function sqlstateOf(err: unknown): string | undefined {
  if (typeof err !== "object" || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  // SQLSTATEs are five characters of [0-9A-Z]; Node's own codes (ECONNREFUSED...) are not.
  return typeof code === "string" && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/** A short human description of a driver error, for the StoreError's message. */
export function describeCause(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/**
 * Wraps anything thrown by a driver as a StoreError with `code`, keeping StoreErrors as they are
 * so a precise code raised deeper (CONFLICT, CLOSED) is not flattened.
 */
export function toStoreError(
  code: StoreErrorCode,
  what: string,
  err: unknown,
  context: StoreErrorContext = {},
): StoreError {
  if (err instanceof StoreError) return err;
  const sqlstate = sqlstateOf(err);
  return new StoreError(code, `${what}: ${describeCause(err)}`, {
    cause: err,
    context: sqlstate === undefined ? context : { ...context, sqlstate },
  });
}

/**
 * For the store's own operations: a QUERY_FAILED raised by the executor becomes `code` (a failed
 * insert is a WRITE_FAILED, a failed migration a MIGRATION_FAILED), keeping its cause and
 * SQLSTATE. Other StoreErrors (CLOSED, CONFLICT...) already say what happened and pass unchanged.
 */
export function recode(
  code: StoreErrorCode,
  what: string,
  err: unknown,
  context: StoreErrorContext = {},
): StoreError {
  if (err instanceof StoreError) {
    if (err.code !== "QUERY_FAILED") return err;
    return new StoreError(code, `${what}: ${describeCause(err.cause ?? err)}`, {
      cause: err.cause ?? err,
      context: { ...err.context, ...context },
    });
  }
  return toStoreError(code, what, err, context);
}

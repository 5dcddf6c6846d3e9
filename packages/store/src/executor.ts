/**
 * The one seam between the store's SQL and a database. Both drivers (postgres.js against a real
 * server, PGlite embedded) implement it, and every query in this package goes through it, so the
 * store's behaviour is the same whichever runs underneath.
 *
 * Parameters are positional (`$1`, `$2`...). Pass scalars: string, number, bigint, boolean, null
 * (`undefined` is sent as null). Plain objects and arrays are sent as JSON text, so cast them in
 * the SQL (`$1::jsonb`); they are never turned into Postgres arrays, because the two drivers do
 * that differently. `int8` results come back as JS numbers when they fit in a double exactly and
 * as `bigint` otherwise; `json`/`jsonb` results come back parsed.
 */
export interface SqlExecutor {
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  /**
   * Runs `fn` inside a transaction: committed when `fn` resolves, rolled back when it throws.
   * Inside `fn`, use `tx` only (on the embedded driver the outer executor waits for the
   * transaction to end, so calling it from inside would wait forever). Nested calls of
   * `tx.transaction` are savepoints.
   */
  transaction<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  /**
   * Postgres only: LISTEN on `channel` over a connection of its own, re-established by the
   * driver when it drops. `onListen` runs each time the LISTEN is (again) in place: notices sent
   * while it was not are lost, so a caller reloads what it holds then. Resolves to an unlisten.
   */
  listen?(channel: string, onNotify: (payload: string) => void, onListen: () => void): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

/**
 * Parses an `int8` as it arrives in text form. µs timestamps and counters stay far below 2^53, so
 * they become plain numbers; anything larger becomes a bigint rather than silently losing digits.
 */
export function parseInt8(text: string): number | bigint {
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : BigInt(text);
}

/** Brings one parameter into the shape both drivers send the same way (see SqlExecutor). */
export function normalizeParam(value: unknown): unknown {
  if (value === undefined || value === null) return null;
  if (typeof value !== "object") return value;
  if (value instanceof Date || value instanceof Uint8Array) return value;
  return JSON.stringify(value);
}

export function normalizeParams(params: readonly unknown[] | undefined): unknown[] {
  return params === undefined ? [] : params.map(normalizeParam);
}

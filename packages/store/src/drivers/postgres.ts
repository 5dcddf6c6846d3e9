import postgres from "postgres";
import { StoreError, toStoreError } from "../errors.js";
import { normalizeParams, parseInt8, type SqlExecutor } from "../executor.js";

export interface PostgresExecutorOptions {
  /** postgres://user:password@host:port/database */
  url: string;
  /**
   * The password, when it is not in the URL (a secret kept out of the config file). Left out: the
   * URL's, else the PGPASSWORD environment variable (postgres.js reads it, as libpq does).
   */
  password?: string;
  /** Most connections the pool opens. Default 10. */
  maxConnections?: number;
  /** Seconds to wait for a connection to be established. Default 10. */
  connectTimeoutSeconds?: number;
}

/** Connection defaults, in one place. */
const DEFAULT_MAX_CONNECTIONS = 10;
const DEFAULT_CONNECT_TIMEOUT_S = 10;
/** Seconds `close()` lets running queries finish before cutting the connections. */
const CLOSE_TIMEOUT_S = 5;

/**
 * The type handling is spelled out here rather than left to postgres.js's defaults, which differ
 * from PGlite's in ways that would lose data:
 * - int8 (oid 20) is parsed with `parseInt8` (number when exact, else bigint), not as a string.
 * - postgres.js picks a parameter's serializer from the type the server infers for it, and its
 *   defaults would JSON.stringify a `$1::jsonb` value a second time (normalizeParams already sent
 *   JSON text) and cut a `$1::timestamptz` ISO string with µs down to a Date's ms. Strings are
 *   passed through untouched for both, as PGlite does.
 */
const types = {
  int8: {
    to: 20,
    from: [20],
    serialize: (value: number | bigint) => String(value),
    parse: parseInt8,
  },
  json: {
    to: 3802,
    from: [114, 3802],
    serialize: (value: unknown) => (typeof value === "string" ? value : JSON.stringify(value)),
    parse: (text: string): unknown => JSON.parse(text),
  },
  timestamptz: {
    to: 1184,
    from: [1082, 1114, 1184],
    serialize: (value: Date | string) => (value instanceof Date ? value.toISOString() : String(value)),
    parse: (text: string) => new Date(text),
  },
};

/** What postgres.js makes of `types`: each name mapped to the JS type it parses into. */
type JsTypes = { int8: number | bigint; json: unknown; timestamptz: Date };
type Sql = postgres.Sql<JsTypes>;
type TxSql = postgres.TransactionSql<JsTypes>;

/**
 * A SqlExecutor over a postgres.js pool. Connections are opened lazily; `openStore` pings once at
 * start so an unreachable server fails there, with CONNECT_FAILED, rather than on first write.
 */
export function createPostgresExecutor(options: PostgresExecutorOptions): SqlExecutor {
  const sql: Sql = postgres(options.url, {
    max: options.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
    connect_timeout: options.connectTimeoutSeconds ?? DEFAULT_CONNECT_TIMEOUT_S,
    ...(options.password === undefined ? {} : { password: options.password }),
    types,
    // NOTICEs (e.g. "relation already exists, skipping" from the migrations) are not errors and
    // must not reach stdout, which belongs to the CLI.
    onnotice: () => {},
  });
  let closed = false;

  const run = async <T>(
    target: Sql | TxSql,
    text: string,
    params: unknown[] | undefined,
  ): Promise<T[]> => {
    if (closed) throw new StoreError("CLOSED", "the store is closed");
    const args = normalizeParams(params) as postgres.ParameterOrJSON<never>[];
    try {
      // Queries with parameters use the extended protocol as named prepared statements: the
      // store's statements are a small fixed set, so each is parsed once per connection.
      const rows = await target.unsafe(text, args, { prepare: args.length > 0 });
      return Array.from(rows) as T[];
    } catch (err) {
      throw toStoreError("QUERY_FAILED", "query failed", err);
    }
  };

  const wrapTx = (tx: TxSql): SqlExecutor => ({
    query: (text, params) => run(tx, text, params),
    transaction: (fn) =>
      inTransaction(
        (body) => tx.savepoint((sp) => body(sp)) as Promise<never>,
        fn,
        wrapTx,
      ),
    close: () => Promise.reject(new StoreError("INVALID_ARGUMENT", "close the store, not a transaction")),
  });

  return {
    query: (text, params) => run(sql, text, params),
    transaction: (fn) => {
      if (closed) return Promise.reject(new StoreError("CLOSED", "the store is closed"));
      return inTransaction((body) => sql.begin((tx) => body(tx)) as Promise<never>, fn, wrapTx);
    },
    listen: async (channel, onNotify, onListen) => {
      if (closed) throw new StoreError("CLOSED", "the store is closed");
      try {
        const { unlisten } = await sql.listen(channel, onNotify, onListen);
        return async () => {
          if (!closed) await unlisten().catch(() => undefined);
        };
      } catch (err) {
        throw toStoreError("QUERY_FAILED", `listening on ${channel} failed`, err);
      }
    },
    close: async () => {
      if (closed) return;
      closed = true;
      await sql.end({ timeout: CLOSE_TIMEOUT_S });
    },
  };
}

/**
 * Runs `fn` through a postgres.js `begin`/`savepoint`, passing the caller's own errors through
 * unchanged and wrapping only what the driver raised (BEGIN, COMMIT, a lost connection).
 */
async function inTransaction<T>(
  open: (body: (tx: TxSql) => Promise<T>) => Promise<T>,
  fn: (tx: SqlExecutor) => Promise<T>,
  wrapTx: (tx: TxSql) => SqlExecutor,
): Promise<T> {
  let fromFn: { error: unknown } | undefined;
  try {
    return await open(async (tx) => {
      try {
        return await fn(wrapTx(tx));
      } catch (error) {
        fromFn = { error };
        throw error;
      }
    });
  } catch (err) {
    if (fromFn !== undefined && fromFn.error === err) throw err;
    throw toStoreError("QUERY_FAILED", "transaction failed", err);
  }
}

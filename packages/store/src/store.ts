import { createPostgresExecutor } from "./drivers/postgres.js";
import { openPgliteExecutor } from "./drivers/pglite.js";
import { openPgliteWorkerExecutor } from "./drivers/pglite-worker.js";
import { recode, StoreError, type StoreErrorContext } from "./errors.js";
import type { SqlExecutor } from "./executor.js";
import { migrate } from "./migrate.js";
import { EVENT_COLUMNS, eventOf, SESSION_COLUMNS, sessionOf, type EventRow, type SessionRow } from "./rows.js";
import { MAX_LIST_LIMIT, searchEvents, searchSessions } from "./search.js";
import { usOf, usToIso } from "./time.js";
import type {
  AccessKeyFilter,
  AccessKeyRecord,
  Checkpoint,
  EventFilter,
  EventPage,
  EventPartition,
  GatewayKeyRecord,
  GatewayKeyRegistration,
  IdentitySettings,
  NewAccessKey,
  NewSshKey,
  SshKeyFilter,
  SshKeyRecord,
  NewSession,
  RecordBatch,
  RecordBatchResult,
  RetentionResult,
  SessionClose,
  SessionEvent,
  SessionFilter,
  SessionPage,
  SessionRecord,
  StoreChange,
  StreamChunk,
  StreamDirection,
} from "./types.js";

export interface StoreOptions {
  /** A Postgres URL. Set: the postgres driver. Left out: the embedded store (`dataDir` or `memory`). */
  url?: string;
  /** Postgres driver: the password when the URL has none (else PGPASSWORD, as libpq does). */
  password?: string;
  /** Directory of the embedded store; created if missing, locked while open. */
  dataDir?: string;
  /** An embedded store that lives in memory only, for tests and demos. */
  memory?: boolean;
  /**
   * Embedded store: run PGlite on a worker thread (default), so its work does not stall this
   * thread's event loop; false runs it on this thread.
   */
  worker?: boolean;
  /** Postgres driver: most connections in the pool. Default 10. */
  maxConnections?: number;
  /** Postgres driver: seconds to wait for a connection. Default 10. */
  connectTimeoutSeconds?: number;
}

export type StoreDriver = "postgres" | "embedded";

export interface RetentionOptions {
  /** Say what would be done, do nothing. */
  dryRun?: boolean;
  /**
   * Remove only sessions that ended at or before this time (µs): the time of the gateway's signed
   * retention checkpoint, so a session sealed after it is kept rather than removed unannounced.
   */
  endedByUs?: number;
}

export interface SessionWithEvents {
  session: SessionRecord;
  /** In `seq` order. */
  events: SessionEvent[];
}

export interface Store {
  readonly driver: StoreDriver;
  /** The executor underneath, for queries this interface does not offer yet (verification...). */
  readonly sql: SqlExecutor;
  /** Resolves when the database answers; CONNECT_FAILED otherwise. */
  ping(): Promise<void>;
  readonly sessions: {
    /** CONFLICT when the id exists. */
    create(session: NewSession): Promise<void>;
    /** NOT_FOUND for an unknown id; CONFLICT when already closed (a seal is never overwritten). */
    close(close: SessionClose): Promise<void>;
    /**
     * Newest first by (start, id). `sinceUs` is inclusive, `untilUs` exclusive, both on the start
     * time; event conditions (kinds, outcome, text, statuses) keep sessions with at least one such
     * event. `after`: the page after that session.
     */
    list(filter?: SessionFilter): Promise<SessionRecord[]>;
    /** `list` with where the next page starts (null: no more). */
    search(filter?: SessionFilter): Promise<SessionPage>;
    get(id: string): Promise<SessionWithEvents | null>;
    /** The most recently started session. */
    last(): Promise<SessionRecord | null>;
    /**
     * Every session in id order, a page at a time: pass the last id of a page as `afterId` to get
     * the next. For walking the whole record (verification); `limit` default 500, at most 1000.
     */
    scan(options?: { afterId?: string; limit?: number }): Promise<SessionRecord[]>;
  };
  readonly events: {
    /**
     * Inserts the events in one statement (one round trip) and adds them to their sessions'
     * `eventCount`, all or nothing. NOT_FOUND when a session does not exist, CONFLICT when a
     * (session, seq) is already stored.
     */
    insertBatch(events: readonly SessionEvent[]): Promise<void>;
    /** The events of these sessions, ordered by session id, then seq (as stored: gaps and all). */
    forSessions(sessionIds: readonly string[]): Promise<SessionEvent[]>;
    /**
     * Events across sessions, newest first by (time, session id, seq), each with its session's
     * identity, connection and protocol; `after` (a page's `next`) continues where a page ended,
     * and never repeats or skips an event stored before the first page was read.
     */
    search(filter?: EventFilter): Promise<EventPage>;
  };
  /**
   * Applies one shipment of the record (new sessions, events, closes) in one statement,
   * idempotently, so the gateway's journal can replay a shipment whose acknowledgement it lost.
   * NOT_FOUND when an event's session is neither stored nor in the batch.
   */
  record(batch: RecordBatch): Promise<RecordBatchResult>;
  /** Time partitions of the events table, for `gatehouse retention` (run as the owner). */
  readonly retention: {
    /** The monthly partitions of `events`, oldest first. */
    partitions(): Promise<EventPartition[]>;
    /**
     * Drops every partition whose whole range ends at or before `cutoffUs`, then removes the
     * ended sessions that started before the newest dropped partition's end, with their remaining
     * events, so no session is left with part of its events. `dryRun`: says what it would do.
     */
    dropBefore(cutoffUs: number, options?: RetentionOptions): Promise<RetentionResult>;
  };
  /** The gateways' checkpoint chains (migration 003); written through `record`. */
  readonly checkpoints: {
    /**
     * Every checkpoint in (gateway, seq) order, a page at a time: pass the last one's gateway and
     * seq as `after` for the next page. `limit` default 500, at most 1000.
     */
    scan(options?: { after?: { gateway: string; seq: number }; limit?: number }): Promise<Checkpoint[]>;
    /** The last checkpoint of a gateway's chain, or null when it has none. */
    last(gateway: string): Promise<Checkpoint | null>;
  };
  /** The sessions' byte streams (migration 004); written through `record`. */
  readonly streams: {
    /**
     * The chunks of these sessions (of one stream when `streamId` is given), ordered by session,
     * stream, then seq, as stored (gaps and all).
     */
    chunks(sessionIds: readonly string[], streamId?: number): Promise<StreamChunk[]>;
  };
  readonly accessKeys: {
    /** CONFLICT when the id exists. */
    create(key: NewAccessKey): Promise<void>;
    /** Oldest first. */
    list(filter?: AccessKeyFilter): Promise<AccessKeyRecord[]>;
    get(id: string): Promise<AccessKeyRecord | null>;
    /** True when this call revoked the key; false when it was unknown or already revoked. */
    revoke(id: string, atUs: number): Promise<boolean>;
    /** Records a use; keeps the latest time when uses are reported out of order. */
    touch(id: string, atUs: number): Promise<void>;
  };
  /** SSH public keys per identity (migration 005), listed and revoked beside access keys. */
  readonly sshKeys: {
    /** CONFLICT when the id exists, or when a live key has the same fingerprint (whatever its identity). */
    create(key: NewSshKey): Promise<void>;
    /** Oldest first. */
    list(filter?: SshKeyFilter): Promise<SshKeyRecord[]>;
    get(id: string): Promise<SshKeyRecord | null>;
    /** True when this call revoked the key; false when it was unknown or already revoked. */
    revoke(id: string, atUs: number): Promise<boolean>;
    /** Records a use; keeps the latest time when uses are reported out of order. */
    touch(id: string, atUs: number): Promise<void>;
  };
  /** Every gateway's seal public key (migration 007): registered at start, listed for `verify`, retired by an operator. */
  readonly gatewayKeys: {
    /**
     * Registers a gateway's Ed25519 public key (SubjectPublicKeyInfo PEM) under the key id the
     * store derives from it; a key registered before is left as it was (idempotent).
     * INVALID_ARGUMENT when the PEM is not an Ed25519 public key.
     */
    register(publicKeyPem: string, gateway: string): Promise<GatewayKeyRegistration>;
    /** Oldest first. */
    list(): Promise<GatewayKeyRecord[]>;
    /** Marks a key retired (once); its seals still verify. */
    retire(keyId: string, atUs: number): Promise<"retired" | "already_retired" | "not_found">;
  };
  /** Identity settings shared by every gateway of the store (migration 007). */
  readonly identitySettings: {
    /** Every identity that has settings, by name. */
    list(): Promise<IdentitySettings[]>;
    setDisabled(identity: string, disabled: boolean, atUs: number): Promise<void>;
  };
  /** Notices of changes to keys and identity settings (migration 007), for gateways sharing a store. */
  readonly changes: {
    /** The change counter: it moves whenever a change is made (also by a transaction that then rolled back). */
    version(): Promise<number>;
    /**
     * Postgres only (undefined for the embedded store, which has one gateway): calls `onChange`
     * for each change as it commits, and `onListen` whenever listening (re)started, after which
     * changes made meanwhile must be assumed. Resolves to a stop function.
     */
    listen?: (onChange: (change: StoreChange) => void, onListen: () => void) => Promise<() => Promise<void>>;
  };
  /**
   * Where a cancel for a session goes when several gateways share this store (migration 008):
   * each gateway publishes its sessions' client-facing cancel keys, another looks up a key it does
   * not know. Expiry is by the store's clock.
   */
  readonly cancelRoutes: {
    /**
     * Publishes a route that lives `ttlSeconds` unless renewed. False when a live route with
     * this key belongs to another session (an expired one is taken over).
     */
    publish(route: NewCancelRoute, ttlSeconds: number): Promise<boolean>;
    /** The live route with this key, or null. */
    find(routeKey: string): Promise<CancelRouteRecord | null>;
    /** Removes these routes of this gateway (its sessions ended). */
    remove(gateway: string, routeKeys: readonly string[]): Promise<void>;
    /** Keeps every route of `gateway` alive `ttlSeconds` more and deletes expired ones; the number renewed. */
    renew(gateway: string, ttlSeconds: number): Promise<number>;
  };
  /**
   * Messages between the gateways of one store (Postgres LISTEN/NOTIFY): null on the embedded
   * store, which has one gateway.
   */
  readonly notifications: StoreNotifications | null;
  close(): Promise<void>;
}

/** A cancel route as a gateway publishes it (see `Store.cancelRoutes`, migration 008). */
export interface NewCancelRoute {
  /** `pg:<hex sha256 of the BackendKeyData>` or `mysql:<thread id>`. */
  routeKey: string;
  protocol: string;
  /** The owning gateway's id. */
  gateway: string;
  sessionId: string;
  /** The session's identity (MySQL: only it may KILL there). */
  identity: string | null;
}

export type CancelRouteRecord = NewCancelRoute;

export interface StoreNotifications {
  /** LISTENs on `channel` (its own connection, re-established when lost); resolves once listening. */
  listen(channel: string, onPayload: (payload: string) => void): Promise<{ unlisten(): Promise<void> }>;
  /** NOTIFY `channel` with `payload` (under 8000 bytes). */
  notify(channel: string, payload: string): Promise<void>;
}

/** SessionFilter.limit's and EventFilter.limit's default and ceiling. */
export { DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT } from "./search.js";

/**
 * Opens the store — Postgres when `url` is set, else embedded — and brings its schema up to date.
 */
export async function openStore(options: StoreOptions): Promise<Store> {
  let sql: SqlExecutor;
  let driver: StoreDriver;
  if (options.url !== undefined) {
    driver = "postgres";
    sql = createPostgresExecutor({
      url: options.url,
      ...(options.password === undefined ? {} : { password: options.password }),
      ...(options.maxConnections === undefined ? {} : { maxConnections: options.maxConnections }),
      ...(options.connectTimeoutSeconds === undefined
        ? {}
        : { connectTimeoutSeconds: options.connectTimeoutSeconds }),
    });
  } else {
    driver = "embedded";
    if (options.memory === true && options.dataDir !== undefined) {
      throw new StoreError("INVALID_ARGUMENT", "give either dataDir or memory for the embedded store, not both");
    }
    if (options.memory !== true && options.dataDir === undefined) {
      throw new StoreError("INVALID_ARGUMENT", "say where the store is: url, dataDir, or memory");
    }
    const open = options.worker === false ? openPgliteExecutor : openPgliteWorkerExecutor;
    sql = await open(options.dataDir === undefined ? {} : { dataDir: options.dataDir });
  }
  const store = createStore(sql, driver, options.url === undefined ? options.dataDir : redactUrl(options.url));
  try {
    await store.ping();
    await migrate(sql);
  } catch (err) {
    await sql.close().catch(() => {});
    throw err;
  }
  return store;
}

async function publishCancelRoute(sql: SqlExecutor, route: NewCancelRoute, ttlSeconds: number): Promise<boolean> {
  const rows = await sql.query<{ session_id: string }>(
    `insert into cancel_routes (route_key, protocol, gateway, session_id, identity, expires_at)
     values ($1, $2, $3, $4, $5, now() + make_interval(secs => $6))
     on conflict (route_key) do update set protocol = excluded.protocol, gateway = excluded.gateway,
       session_id = excluded.session_id, identity = excluded.identity, expires_at = excluded.expires_at
     where cancel_routes.expires_at < now() or cancel_routes.session_id = excluded.session_id
     returning session_id`,
    [route.routeKey, route.protocol, route.gateway, route.sessionId, route.identity, ttlSeconds],
  );
  return rows.length === 1;
}

async function findCancelRoute(sql: SqlExecutor, routeKey: string): Promise<CancelRouteRecord | null> {
  const rows = await sql.query<{ route_key: string; protocol: string; gateway: string; session_id: string; identity: string | null }>(
    "select route_key, protocol, gateway, session_id, identity from cancel_routes where route_key = $1 and expires_at > now()",
    [routeKey],
  );
  const row = rows[0];
  return row === undefined ? null : { routeKey: row.route_key, protocol: row.protocol, gateway: row.gateway, sessionId: row.session_id, identity: row.identity };
}

/** The Store over an already open executor (openStore's second half; also for tests). */
export function createStore(sql: SqlExecutor, driver: StoreDriver, where?: string): Store {
  const partitions = new PartitionCache(sql);
  const listen = sql.listen?.bind(sql);
  return {
    driver,
    sql,
    cancelRoutes: {
      publish: (route, ttlSeconds) => publishCancelRoute(sql, route, ttlSeconds),
      find: (routeKey) => findCancelRoute(sql, routeKey),
      remove: async (gateway, routeKeys) => {
        if (routeKeys.length === 0) return;
        await sql.query("delete from cancel_routes where gateway = $1 and route_key = any(array(select jsonb_array_elements_text($2::jsonb)))", [gateway, routeKeys]);
      },
      renew: async (gateway, ttlSeconds) => {
        const rows = await sql.query<{ n: number }>(
          `with renewed as (update cancel_routes set expires_at = now() + make_interval(secs => $2) where gateway = $1 returning 1)
           select count(*)::int4 as n from renewed`,
          [gateway, ttlSeconds],
        );
        await sql.query("delete from cancel_routes where expires_at < now()");
        return rows[0]?.n ?? 0;
      },
    },
    notifications:
      listen === undefined
        ? null
        : {
            listen: async (channel, onPayload) => {
              const stop = await listen(channel, onPayload, () => undefined);
              return { unlisten: stop };
            },
            notify: async (channel, payload) => {
              await sql.query("select pg_notify($1, $2)", [channel, payload]);
            },
          },
    ping: async () => {
      try {
        await sql.query("select 1");
      } catch (err) {
        throw recode("CONNECT_FAILED", `the store${where === undefined ? "" : ` at ${where}`} does not answer`, err);
      }
    },
    sessions: {
      create: (session) => createSession(sql, session),
      close: (close) => closeSession(sql, close),
      list: async (filter) => (await searchSessions(sql, filter ?? {})).sessions,
      search: (filter) => searchSessions(sql, filter ?? {}),
      get: (id) => getSession(sql, id),
      last: async () => (await searchSessions(sql, { limit: 1 })).sessions[0] ?? null,
      scan: (options) => scanSessions(sql, options ?? {}),
    },
    events: {
      insertBatch: (events) => insertBatch(sql, partitions, events),
      forSessions: (ids) => eventsForSessions(sql, ids),
      search: (filter) => searchEvents(sql, filter ?? {}),
    },
    record: (batch) => recordBatch(sql, partitions, batch),
    retention: {
      partitions: () => eventPartitions(sql),
      dropBefore: (cutoffUs, options) => dropPartitionsBefore(sql, cutoffUs, options ?? {}),
    },
    checkpoints: {
      scan: (options) => scanCheckpoints(sql, options ?? {}),
      last: async (gateway) => {
        const rows = await read(`reading the last checkpoint of ${gateway}`, () =>
          sql.query<CheckpointRow>(`select ${CHECKPOINT_COLUMNS} from checkpoints where gateway = $1 order by seq desc limit 1`, [gateway]),
        );
        return rows[0] === undefined ? null : checkpointOf(rows[0]);
      },
    },
    streams: {
      chunks: (ids, streamId) => streamChunks(sql, ids, streamId),
    },
    accessKeys: {
      create: (key) => createAccessKey(sql, key),
      list: (filter) => listAccessKeys(sql, filter ?? {}),
      get: (id) => getAccessKey(sql, id),
      revoke: (id, atUs) => revokeAccessKey(sql, id, atUs),
      touch: (id, atUs) => touchAccessKey(sql, id, atUs),
    },
    sshKeys: {
      create: (key) => createSshKey(sql, key),
      list: (filter) => listSshKeys(sql, filter ?? {}),
      get: async (id) => (await listSshKeys(sql, { id, includeRevoked: true }))[0] ?? null,
      revoke: async (id, atUs) => {
        try {
          const rows = await sql.query(`update ssh_keys set revoked_at = $2::timestamptz where id = $1 and revoked_at is null returning id`, [id, usToIso(atUs)]);
          return rows.length === 1;
        } catch (err) {
          throw writeError(`revoking SSH key ${id}`, err, {});
        }
      },
      touch: async (id, atUs) => {
        try {
          await sql.query(`update ssh_keys set last_used_at = greatest(last_used_at, $2::timestamptz) where id = $1`, [id, usToIso(atUs)]);
        } catch (err) {
          throw writeError(`recording use of SSH key ${id}`, err, {});
        }
      },
    },
    gatewayKeys: {
      register: (pem, gateway) => registerGatewayKey(sql, pem, gateway),
      list: () => listGatewayKeys(sql),
      retire: async (keyId, atUs) => {
        try {
          const rows = await sql.query<{ status: "retired" | "already_retired" | "not_found" }>("select gatehouse_retire_gateway_key($1, $2::timestamptz) as status", [keyId, usToIso(atUs)]);
          return rows[0]!.status;
        } catch (err) {
          throw writeError(`retiring gateway key ${keyId}`, err, {});
        }
      },
    },
    identitySettings: {
      list: async () => {
        const rows = await read("reading identity settings", () =>
          sql.query<{ identity: string; disabled: boolean; updated_us: number }>(`select identity, disabled, ${usOf("updated_at")} as updated_us from identity_settings order by identity`),
        );
        return rows.map((r) => ({ identity: r.identity, disabled: r.disabled, updatedUs: r.updated_us }));
      },
      setDisabled: async (identity, disabled, atUs) => {
        try {
          await sql.query(
            `insert into identity_settings (identity, disabled, updated_at) values ($1, $2, $3::timestamptz)
             on conflict (identity) do update set disabled = excluded.disabled, updated_at = excluded.updated_at
             where identity_settings.disabled is distinct from excluded.disabled`,
            [identity, disabled, usToIso(atUs)],
          );
        } catch (err) {
          throw writeError(`setting identity ${identity}`, err, {});
        }
      },
    },
    changes: {
      version: async () => {
        const rows = await read("reading the change counter", () => sql.query<{ version: number }>("select last_value as version from gatehouse_change_seq"));
        return Number(rows[0]?.version ?? 0);
      },
      ...(sql.listen === undefined
        ? {}
        : {
            listen: (onChange: (change: StoreChange) => void, onListen: () => void) =>
              sql.listen!(CHANGE_CHANNEL, (payload) => {
                const change = changeOf(payload);
                if (change) onChange(change);
              }, onListen),
          }),
    },
    close: () => sql.close(),
  };
}

// ---------------------------------------------------------------------------------------------
// Gateway keys, identity settings, change notices (migration 007)

/** The channel migration 007's triggers notify. */
const CHANGE_CHANNEL = "gatehouse_changes";

function changeOf(payload: string): StoreChange | undefined {
  try {
    const value = JSON.parse(payload) as { table?: unknown; identity?: unknown; version?: unknown };
    if (typeof value.table !== "string") return undefined;
    return { table: value.table, identity: typeof value.identity === "string" ? value.identity : null, version: Number(value.version ?? 0) };
  } catch {
    return undefined;
  }
}

async function registerGatewayKey(sql: SqlExecutor, pem: string, gateway: string): Promise<GatewayKeyRegistration> {
  let rows: { key_id: string; inserted: boolean; retired_us: number | null }[];
  try {
    rows = await sql.query(`select key_id, inserted, ${usOf("retired_at")} as retired_us from gatehouse_register_gateway_key($1, $2)`, [pem, gateway]);
  } catch (err) {
    const wrapped = writeError(`registering gateway key of ${gateway}`, err, {});
    if (wrapped.context.sqlstate === "22023") throw new StoreError("INVALID_ARGUMENT", `not an Ed25519 public key: ${describe(wrapped)}`, { cause: wrapped.cause, context: wrapped.context });
    throw wrapped;
  }
  const row = rows[0]!;
  return { keyId: row.key_id, inserted: row.inserted, retiredUs: row.retired_us };
}

async function listGatewayKeys(sql: SqlExecutor): Promise<GatewayKeyRecord[]> {
  const rows = await read("listing gateway keys", () =>
    sql.query<{ key_id: string; public_key: string; gateway: string; created_us: number; retired_us: number | null }>(
      `select key_id, public_key, gateway, ${usOf("created_at")} as created_us, ${usOf("retired_at")} as retired_us from gateway_keys order by created_at, key_id`,
    ),
  );
  return rows.map((r) => ({ keyId: r.key_id, publicKeyPem: r.public_key, gateway: r.gateway, createdUs: r.created_us, retiredUs: r.retired_us }));
}

// ---------------------------------------------------------------------------------------------
// Sessions

async function createSession(sql: SqlExecutor, s: NewSession): Promise<void> {
  const startedAt = usToIso(s.startedUs);
  try {
    await sql.query(
      `insert into sessions (id, identity_name, identity_issuer, identity_subject, identity_groups,
         auth_method, connection, protocol, connector, client_address, client_application, started_at)
       values ($1, $2, $3, $4, array(select jsonb_array_elements_text($5::jsonb)),
         $6, $7, $8, $9, $10, $11, $12::timestamptz)`,
      [
        s.id,
        s.identity.name,
        s.identity.issuer ?? null,
        s.identity.subject ?? null,
        s.identity.groups ?? [],
        s.identity.method ?? null,
        s.connection,
        s.protocol,
        s.connector ?? null,
        s.clientAddress ?? null,
        s.clientApplication ?? null,
        startedAt,
      ],
    );
  } catch (err) {
    throw writeError(`creating session ${s.id}`, err, { sessionId: s.id });
  }
}

async function closeSession(sql: SqlExecutor, c: SessionClose): Promise<void> {
  const endedAt = usToIso(c.endedUs);
  let rows: { status: string }[];
  try {
    // Through the function (migration 002): the gateway's role has no UPDATE on sessions.
    rows = await sql.query<{ status: string }>(
      "select gatehouse_close_session($1, $2::timestamptz, $3, $4, $5) as status",
      [c.id, endedAt, c.endReason, c.finalHash ?? null, c.sealSignature ?? null],
    );
  } catch (err) {
    throw writeError(`closing session ${c.id}`, err, { sessionId: c.id });
  }
  switch (rows[0]?.status) {
    case "closed":
      return;
    case "not_found":
      throw new StoreError("NOT_FOUND", `no session ${c.id}`, { context: { sessionId: c.id } });
    default:
      throw new StoreError("CONFLICT", `session ${c.id} is already closed`, { context: { sessionId: c.id } });
  }
}

async function scanSessions(sql: SqlExecutor, options: { afterId?: string; limit?: number }): Promise<SessionRecord[]> {
  const limit = options.limit ?? 500;
  if (!Number.isSafeInteger(limit) || limit < 1) {
    throw new StoreError("INVALID_ARGUMENT", `limit must be a positive integer, got ${limit}`);
  }
  const rows = await read("scanning sessions", () =>
    options.afterId === undefined
      ? sql.query<SessionRow>(`select ${SESSION_COLUMNS} from sessions order by id limit $1`, [Math.min(limit, MAX_LIST_LIMIT)])
      : sql.query<SessionRow>(`select ${SESSION_COLUMNS} from sessions where id > $1 order by id limit $2`, [
          options.afterId,
          Math.min(limit, MAX_LIST_LIMIT),
        ]),
  );
  return rows.map(sessionOf);
}

async function getSession(sql: SqlExecutor, id: string): Promise<SessionWithEvents | null> {
  // One statement, so the session and its events come from one snapshot (its event_count
  // matches the events listed) and one round trip. The events travel as a JSON array whose
  // numbers (seq, µs) are integers below 2^53, so JSON.parse keeps them exact.
  const rows = await read(`reading session ${id}`, () =>
    sql.query<SessionRow & { events: EventRow[] }>(
      `select ${SESSION_COLUMNS},
         (select coalesce(json_agg(e order by e.seq), '[]'::json)
          from (select ${EVENT_COLUMNS} from events where session_id = s.id) e) as events
       from sessions s where s.id = $1`,
      [id],
    ),
  );
  const row = rows[0];
  return row === undefined ? null : { session: sessionOf(row), events: row.events.map(eventOf) };
}

// ---------------------------------------------------------------------------------------------
// Events

/**
 * The whole batch travels as one JSON document, unpacked by jsonb_to_recordset inside
 * gatehouse_insert_events (migration 001): one parameter, one statement, the same on both
 * drivers, and no per-row placeholders to run into the 65,535-parameter limit.
 */
const INSERT_BATCH_SQL = "select gatehouse_insert_events($1::jsonb)";

async function insertBatch(sql: SqlExecutor, partitions: PartitionCache, events: readonly SessionEvent[]): Promise<void> {
  if (events.length === 0) return;
  const rows = events.map(eventRowOf);
  let json: string;
  try {
    json = JSON.stringify(rows);
  } catch (err) {
    // A bigint or a cycle in params/details: nothing of the batch was sent.
    throw new StoreError("INVALID_ARGUMENT", `an event cannot be serialized as JSON: ${String(err)}`, {
      cause: err,
    });
  }
  if (UNSTORABLE_JSON.test(json)) throw unstorable(rows);
  try {
    await partitions.around(events, () => sql.query(INSERT_BATCH_SQL, [json]));
  } catch (err) {
    throw writeError(`inserting ${events.length} events`, err, {});
  }
}

/**
 * The months whose events partition this store has made sure of. Checked before each insert so the
 * insert itself never looks (one pass less over every batch); a month is asked for once per
 * process. Should a partition go missing since (retention dropped it, and a late event for that
 * month arrives), the insert fails with 23514: the cache is cleared and the insert tried once more.
 */
class PartitionCache {
  private readonly known = new Set<number>();

  constructor(private readonly sql: SqlExecutor) {}

  async around<T>(events: readonly SessionEvent[], insert: () => Promise<T>): Promise<T> {
    await this.ensure(events);
    try {
      return await insert();
    } catch (err) {
      if (!(err instanceof StoreError && err.context.sqlstate === "23514" && /no partition/i.test(describe(err)))) throw err;
      this.known.clear();
      await this.ensure(events);
      return insert();
    }
  }

  private async ensure(events: readonly SessionEvent[]): Promise<void> {
    let missing: number[] | undefined;
    let last = Number.NaN;
    for (const e of events) {
      const month = monthOf(e.timeUs);
      if (month === last || this.known.has(month)) continue;
      last = month;
      if (!(missing ??= []).includes(month)) missing.push(month);
    }
    if (missing === undefined) return;
    for (const month of missing) {
      const from = usToIso(month);
      await this.sql.query("select gatehouse_ensure_event_partitions($1::timestamptz, $1::timestamptz)", [from]);
      this.known.add(month);
    }
  }
}

/** The start of the UTC month holding `us`, in µs. */
function monthOf(us: number): number {
  const date = new Date(Math.floor(us / 1000));
  return Date.UTC(date.getUTCFullYear(), date.getUTCMonth(), 1) * 1000;
}

/**
 * JSON escapes that Postgres refuses in text and jsonb: NUL (`\u0000`) and an unpaired surrogate
 * (JSON.stringify writes those as `\udXXX`, paired ones as the character itself). An escape only
 * counts when preceded by an even number of backslashes; `\\u0000` is a user's literal text.
 * Caught here, one event can be named; at the database, the batch would fail with a bare 22P05.
 */
const UNSTORABLE_JSON = /(?<!\\)(?:\\\\)*\\u(?:0000|d[89a-f][0-9a-f]{2})/i;

function unstorable(rows: readonly Record<string, unknown>[]): StoreError {
  const row = rows.find((r) => UNSTORABLE_JSON.test(JSON.stringify(r))) ?? rows[0];
  const sessionId = String(row?.["session_id"] ?? row?.["id"]);
  const what = row?.["seq"] === undefined ? `session ${sessionId}` : `event ${sessionId}#${String(row["seq"])}`;
  return new StoreError(
    "INVALID_ARGUMENT",
    `${what} holds a NUL character or an unpaired surrogate, ` +
      "which Postgres cannot store in text or jsonb; the recorder must encode it",
    { context: { sessionId } },
  );
}

async function eventsForSessions(sql: SqlExecutor, ids: readonly string[]): Promise<SessionEvent[]> {
  if (ids.length === 0) return [];
  const rows = await read(`reading the events of ${ids.length} sessions`, () =>
    sql.query<EventRow>(
      `select ${EVENT_COLUMNS} from events
       where session_id in (select jsonb_array_elements_text($1::jsonb))
       order by session_id, seq, ts`,
      [ids],
    ),
  );
  return rows.map(eventOf);
}

async function recordBatch(sql: SqlExecutor, partitions: PartitionCache, batch: RecordBatch): Promise<RecordBatchResult> {
  const sessions = (batch.sessions ?? []).map(sessionRowOf);
  const events = (batch.events ?? []).map(eventRowOf);
  const closes = (batch.closes ?? []).map((c) => ({
    id: c.id,
    ended_at: usToIso(c.endedUs),
    end_reason: c.endReason,
    final_hash: c.finalHash ?? null,
    seal_signature: c.sealSignature ?? null,
  }));
  const checkpoints = (batch.checkpoints ?? []).map(checkpointRowOf);
  const chunks = (batch.chunks ?? []).map(chunkRowOf);
  if (sessions.length === 0 && events.length === 0 && closes.length === 0 && checkpoints.length === 0 && chunks.length === 0) {
    return { sessions: 0, events: 0, closed: 0, notClosed: [], checkpoints: 0, checkpointConflicts: [], chunks: 0 };
  }
  let json: string;
  try {
    const body: Record<string, unknown> = { sessions, events, closes };
    if (checkpoints.length > 0) body["checkpoints"] = checkpoints;
    if (chunks.length > 0) body["chunks"] = chunks;
    json = JSON.stringify(body);
  } catch (err) {
    throw new StoreError("INVALID_ARGUMENT", `a record batch cannot be serialized as JSON: ${String(err)}`, { cause: err });
  }
  if (UNSTORABLE_JSON.test(json)) throw unstorable([...sessions, ...events]);
  let rows: { result: RecordBatchResult }[];
  try {
    rows = await partitions.around(batch.events ?? [], () => sql.query<{ result: RecordBatchResult }>("select gatehouse_record($1::jsonb) as result", [json]));
  } catch (err) {
    throw writeError(`recording ${sessions.length} sessions, ${events.length} events, ${closes.length} closes`, err, {});
  }
  const result = rows[0]?.result;
  if (result === undefined) throw new StoreError("WRITE_FAILED", "gatehouse_record returned nothing");
  return { ...result, checkpoints: result.checkpoints ?? 0, checkpointConflicts: result.checkpointConflicts ?? [], chunks: result.chunks ?? 0 };
}

// ---------------------------------------------------------------------------------------------
// Streams

const DIRECTIONS: readonly string[] = ["i", "o", "e", "r"];

/** The data travels as base64 inside the batch's JSON (decoded by gatehouse_record): bytes, not escaped text. */
function chunkRowOf(c: StreamChunk): Record<string, unknown> {
  if (!Number.isSafeInteger(c.seq) || c.seq < 1 || !Number.isSafeInteger(c.streamId) || c.streamId < 1) {
    throw new StoreError("INVALID_ARGUMENT", `a stream chunk's stream id and seq must be positive integers, got ${c.streamId}#${c.seq}`, { context: { sessionId: c.sessionId } });
  }
  if (!DIRECTIONS.includes(c.direction)) throw new StoreError("INVALID_ARGUMENT", `a stream chunk's direction must be i, o, e or r, got ${String(c.direction)}`);
  return {
    session_id: c.sessionId,
    stream_id: c.streamId,
    seq: c.seq,
    ts: usToIso(c.timeUs),
    direction: c.direction,
    data: Buffer.from(c.data.buffer, c.data.byteOffset, c.data.byteLength).toString("base64"),
    prev_hash: c.prevHash,
    hash: c.hash,
  };
}

interface ChunkRow {
  session_id: string;
  stream_id: number;
  seq: number;
  time_us: number;
  direction: string;
  data: string;
  prev_hash: string;
  hash: string;
}

async function streamChunks(sql: SqlExecutor, ids: readonly string[], streamId: number | undefined): Promise<StreamChunk[]> {
  if (ids.length === 0) return [];
  // The data as base64 text: the two drivers hand bytea back in different shapes.
  const columns = `session_id, stream_id, seq, ${usOf("ts")} as time_us, direction, encode(data, 'base64') as data, prev_hash, hash`;
  const rows = await read(`reading the stream chunks of ${ids.length} sessions`, () =>
    streamId === undefined
      ? sql.query<ChunkRow>(
          `select ${columns} from stream_chunks where session_id in (select jsonb_array_elements_text($1::jsonb))
           order by session_id, stream_id, seq`,
          [ids],
        )
      : sql.query<ChunkRow>(
          `select ${columns} from stream_chunks where session_id in (select jsonb_array_elements_text($1::jsonb)) and stream_id = $2
           order by session_id, stream_id, seq`,
          [ids, streamId],
        ),
  );
  return rows.map((r) => ({
    sessionId: r.session_id,
    streamId: r.stream_id,
    seq: r.seq,
    timeUs: r.time_us,
    direction: r.direction as StreamDirection,
    data: Buffer.from(r.data, "base64"),
    prevHash: r.prev_hash,
    hash: r.hash,
  }));
}

// ---------------------------------------------------------------------------------------------
// Checkpoints

const CHECKPOINT_COLUMNS = `gateway, seq, ${usOf("ts")} as time_us, kind, session_id, details, prev_hash, hash, signature`;

interface CheckpointRow {
  gateway: string;
  seq: number;
  time_us: number;
  kind: string;
  session_id: string | null;
  details: Record<string, unknown> | null;
  prev_hash: string;
  hash: string;
  signature: string;
}

function checkpointOf(row: CheckpointRow): Checkpoint {
  return {
    gateway: row.gateway,
    seq: row.seq,
    timeUs: row.time_us,
    kind: row.kind,
    sessionId: row.session_id,
    details: row.details,
    prevHash: row.prev_hash,
    hash: row.hash,
    signature: row.signature,
  };
}

function checkpointRowOf(c: Checkpoint): Record<string, unknown> {
  if (!Number.isSafeInteger(c.seq) || c.seq < 1) throw new StoreError("INVALID_ARGUMENT", `checkpoint seq must be a positive integer, got ${c.seq}`);
  return {
    gateway: c.gateway,
    seq: c.seq,
    ts: usToIso(c.timeUs),
    kind: c.kind,
    session_id: c.sessionId,
    details: c.details,
    prev_hash: c.prevHash,
    hash: c.hash,
    signature: c.signature,
  };
}

async function scanCheckpoints(sql: SqlExecutor, options: { after?: { gateway: string; seq: number }; limit?: number }): Promise<Checkpoint[]> {
  const limit = options.limit ?? 500;
  if (!Number.isSafeInteger(limit) || limit < 1) throw new StoreError("INVALID_ARGUMENT", `limit must be a positive integer, got ${limit}`);
  const rows = await read("scanning checkpoints", () =>
    options.after === undefined
      ? sql.query<CheckpointRow>(`select ${CHECKPOINT_COLUMNS} from checkpoints order by gateway, seq limit $1`, [Math.min(limit, MAX_LIST_LIMIT)])
      : sql.query<CheckpointRow>(`select ${CHECKPOINT_COLUMNS} from checkpoints where (gateway, seq) > ($1, $2::int8) order by gateway, seq limit $3`, [
          options.after.gateway,
          options.after.seq,
          Math.min(limit, MAX_LIST_LIMIT),
        ]),
  );
  return rows.map(checkpointOf);
}

function sessionRowOf(s: NewSession): Record<string, unknown> {
  return {
    id: s.id,
    identity_name: s.identity.name,
    identity_issuer: s.identity.issuer ?? null,
    identity_subject: s.identity.subject ?? null,
    identity_groups: s.identity.groups ?? [],
    auth_method: s.identity.method ?? null,
    connection: s.connection,
    protocol: s.protocol,
    connector: s.connector ?? null,
    client_address: s.clientAddress ?? null,
    client_application: s.clientApplication ?? null,
    started_at: usToIso(s.startedUs),
  };
}

/** Only the keys that have a value: a missing key is read as SQL NULL by jsonb_to_recordset. */
function eventRowOf(e: SessionEvent): Record<string, unknown> {
  if (typeof e.sessionId !== "string" || e.sessionId === "") {
    throw new StoreError("INVALID_ARGUMENT", "an event has no sessionId");
  }
  if (!Number.isSafeInteger(e.seq) || e.seq < 1) {
    throw new StoreError("INVALID_ARGUMENT", `event seq must be a positive integer, got ${e.seq}`, {
      context: { sessionId: e.sessionId },
    });
  }
  const row: Record<string, unknown> = {
    session_id: e.sessionId,
    seq: e.seq,
    ts: usToIso(e.timeUs),
    kind: e.kind,
  };
  if (e.command != null) row["command"] = e.command;
  if (e.params != null) row["params"] = e.params;
  if (e.outcome != null) row["outcome"] = e.outcome;
  if (e.details != null) row["details"] = e.details;
  if (e.durationUs != null) row["duration_us"] = e.durationUs;
  if (e.prevHash != null) row["prev_hash"] = e.prevHash;
  if (e.hash != null) row["hash"] = e.hash;
  return row;
}

// ---------------------------------------------------------------------------------------------
// Retention

/** Partitions are named by migration 002's gatehouse_ensure_event_partitions: events_yYYYYmMM. */
const PARTITION_NAME = /^events_y(\d{4})m(\d{2})$/;

async function eventPartitions(sql: SqlExecutor): Promise<EventPartition[]> {
  const rows = await read("listing the events partitions", () =>
    sql.query<{ name: string }>(
      `select c.relname as name from pg_inherits i join pg_class c on c.oid = i.inhrelid
       where i.inhparent = 'events'::regclass`,
    ),
  );
  const partitions: EventPartition[] = [];
  for (const { name } of rows) {
    const match = PARTITION_NAME.exec(name);
    if (match === null) continue; // not one of ours: never touched
    const year = Number(match[1]);
    const month = Number(match[2]) - 1;
    partitions.push({ name, fromUs: Date.UTC(year, month, 1) * 1000, toUs: Date.UTC(year, month + 1, 1) * 1000 });
  }
  return partitions.sort((a, b) => a.fromUs - b.fromUs);
}

async function dropPartitionsBefore(sql: SqlExecutor, cutoffUs: number, options: RetentionOptions): Promise<RetentionResult> {
  usToIso(cutoffUs); // validates
  const dryRun = options.dryRun === true;
  // Far in the future when not given: every ended session counts as ended by then.
  const endedBy = usToIso(options.endedByUs ?? 8_000_000_000_000_000);
  const dropped = (await eventPartitions(sql)).filter((p) => p.toUs <= cutoffUs);
  const horizon = dropped.at(-1)?.toUs;
  if (horizon === undefined) return { dropped, sessionsDeleted: 0, straddlingEventsDeleted: 0 };
  const horizonIso = usToIso(horizon);
  if (dryRun) {
    const [row] = await read("counting expired sessions", () =>
      sql.query<{ sessions: number; events: number }>(
        `select count(*) as sessions,
                (select count(*) from events e where e.ts >= $1::timestamptz and e.session_id in
                   (select id from sessions where ended_at is not null and ended_at <= $2::timestamptz and started_at < $1::timestamptz)) as events
         from sessions where ended_at is not null and ended_at <= $2::timestamptz and started_at < $1::timestamptz`,
        [horizonIso, endedBy],
      ),
    );
    return { dropped, sessionsDeleted: row?.sessions ?? 0, straddlingEventsDeleted: row?.events ?? 0 };
  }
  try {
    return await sql.transaction(async (tx) => {
      for (const p of dropped) await tx.query(`drop table if exists "${p.name}"`);
      const [row] = await tx.query<{ sessions: number; events: number }>(
        `with gone as (
           delete from sessions where ended_at is not null and ended_at <= $2::timestamptz and started_at < $1::timestamptz returning id
         ), straddling as (
           delete from events e using gone where e.session_id = gone.id returning 1
         ), chunks as (
           delete from stream_chunks c using gone where c.session_id = gone.id
         )
         select (select count(*) from gone) as sessions, (select count(*) from straddling) as events`,
        [horizonIso, endedBy],
      );
      return { dropped, sessionsDeleted: row?.sessions ?? 0, straddlingEventsDeleted: row?.events ?? 0 };
    });
  } catch (err) {
    throw writeError("applying retention", err, {});
  }
}

// ---------------------------------------------------------------------------------------------
// Access keys

const ACCESS_KEY_COLUMNS = `
  id, identity, verifiers, ${usOf("created_at")} as created_us, ${usOf("expires_at")} as expires_us,
  ${usOf("revoked_at")} as revoked_us, ${usOf("last_used_at")} as last_used_us`;

interface AccessKeyRow {
  id: string;
  identity: string;
  verifiers: Record<string, unknown>;
  created_us: number;
  expires_us: number | null;
  revoked_us: number | null;
  last_used_us: number | null;
}

function accessKeyOf(row: AccessKeyRow): AccessKeyRecord {
  return {
    id: row.id,
    identity: row.identity,
    verifiers: row.verifiers,
    createdUs: row.created_us,
    expiresUs: row.expires_us,
    revokedUs: row.revoked_us,
    lastUsedUs: row.last_used_us,
  };
}

async function createAccessKey(sql: SqlExecutor, key: NewAccessKey): Promise<void> {
  const params = [
    key.id,
    key.identity,
    key.verifiers,
    usToIso(key.createdUs),
    key.expiresUs == null ? null : usToIso(key.expiresUs),
  ];
  try {
    await sql.query(
      `insert into access_keys (id, identity, verifiers, created_at, expires_at)
       values ($1, $2, $3::jsonb, $4::timestamptz, $5::timestamptz)`,
      params,
    );
  } catch (err) {
    throw writeError(`creating access key ${key.id}`, err, {});
  }
}

async function listAccessKeys(sql: SqlExecutor, filter: AccessKeyFilter): Promise<AccessKeyRecord[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  if (filter.identity !== undefined) {
    params.push(filter.identity);
    where.push(`identity = $${params.length}`);
  }
  if (filter.includeRevoked !== true) where.push("revoked_at is null");
  const rows = await read("listing access keys", () =>
    sql.query<AccessKeyRow>(
      `select ${ACCESS_KEY_COLUMNS} from access_keys
       ${where.length === 0 ? "" : `where ${where.join(" and ")}`}
       order by created_at, id`,
      params,
    ),
  );
  return rows.map(accessKeyOf);
}

async function getAccessKey(sql: SqlExecutor, id: string): Promise<AccessKeyRecord | null> {
  const rows = await read(`reading access key ${id}`, () =>
    sql.query<AccessKeyRow>(`select ${ACCESS_KEY_COLUMNS} from access_keys where id = $1`, [id]),
  );
  const row = rows[0];
  return row === undefined ? null : accessKeyOf(row);
}

async function revokeAccessKey(sql: SqlExecutor, id: string, atUs: number): Promise<boolean> {
  const at = usToIso(atUs);
  try {
    const rows = await sql.query(
      `update access_keys set revoked_at = $2::timestamptz where id = $1 and revoked_at is null returning id`,
      [id, at],
    );
    return rows.length === 1;
  } catch (err) {
    throw writeError(`revoking access key ${id}`, err, {});
  }
}

async function touchAccessKey(sql: SqlExecutor, id: string, atUs: number): Promise<void> {
  const at = usToIso(atUs);
  try {
    await sql.query(
      `update access_keys set last_used_at = greatest(last_used_at, $2::timestamptz) where id = $1`,
      [id, at],
    );
  } catch (err) {
    throw writeError(`recording use of access key ${id}`, err, {});
  }
}

// ---------------------------------------------------------------------------------------------
// SSH keys

const SSH_KEY_COLUMNS = `
  id, identity, algorithm, public_key, fingerprint, comment, ${usOf("created_at")} as created_us,
  ${usOf("expires_at")} as expires_us, ${usOf("revoked_at")} as revoked_us, ${usOf("last_used_at")} as last_used_us`;

interface SshKeyRow {
  id: string;
  identity: string;
  algorithm: string;
  public_key: string;
  fingerprint: string;
  comment: string | null;
  created_us: number;
  expires_us: number | null;
  revoked_us: number | null;
  last_used_us: number | null;
}

async function createSshKey(sql: SqlExecutor, key: NewSshKey): Promise<void> {
  try {
    await sql.query(
      `insert into ssh_keys (id, identity, algorithm, public_key, fingerprint, comment, created_at, expires_at)
       values ($1, $2, $3, $4, $5, $6, $7::timestamptz, $8::timestamptz)`,
      [
        key.id,
        key.identity,
        key.algorithm,
        key.publicKey,
        key.fingerprint,
        key.comment ?? null,
        usToIso(key.createdUs),
        key.expiresUs == null ? null : usToIso(key.expiresUs),
      ],
    );
  } catch (err) {
    throw writeError(`registering SSH key ${key.fingerprint}`, err, {});
  }
}

async function listSshKeys(sql: SqlExecutor, filter: SshKeyFilter & { id?: string }): Promise<SshKeyRecord[]> {
  const where: string[] = [];
  const params: unknown[] = [];
  for (const [column, value] of [["id", filter.id], ["identity", filter.identity], ["fingerprint", filter.fingerprint]] as const) {
    if (value === undefined) continue;
    params.push(value);
    where.push(`${column} = $${params.length}`);
  }
  if (filter.includeRevoked !== true || filter.fingerprint !== undefined) where.push("revoked_at is null");
  const rows = await read("listing SSH keys", () =>
    sql.query<SshKeyRow>(
      `select ${SSH_KEY_COLUMNS} from ssh_keys
       ${where.length === 0 ? "" : `where ${where.join(" and ")}`}
       order by created_at, id`,
      params,
    ),
  );
  return rows.map((row) => ({
    id: row.id,
    identity: row.identity,
    algorithm: row.algorithm,
    publicKey: row.public_key,
    fingerprint: row.fingerprint,
    comment: row.comment,
    createdUs: row.created_us,
    expiresUs: row.expires_us,
    revokedUs: row.revoked_us,
    lastUsedUs: row.last_used_us,
  }));
}

// ---------------------------------------------------------------------------------------------
// Errors

/** SQLSTATEs a caller can act on, mapped to the store's codes. */
function writeError(what: string, err: unknown, context: StoreErrorContext): StoreError {
  const wrapped = recode("WRITE_FAILED", what, err, context);
  switch (wrapped.context.sqlstate) {
    case "23505": // unique_violation
      return new StoreError("CONFLICT", `${what}: already stored (${describe(wrapped)})`, {
        cause: wrapped.cause,
        context: wrapped.context,
      });
    case "23503": // foreign_key_violation: events for a session that does not exist
      return new StoreError("NOT_FOUND", `${what}: no such session (${describe(wrapped)})`, {
        cause: wrapped.cause,
        context: wrapped.context,
      });
    default:
      return wrapped;
  }
}

function describe(err: StoreError): string {
  return err.cause instanceof Error ? err.cause.message : err.message;
}

async function read<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw recode("QUERY_FAILED", what, err);
  }
}

/** The URL without its password, for messages. */
function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== "") parsed.password = "***";
    return parsed.toString();
  } catch {
    return "the configured URL";
  }
}

import { recode, StoreError } from "./errors.js";
import type { SqlExecutor } from "./executor.js";
import { EVENT_COLUMNS, eventOf, SESSION_COLUMNS, sessionOf, type EventRow, type SessionRow } from "./rows.js";
import { usToIso } from "./time.js";
import type { EventFilter, EventMatch, EventPage, FoundEvent, SearchOutcome, SessionFilter, SessionPage } from "./types.js";

// Searching the record: events newest first (`events.search`) and sessions newest first
// (`sessions.list`), with the same conditions on events, paged by keyset so that a page never
// repeats or skips what was already stored when paging began, however much is inserted meanwhile.
// The indexes these queries lean on are migration 006's.

/** A search's `limit` default and ceiling (sessions and events alike). */
export const DEFAULT_LIST_LIMIT = 50;
export const MAX_LIST_LIMIT = 1000;

/** The kinds `outcome: "denied"` stands for: refused attempts (policy, authentication). */
export const DENIED_KINDS: readonly string[] = ["denied", "auth_failed"];

const OUTCOMES: readonly SearchOutcome[] = ["ok", "error", "denied"];

const DENIED_LIST = DENIED_KINDS.map((k) => `'${k}'`).join(", ");

/** A WHERE clause built one condition at a time, with its positional parameters. */
class Conditions {
  private readonly conditions: string[] = [];

  /** `params`: another Conditions' list, for a subquery whose placeholders continue the outer ones. */
  constructor(readonly params: unknown[] = []) {}

  /** Adds a parameter and returns its placeholder ($n). */
  param(value: unknown): string {
    this.params.push(value);
    return `$${this.params.length}`;
  }

  add(condition: string): void {
    this.conditions.push(condition);
  }

  get clause(): string {
    return this.conditions.length === 0 ? "" : `where ${this.conditions.join(" and ")}`;
  }

  get list(): string {
    return this.conditions.join(" and ");
  }
}

/** Events newest first by (time, session id, seq), after `filter.after` when given. */
export async function searchEvents(sql: SqlExecutor, filter: EventFilter): Promise<EventPage> {
  const limit = limitOf(filter.limit);
  const c = new Conditions();
  equals(c, "e.identity_name", filter.identity, "identity");
  equals(c, "e.connection", filter.connection, "connection");
  equals(c, "e.protocol", filter.protocol, "protocol");
  if (filter.sinceUs !== undefined) c.add(`e.ts >= ${c.param(usToIso(filter.sinceUs))}::timestamptz`);
  if (filter.untilUs !== undefined) c.add(`e.ts < ${c.param(usToIso(filter.untilUs))}::timestamptz`);
  matchEvent(c, filter, "e");
  if (filter.after !== undefined) {
    const { timeUs, sessionId, seq } = filter.after;
    if (typeof sessionId !== "string" || !Number.isSafeInteger(seq)) {
      throw new StoreError("INVALID_ARGUMENT", "after: expected an event's timeUs, sessionId and seq");
    }
    const ts = c.param(usToIso(timeUs));
    // The plain bound on ts lets the planner skip whole newer partitions; the row comparison is
    // the exact keyset position.
    c.add(`e.ts <= ${ts}::timestamptz`);
    c.add(`(e.ts, e.session_id, e.seq) < (${ts}::timestamptz, ${c.param(sessionId)}, ${c.param(seq)}::int8)`);
  }
  const rows = await read("searching events", () =>
    sql.query<EventRow & { identity: string | null; connection_name: string | null; protocol_name: string | null }>(
      // Events stored before migration 006, or written around the insert function, may lack the
      // session's copies: read those few from the session.
      `select ${EVENT_COLUMNS},
         coalesce(e.identity_name, (select s.identity_name from sessions s where s.id = e.session_id)) as identity,
         coalesce(e.connection, (select s.connection from sessions s where s.id = e.session_id)) as connection_name,
         coalesce(e.protocol, (select s.protocol from sessions s where s.id = e.session_id)) as protocol_name
       from events e
       ${c.clause}
       order by e.ts desc, e.session_id desc, e.seq desc
       limit ${c.param(limit + 1)}`,
      c.params,
    ),
  );
  const events: FoundEvent[] = rows.slice(0, limit).map((row) => ({
    ...eventOf(row),
    identity: row.identity ?? "",
    connection: row.connection_name ?? "",
    protocol: row.protocol_name ?? "",
  }));
  const last = events.at(-1);
  return { events, next: rows.length > limit && last !== undefined ? { timeUs: last.timeUs, sessionId: last.sessionId, seq: last.seq } : null };
}

/**
 * Sessions newest first by (start, id), after `filter.after` when given. Event conditions (kinds,
 * outcome, text, statuses) keep the sessions that have at least one such event.
 */
export async function searchSessions(sql: SqlExecutor, filter: SessionFilter): Promise<SessionPage> {
  const limit = limitOf(filter.limit);
  const c = new Conditions();
  equals(c, "s.identity_name", filter.identity, "identity");
  equals(c, "s.connection", filter.connection, "connection");
  equals(c, "s.protocol", filter.protocol, "protocol");
  if (filter.sinceUs !== undefined) c.add(`s.started_at >= ${c.param(usToIso(filter.sinceUs))}::timestamptz`);
  if (filter.untilUs !== undefined) c.add(`s.started_at < ${c.param(usToIso(filter.untilUs))}::timestamptz`);
  const onEvent = new Conditions(c.params);
  matchEvent(onEvent, filter, "e");
  // Events are recorded while their session is open, so none is older than its session's start: the
  // bound lets each probe skip the older monthly partitions (3–4× faster on a year of record,
  // docs/benchmarks.md "Search"). A day's margin leaves room for a clock stepped back meanwhile.
  if (onEvent.list !== "") {
    c.add(`exists (select 1 from events e where e.session_id = s.id and e.ts >= s.started_at - interval '1 day' and ${onEvent.list})`);
  }
  if (filter.after !== undefined) {
    const { startedUs, id } = filter.after;
    if (typeof id !== "string") throw new StoreError("INVALID_ARGUMENT", "after: expected a session's startedUs and id");
    c.add(`(s.started_at, s.id) < (${c.param(usToIso(startedUs))}::timestamptz, ${c.param(id)})`);
  }
  const rows = await read("listing sessions", () =>
    sql.query<SessionRow>(
      `select ${SESSION_COLUMNS} from sessions s
       ${c.clause}
       order by s.started_at desc, s.id desc
       limit ${c.param(limit + 1)}`,
      c.params,
    ),
  );
  const sessions = rows.slice(0, limit).map(sessionOf);
  const last = sessions.at(-1);
  return { sessions, next: rows.length > limit && last !== undefined ? { startedUs: last.startedUs, id: last.id } : null };
}

/** The conditions on one event (alias `e`) that a search and a session's "has such an event" share. */
function matchEvent(c: Conditions, match: EventMatch, e: string): void {
  if (match.kinds !== undefined) {
    const kinds = texts(match.kinds, "kinds");
    if (kinds.length === 1) c.add(`${e}.kind = ${c.param(kinds[0])}`);
    else c.add(`${e}.kind in (select jsonb_array_elements_text(${c.param(kinds)}::jsonb))`);
  }
  switch (match.outcome) {
    case undefined:
      break;
    case "ok":
      c.add(`${e}.outcome = 'ok'`);
      break;
    case "error":
      c.add(`${e}.outcome = 'error' and ${e}.kind not in (${DENIED_LIST})`);
      break;
    case "denied":
      c.add(`${e}.kind in (${DENIED_LIST})`);
      break;
    default:
      throw new StoreError("INVALID_ARGUMENT", `outcome must be one of ${OUTCOMES.join(", ")}, got ${String(match.outcome)}`);
  }
  if (match.text !== undefined) {
    const any = texts(match.text, "text").map((t) => `${e}.command ilike ${c.param(containsPattern(t))}`);
    c.add(any.length === 1 ? any[0]! : `(${any.join(" or ")})`);
  }
  if (match.sqlstate !== undefined) {
    if (typeof match.sqlstate !== "string" || match.sqlstate === "") throw new StoreError("INVALID_ARGUMENT", "sqlstate must be a non-empty string");
    c.add(`${e}.details->>'sqlstate' = ${c.param(match.sqlstate)}`);
  }
  if (match.exitStatus !== undefined) {
    // SSH says exitStatus, kubectl exec's status channel exitCode: both are a command's exit status.
    const status = `${c.param(String(integer(match.exitStatus, "exitStatus")))}::jsonb`;
    c.add(`(${e}.details->'exitStatus' = ${status} or ${e}.details->'exitCode' = ${status})`);
  }
  if (match.httpStatus !== undefined) {
    c.add(`${e}.details->'httpStatus' = ${c.param(String(integer(match.httpStatus, "httpStatus")))}::jsonb`);
  }
}

function equals(c: Conditions, column: string, value: string | undefined, name: string): void {
  if (value === undefined) return;
  if (typeof value !== "string") throw new StoreError("INVALID_ARGUMENT", `${name} must be a string`);
  c.add(`${column} = ${c.param(value)}`);
}

function texts(values: readonly string[], name: string): string[] {
  if (!Array.isArray(values) || values.length === 0 || values.some((v) => typeof v !== "string" || v === "")) {
    throw new StoreError("INVALID_ARGUMENT", `${name} must be a non-empty list of non-empty strings`);
  }
  return [...values];
}

function integer(value: number, name: string): number {
  if (!Number.isSafeInteger(value)) throw new StoreError("INVALID_ARGUMENT", `${name} must be an integer, got ${value}`);
  return value;
}

function limitOf(limit: number | undefined): number {
  const n = limit ?? DEFAULT_LIST_LIMIT;
  if (!Number.isSafeInteger(n) || n < 1) throw new StoreError("INVALID_ARGUMENT", `limit must be a positive integer, got ${n}`);
  return Math.min(n, MAX_LIST_LIMIT);
}

/** An ILIKE pattern matching `text` anywhere: its own %, _ and \ taken literally. */
export function containsPattern(text: string): string {
  return `%${text.replace(/[\\%_]/g, (ch) => `\\${ch}`)}%`;
}

async function read<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw recode("QUERY_FAILED", what, err);
  }
}

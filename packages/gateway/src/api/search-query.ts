import type { EventFilter, SearchOutcome, SessionFilter } from "@gatehouse/store";
import type { Clock } from "../clock.js";
import type { ConnectionConfig } from "../config/schema.js";
import { EVENT_KINDS } from "../sessions/event-kinds.js";
import { decodeEventCursor, decodeSessionCursor } from "./search-cursor.js";
import { BadParameter, MAX_SESSION_LIMIT, parseLimitParameter, parseTimeParameter } from "./session-query.js";

// The query of `GET /api/v1/events` and `GET /api/v1/sessions` (and of the CLI commands that call
// them): one set of filters for both lists. Everything is checked here, before the store is asked,
// so a bad value is the caller's 400 naming the parameter, never the store's 503.

/** Every parameter a search takes; any other is refused, so a misspelt filter is not silently ignored. */
export const SEARCH_PARAMETERS = ["identity", "connection", "protocol", "kind", "outcome", "since", "until", "q", "sqlstate", "exitStatus", "httpStatus", "limit", "cursor"] as const;

export const SEARCH_PROTOCOLS = ["postgres", "mysql", "ssh", "kubernetes", "tcp"] as const satisfies readonly ConnectionConfig["protocol"][];

export const SEARCH_OUTCOMES = ["ok", "error", "denied"] as const satisfies readonly SearchOutcome[];

/** The longest `q` taken: a command is what a person types, and a search term is a part of one. */
const MAX_TEXT = 1000;

/** The filters shared by both lists. */
type SharedFilter = Omit<EventFilter, "after">;

function sharedFilter(params: URLSearchParams, now: Clock): SharedFilter {
  for (const name of params.keys()) {
    if (!(SEARCH_PARAMETERS as readonly string[]).includes(name)) throw new BadParameter(name, `not a search parameter; expected one of ${SEARCH_PARAMETERS.join(", ")}`);
  }
  const filter: SharedFilter = {};
  const identity = params.get("identity");
  const connection = params.get("connection");
  if (identity) filter.identity = identity;
  if (connection) filter.connection = connection;
  const protocol = params.get("protocol");
  if (protocol) filter.protocol = oneOf("protocol", protocol, SEARCH_PROTOCOLS);
  const kinds = params.getAll("kind").flatMap((k) => k.split(",")).map((k) => k.trim()).filter((k) => k !== "");
  if (kinds.length > 0) filter.kinds = [...new Set(kinds.map((k) => oneOf("kind", k, EVENT_KINDS)))];
  const outcome = params.get("outcome");
  if (outcome) filter.outcome = oneOf("outcome", outcome, SEARCH_OUTCOMES);
  const since = params.get("since");
  const until = params.get("until");
  if (since !== null) filter.sinceUs = parseTimeParameter("since", since, now);
  if (until !== null) filter.untilUs = parseTimeParameter("until", until, now);
  const text = params.getAll("q").filter((q) => q !== "");
  for (const q of text) if (q.length > MAX_TEXT) throw new BadParameter("q", `expected at most ${MAX_TEXT} characters, got ${q.length}`);
  if (text.length > 0) filter.text = text;
  const sqlstate = params.get("sqlstate");
  if (sqlstate !== null) {
    if (!/^[0-9A-Za-z]{5}$/.test(sqlstate)) throw new BadParameter("sqlstate", `expected a five-character SQLSTATE such as 42P01, got "${sqlstate}"`);
    filter.sqlstate = sqlstate.toUpperCase();
  }
  const exitStatus = params.get("exitStatus");
  if (exitStatus !== null) {
    if (!/^-?\d{1,10}$/.test(exitStatus)) throw new BadParameter("exitStatus", `expected an integer exit status such as 1, got "${exitStatus}"`);
    filter.exitStatus = Number(exitStatus);
  }
  const httpStatus = params.get("httpStatus");
  if (httpStatus !== null) {
    if (!/^[1-5]\d\d$/.test(httpStatus)) throw new BadParameter("httpStatus", `expected an HTTP status from 100 to 599, got "${httpStatus}"`);
    filter.httpStatus = Number(httpStatus);
  }
  const limit = params.get("limit");
  if (limit !== null) filter.limit = parseLimitParameter("limit", limit, MAX_SESSION_LIMIT);
  return filter;
}

/** The query of `GET /api/v1/events`. */
export function eventSearch(params: URLSearchParams, now: Clock): EventFilter {
  const filter: EventFilter = sharedFilter(params, now);
  const cursor = params.get("cursor");
  if (cursor) filter.after = decodeEventCursor(cursor);
  return filter;
}

/**
 * The query of `GET /api/v1/sessions`: `since`/`until` on the session's start; the event filters
 * (kind, outcome, q, statuses) keep sessions with at least one event that matches them all.
 */
export function sessionSearch(params: URLSearchParams, now: Clock): SessionFilter {
  const filter: SessionFilter = sharedFilter(params, now);
  const cursor = params.get("cursor");
  if (cursor) filter.after = decodeSessionCursor(cursor);
  return filter;
}

function oneOf<T extends string>(parameter: string, value: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) throw new BadParameter(parameter, `expected one of ${allowed.join(", ")}, got "${value}"`);
  return value as T;
}

import { systemClock } from "../clock.js";
import { eventSearch, SEARCH_OUTCOMES, SEARCH_PROTOCOLS, sessionSearch } from "../api/search-query.js";
import { BadParameter, MAX_SESSION_LIMIT } from "../api/session-query.js";
import { UsageError } from "./command.js";

// The filters `gatehouse events search` and `gatehouse sessions list` share: the flags, their help,
// and the API query they become (GET /api/v1/events and /api/v1/sessions take the same parameters).

export const SEARCH_OPTIONS = {
  identity: { type: "string" },
  connection: { type: "string" },
  protocol: { type: "string" },
  kind: { type: "string", multiple: true },
  outcome: { type: "string" },
  since: { type: "string" },
  until: { type: "string" },
  text: { type: "string", multiple: true },
  sqlstate: { type: "string" },
  "exit-status": { type: "string" },
  "http-status": { type: "string" },
  limit: { type: "string" },
  cursor: { type: "string" },
  all: { type: "boolean" },
} as const;

export const SEARCH_HELP = `  --identity NAME     only this identity's
  --connection NAME   only this connection's
  --protocol P        only ${SEARCH_PROTOCOLS.join(", ")}
  --kind K            only events of kind K (query, exec, request, denied…); repeat
                      it or give K1,K2 for any of several
  --outcome O         ${SEARCH_OUTCOMES.join(", ")}: denied is a refused attempt (kinds
                      denied and auth_failed); error is any other failure
  --text S            the command contains S, ignoring case; repeat it for any of
                      several (--text drop --text truncate)
  --sqlstate S        the Postgres/MySQL error's SQLSTATE (42P01)
  --exit-status N     an SSH command's exit status, or a kubectl exec's exit code
  --http-status N     a Kubernetes request's HTTP status (403)
  --since TIME        from TIME (inclusive)
  --until TIME        before TIME
                      TIME: ISO 8601 (2026-11-24T07:00:00Z), microseconds since the
                      epoch, or a duration ago (30m, 24h, 7d)
  --limit N           at most N per page, 1 to ${MAX_SESSION_LIMIT} (default 50)
  --cursor C          the page after the one that printed this cursor
  --all               every page, not only the first`;

export interface SearchValues {
  identity?: string | undefined;
  connection?: string | undefined;
  protocol?: string | undefined;
  kind?: string[] | undefined;
  outcome?: string | undefined;
  since?: string | undefined;
  until?: string | undefined;
  text?: string[] | undefined;
  sqlstate?: string | undefined;
  "exit-status"?: string | undefined;
  "http-status"?: string | undefined;
  limit?: string | undefined;
  cursor?: string | undefined;
  all?: boolean | undefined;
}

/** The API parameter each flag becomes, and back (for naming the flag in an error). */
const PARAMETER: Record<string, string> = { text: "q", "exit-status": "exitStatus", "http-status": "httpStatus" };
const FLAG: Record<string, string> = Object.fromEntries(Object.entries(PARAMETER).map(([flag, parameter]) => [parameter, flag]));

/**
 * The API query for these flags, checked here with the API's own parser so a mistake is a usage
 * error naming the flag, before any round trip.
 */
export function searchQuery(values: SearchValues, list: "events" | "sessions"): URLSearchParams {
  if (values.all && values.cursor !== undefined) throw new UsageError("give --all or --cursor, not both");
  const params = new URLSearchParams();
  for (const [flag, value] of Object.entries(values)) {
    if (!(flag in SEARCH_OPTIONS) || flag === "all" || value === undefined) continue;
    for (const one of Array.isArray(value) ? value : [value]) params.append(PARAMETER[flag] ?? flag, String(one));
  }
  try {
    if (list === "events") eventSearch(params, systemClock);
    else sessionSearch(params, systemClock);
  } catch (error) {
    if (error instanceof BadParameter) throw new UsageError(`--${FLAG[error.parameter] ?? error.parameter}${error.message.slice(error.parameter.length)}`);
    throw error;
  }
  return params;
}

/**
 * The first page, or with `all` every page in turn (held in memory, then printed), and the cursor
 * after what was read (null: nothing more).
 */
export async function readPages<T>(
  query: URLSearchParams,
  all: boolean | undefined,
  page: (query: URLSearchParams) => Promise<{ items: T[]; nextCursor: string | null }>,
): Promise<{ items: T[]; nextCursor: string | null }> {
  const items: T[] = [];
  let next = await page(query);
  items.push(...next.items);
  while (all && next.nextCursor !== null) {
    const more = new URLSearchParams(query);
    more.set("cursor", next.nextCursor);
    next = await page(more);
    items.push(...next.items);
  }
  return { items, nextCursor: next.nextCursor };
}

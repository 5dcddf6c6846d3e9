import type { EventView, FoundEventView, SessionView } from "../api/views.js";

// Human-readable renderings of the record for the terminal; --json gives the API's own shapes.

export function formatSessionList(sessions: SessionView[]): string {
  if (sessions.length === 0) return "no sessions";
  const rows = sessions.map((s) => [
    s.id,
    s.startedAt.replace("T", " ").slice(0, 23),
    s.identity.name,
    s.connection,
    s.protocol,
    s.clientAddress ?? "-",
    String(s.eventCount),
    s.endReason ?? (s.endedUs === null ? "open" : "-"),
  ]);
  return table(["ID", "STARTED (UTC)", "IDENTITY", "CONNECTION", "PROTOCOL", "CLIENT", "EVENTS", "END"], rows);
}

/**
 * Events found by a search, one line each: when, who, where, what, and how it ended (with its
 * SQLSTATE, exit status or HTTP status). The command is cut to fit `columns` (the terminal's
 * width) when known.
 */
export function formatEventSearch(events: FoundEventView[], columns?: number): string {
  if (events.length === 0) return "no events";
  const header = ["TIME (UTC)", "IDENTITY", "CONNECTION", "KIND", "OUTCOME"];
  const rows = events.map((e) => [e.time.replace("T", " ").slice(0, 23), e.identity, e.connection, e.kind, outcomeOf(e)]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const room = columns === undefined ? 200 : Math.max(20, columns - widths.reduce((sum, w) => sum + w + 2, 0));
  return table([...header, "COMMAND"], rows.map((r, i) => [...r, commandOf(events[i]!, room)]));
}

/** ok / error / denied, with the status that says why: "error 42P01", "error exit 1", "error 403". */
function outcomeOf(e: FoundEventView): string {
  const details = e.details ?? {};
  const refused = e.kind === "denied" || e.kind === "auth_failed";
  const outcome = refused ? "denied" : (e.outcome ?? "-");
  const status = details["sqlstate"] ?? (details["exitStatus"] ?? details["exitCode"]) ?? details["httpStatus"];
  if (status === undefined || status === null) return outcome;
  const exit = details["sqlstate"] === undefined && (details["exitStatus"] ?? details["exitCode"]) !== undefined;
  return `${outcome} ${exit ? "exit " : ""}${String(status)}`;
}

function commandOf(e: FoundEventView, room: number): string {
  if (e.command) return oneLine(e.command, room);
  const reason = e.details?.["reason"];
  return typeof reason === "string" ? oneLine(`(${reason})`, room) : "-";
}

export function formatSession(session: SessionView, events: EventView[]): string {
  const identity = session.identity;
  const lines = [
    `session     ${session.id}`,
    `identity    ${identity.name}${identity.method ? ` (${identity.method})` : ""}${identity.groups?.length ? ` groups: ${identity.groups.join(", ")}` : ""}${identity.issuer ? ` issuer: ${identity.issuer}` : ""}${identity.subject ? ` subject: ${identity.subject}` : ""}`,
    `connection  ${session.connection} (${session.protocol}${session.connector ? ` via connector ${session.connector}` : ""})`,
    `client      ${session.clientAddress ?? "-"}${session.clientApplication ? `  application: ${session.clientApplication}` : ""}`,
    `started     ${session.startedAt}`,
    `ended       ${session.endedAt ?? "(open)"}${session.endReason ? `  reason: ${session.endReason}` : ""}`,
    `events      ${session.eventCount}`,
    "",
    "",
  ];
  const rows = events.map((e) => [
    String(e.seq),
    e.time.slice(11, 26),
    e.kind,
    e.outcome ?? "-",
    e.durationUs === null || e.durationUs === undefined ? "-" : formatDuration(e.durationUs),
    describeEvent(e),
  ]);
  return lines.join("\n") + table(["SEQ", "TIME (UTC)", "KIND", "OUTCOME", "DURATION", "COMMAND / DETAILS"], rows);
}

function describeEvent(event: EventView): string {
  const parts: string[] = [];
  if (event.command) parts.push(oneLine(event.command, 200));
  if (event.params?.length) parts.push(`params: ${oneLine(JSON.stringify(event.params), 120)}`);
  const details = event.details ?? {};
  const facts = Object.entries(details)
    .filter(([, v]) => v !== null && v !== undefined)
    .map(([k, v]) => `${k}=${typeof v === "string" ? oneLine(v, 160) : JSON.stringify(v)}`);
  if (facts.length) parts.push(facts.join(" "));
  return parts.join("  ") || "-";
}

export function formatDuration(us: number): string {
  if (us < 1000) return `${us}µs`;
  if (us < 1_000_000) return `${(us / 1000).toFixed(1)}ms`;
  return `${(us / 1_000_000).toFixed(2)}s`;
}

function oneLine(text: string, max: number): string {
  const flat = text.replace(/\s+/g, " ").trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (i === header.length - 1 ? 0 : (r[i] ?? "").length))));
  const render = (cells: string[]) =>
    cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join("  ").trimEnd();
  return [render(header), ...rows.map(render)].join("\n");
}

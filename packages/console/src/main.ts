import "./style.css";
import { api, ApiFailure, type AuthInfo, type ConnectionView, type ConnectorView, type Me, type Session, type SessionEvent, type Verdict } from "./api.js";
import { h, replace, type Child } from "./dom.js";
import { parseCast, player } from "./replay.js";

// The gatehouse web console: a hash-routed single page over the gateway's API.
//   #/sessions?FILTERS   sessions, newest first, the API's filters; counts refresh every 2 s
//   #/session/ID         one session: who, how, where from, verification, timeline, live tail, replay
//   #/search?FILTERS     events across sessions
//   #/connectors         attached connectors and the connections they serve
// Record data is only ever put on the page as text (dom.ts).

const app = document.getElementById("app")!;
let me: Me | null = null;
let oidc = false;
/** Stops the current page's timers and live streams when the route changes. */
let leave: Array<() => void> = [];

const FILTERS = ["identity", "connection", "protocol", "kind", "outcome", "since", "until", "q", "sqlstate", "exitStatus", "httpStatus"] as const;
const PROTOCOLS = ["", "postgres", "mysql", "ssh", "kubernetes", "tcp"];
const OUTCOMES = ["", "ok", "error", "denied"];
/** End reasons of sessions that were refused: they stand out in the list. */
const REFUSED_ENDS = new Set(["denied", "auth_failed", "unknown_connection", "identity_disabled"]);

window.addEventListener("hashchange", () => void render());
void start();

async function start(): Promise<void> {
  try {
    const info = await api.get<AuthInfo>("/ui/auth/me");
    me = info.me;
    oidc = info.oidc;
  } catch {
    me = null;
  }
  await render();
}

function route(): { path: string; params: URLSearchParams } {
  const hash = location.hash.replace(/^#/, "") || "/sessions";
  const [path = "/sessions", query = ""] = hash.split("?", 2);
  return { path, params: new URLSearchParams(query) };
}

async function render(): Promise<void> {
  for (const stop of leave) stop();
  leave = [];
  if (!me) return signIn();
  const { path, params } = route();
  const main = h("main", { id: "main" });
  replace(app, header(), main);
  try {
    if (path === "/sessions") await sessionsPage(main, params);
    else if (path.startsWith("/session/")) await sessionPage(main, decodeURIComponent(path.slice("/session/".length)));
    else if (path === "/search") await searchPage(main, params);
    else if (path === "/connectors") await connectorsPage(main);
    else replace(main, h("p", {}, "No such page. "), h("a", { href: "#/sessions" }, "Sessions"));
  } catch (error) {
    showError(main, error);
  }
}

function showError(into: Element, error: unknown): void {
  if (error instanceof ApiFailure && error.status === 401) {
    me = null;
    signIn("Your sign-in has ended; sign in again.");
    return;
  }
  replace(into, h("p", { class: "error", role: "alert" }, error instanceof Error ? error.message : String(error)));
}

function header(): HTMLElement {
  const { path } = route();
  const link = (href: string, text: string, active: boolean) => h("a", { href, class: active ? "active" : "" }, text);
  return h(
    "header",
    {},
    h("strong", { class: "brand" }, "gatehouse"),
    h("nav", {}, link("#/sessions", "Sessions", path.startsWith("/session")), link("#/search", "Search", path === "/search"), link("#/connectors", "Connectors", path === "/connectors")),
    h(
      "span",
      { class: "who", "data-testid": "signed-in-as" },
      `${me!.name}`,
      h("span", { class: "badge" }, me!.method === "admin_token" ? "admin" : me!.auditor ? "auditor" : "own sessions"),
      h("button", { type: "button", "data-testid": "sign-out", onclick: () => void signOut() }, "Sign out"),
    ),
  );
}

// --- sign-in ---------------------------------------------------------------------------------

function signIn(message?: string): void {
  const { params } = route();
  const failed = params.get("signin_error");
  const token = h("input", { type: "password", name: "token", autocomplete: "off", placeholder: "admin token", "aria-label": "admin token", "data-testid": "admin-token" });
  const status = h("p", { class: "error", role: "alert", "data-testid": "sign-in-error" }, message ?? failed ?? "");
  const form = h(
    "form",
    {
      class: "signin",
      onsubmit: (event) => {
        event.preventDefault();
        void (async () => {
          try {
            const result = await api.post<{ me: Me }>("/ui/auth/token", { token: token.value });
            me = result.me;
            token.value = "";
            if (location.hash.includes("signin_error")) location.hash = "#/sessions";
            await render();
          } catch (error) {
            status.textContent = error instanceof ApiFailure && error.status === 401 ? "That admin token is not valid." : error instanceof Error ? error.message : String(error);
          }
        })();
      },
    },
    h("label", { for: "token" }, "Admin token"),
    token,
    h("button", { type: "submit", "data-testid": "sign-in" }, "Sign in"),
  );
  replace(
    app,
    h(
      "section",
      { class: "signin-page", "data-testid": "sign-in-page" },
      h("h1", {}, "gatehouse console"),
      h("p", { class: "muted" }, "Sign in to read the record."),
      oidc ? h("p", {}, h("a", { class: "button", href: "/ui/auth/oidc/start", "data-testid": "oidc-sign-in" }, "Sign in with your identity provider")) : null,
      form,
      status,
    ),
  );
}

async function signOut(): Promise<void> {
  try {
    await api.post("/ui/auth/sign-out");
  } finally {
    me = null;
    location.hash = "#/sessions";
    await render();
  }
}

// --- filters ---------------------------------------------------------------------------------

function filterForm(params: URLSearchParams, target: string): HTMLFormElement {
  const inputs = new Map<string, HTMLInputElement | HTMLSelectElement>();
  const field = (name: (typeof FILTERS)[number], labelText: string, placeholder = "") => {
    let input: HTMLInputElement | HTMLSelectElement;
    if (name === "protocol" || name === "outcome") {
      input = h("select", { name, "aria-label": labelText, "data-testid": `filter-${name}` }, ...(name === "protocol" ? PROTOCOLS : OUTCOMES).map((v) => h("option", { value: v }, v === "" ? "any" : v)));
      input.value = params.get(name) ?? "";
    } else {
      input = h("input", { name, value: params.get(name) ?? "", placeholder, "aria-label": labelText, "data-testid": `filter-${name}` });
    }
    inputs.set(name, input);
    return h("label", {}, h("span", {}, labelText), input);
  };
  return h(
    "form",
    {
      class: "filters",
      onsubmit: (event) => {
        event.preventDefault();
        const next = new URLSearchParams();
        for (const [name, input] of inputs) if (input.value.trim() !== "") next.set(name, input.value.trim());
        location.hash = `#${target}?${next.toString()}`;
      },
    },
    field("identity", "Identity"),
    field("connection", "Connection"),
    field("protocol", "Protocol"),
    field("kind", "Kind", "query,exec"),
    field("outcome", "Outcome"),
    field("q", "Command contains"),
    field("since", "Since", "24h or ISO time"),
    field("until", "Until"),
    field("sqlstate", "SQLSTATE"),
    field("exitStatus", "Exit status"),
    field("httpStatus", "HTTP status"),
    h("button", { type: "submit", "data-testid": "filter-apply" }, "Apply"),
    h("a", { href: `#${target}` }, "Clear"),
  );
}

function apiQuery(params: URLSearchParams): URLSearchParams {
  const query = new URLSearchParams();
  for (const name of FILTERS) {
    const value = params.get(name);
    if (value) query.set(name, value);
  }
  return query;
}

// --- sessions list ---------------------------------------------------------------------------

async function sessionsPage(main: HTMLElement, params: URLSearchParams): Promise<void> {
  const body = h("tbody", { "data-testid": "sessions-body" });
  const summary = h("p", { class: "muted", "data-testid": "sessions-summary" });
  const more = h("div", {});
  replace(
    main,
    h("h1", {}, "Sessions"),
    filterForm(params, "/sessions"),
    summary,
    h("table", { class: "list", "data-testid": "sessions-table" }, h("thead", {}, h("tr", {}, ...["Started", "Identity", "Connection", "Protocol", "Client", "Events", "State"].map((t) => h("th", {}, t)))), body),
    more,
  );
  const query = apiQuery(params);
  let pages = 1;
  const load = async () => {
    // The first pages again, so counts and states stay current (an open session's count grows).
    const sessions: Session[] = [];
    let cursor: string | null = null;
    for (let i = 0; i < pages; i++) {
      const q = new URLSearchParams(query);
      if (cursor) q.set("cursor", cursor);
      const page: { sessions: Session[]; nextCursor: string | null } = await api.get(`/api/v1/sessions?${q.toString()}`);
      sessions.push(...page.sessions);
      cursor = page.nextCursor;
      if (!cursor) break;
    }
    replace(body, ...sessions.map(sessionRow));
    const open = sessions.filter((s) => s.endedAt === null).length;
    summary.textContent = `${sessions.length} session${sessions.length === 1 ? "" : "s"}${cursor ? " shown (more below)" : ""}, ${open} open · refreshed ${new Date().toLocaleTimeString()}`;
    replace(more, cursor ? h("button", { type: "button", "data-testid": "load-more", onclick: () => { pages++; void load(); } }, "Load more") : null);
  };
  await load();
  const timer = window.setInterval(() => void load().catch((error: unknown) => error instanceof ApiFailure && error.status === 401 && showError(main, error)), 2000);
  leave.push(() => window.clearInterval(timer));
}

function sessionRow(s: Session): HTMLTableRowElement {
  return h(
    "tr",
    { "data-testid": "session-row" },
    h("td", {}, h("a", { href: `#/session/${encodeURIComponent(s.id)}` }, shortTime(s.startedAt))),
    h("td", { "data-testid": "session-identity" }, s.identity.name),
    h("td", {}, s.connection),
    h("td", {}, s.protocol),
    h("td", {}, s.clientApplication ?? "", s.clientAddress ? h("span", { class: "muted" }, ` ${s.clientAddress}`) : null),
    h("td", { class: "num", "data-testid": "session-events" }, String(s.eventCount)),
    h("td", {}, s.endedAt === null ? h("span", { class: "badge live" }, "open") : h("span", { class: REFUSED_ENDS.has(s.endReason ?? "") ? "badge denied" : "badge" }, s.endReason ?? "ended")),
  );
}

// --- one session -----------------------------------------------------------------------------

async function sessionPage(main: HTMLElement, id: string): Promise<void> {
  const found = await api.get<{ session: Session; events: SessionEvent[] }>(`/api/v1/sessions/${encodeURIComponent(id)}`);
  let session = found.session;
  const facts = h("dl", { class: "facts", "data-testid": "session-facts" });
  const verification = h("div", { class: "verification", "data-testid": "verification" }, "Verifying the hash chain and seal…");
  const timeline = h("tbody", { "data-testid": "timeline" });
  const liveState = h("span", { class: "muted", "data-testid": "live-state" });
  const streams = h("section", { "data-testid": "streams" });
  const showFacts = () =>
    replace(
      facts,
      fact("Session", session.id),
      fact("Identity", session.identity.name),
      fact("Authenticated by", methodText(session.identity)),
      session.identity.groups && session.identity.groups.length > 0 ? fact("Groups", session.identity.groups.join(", ")) : null,
      fact("Connection", `${session.connection} (${session.protocol})`),
      session.connector ? fact("Connector", session.connector) : null,
      fact("Client", [session.clientApplication, session.clientAddress].filter(Boolean).join(" from ") || "unknown"),
      fact("Started", session.startedAt),
      fact("Ended", session.endedAt ?? "still open"),
      session.endedAt ? fact("End reason", session.endReason ?? "none recorded") : null,
      fact("Events", String(session.eventCount)),
    );
  showFacts();
  replace(
    main,
    h("p", {}, h("a", { href: "#/sessions" }, "← Sessions")),
    h("h1", {}, `${session.identity.name} → ${session.connection}`),
    facts,
    verification,
    h("h2", {}, "Timeline ", liveState),
    h("table", { class: "timeline" }, h("thead", {}, h("tr", {}, ...["#", "Time", "Kind", "Command", "Outcome", "Duration", "Details"].map((t) => h("th", {}, t)))), timeline),
    streams,
  );
  let lastSeq = 0;
  const add = (events: readonly SessionEvent[]) => {
    for (const e of events) {
      if (e.seq <= lastSeq) continue;
      lastSeq = e.seq;
      timeline.appendChild(eventRow(e));
    }
  };
  add(found.events);
  void verify(verification, session.id);
  void showStreams(streams, session, found.events);

  if (session.endedAt === null) {
    // Live tail: the gateway pushes each event once it is in the store (server-sent events).
    const source = new EventSource(`/api/v1/sessions/${encodeURIComponent(session.id)}/live?after=${lastSeq}`);
    liveState.textContent = "live";
    liveState.className = "badge live";
    source.addEventListener("event", (message) => add([JSON.parse((message as MessageEvent<string>).data) as SessionEvent]));
    source.addEventListener("session", (message) => {
      session = JSON.parse((message as MessageEvent<string>).data) as Session;
      showFacts();
      if (session.endedAt !== null) {
        liveState.textContent = "ended";
        liveState.className = "badge";
        source.close();
        void verify(verification, session.id);
        void api.get<{ session: Session; events: SessionEvent[] }>(`/api/v1/sessions/${encodeURIComponent(session.id)}`).then((r) => showStreams(streams, r.session, r.events));
      }
    });
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) liveState.textContent = "live tail lost; reload to resume";
    };
    leave.push(() => source.close());
  }
}

function keysText(v: Verdict): string {
  const keys = v.trustedKeys ?? [v.keyId];
  const from = v.keysFrom === "pinned" ? "pinned in console.publicKeys" : "this gateway's and the store's registered gateway keys";
  return `${keys.length} key${keys.length === 1 ? "" : "s"} (${from}: ${keys.join(", ")})`;
}

function fact(term: string, value: string): Child {
  return [h("dt", {}, term), h("dd", {}, value)];
}

function methodText(identity: Session["identity"]): string {
  switch (identity.method) {
    case "access_key":
      return "access key";
    case "oidc":
      return `OIDC token${identity.issuer ? ` from ${identity.issuer}` : ""}${identity.subject ? ` (subject ${identity.subject})` : ""}`;
    case "ssh_key":
      return "SSH public key";
    case "none":
      return "not authenticated";
    default:
      return identity.method ?? "not recorded";
  }
}

async function verify(into: HTMLElement, id: string): Promise<void> {
  try {
    const v = await api.get<Verdict>(`/api/v1/sessions/${encodeURIComponent(id)}/verify`);
    into.className = `verification ${v.ok ? "ok" : "bad"}`;
    if (v.ok) {
      replace(into, h("strong", { "data-testid": "verify-result" }, v.open ? "Hash chain verifies (the session is still open, so there is no seal yet)." : "Hash chain and seal verify."), h("span", { class: "muted" }, ` ${v.events} events; seals checked against ${keysText(v)}.`));
    } else {
      const f = v.failure!;
      // The timeline row the check stopped at is marked too, so an auditor sees where the record breaks.
      if (f.seq !== null) document.querySelector(`tr[data-testid="event-row"][data-seq="${f.seq}"]`)?.classList.add("unverified");
      replace(
        into,
        h("strong", { "data-testid": "verify-result" }, "This record does NOT verify."),
        h("span", {}, ` ${f.reason}${f.seq === null ? "" : ` at event ${f.seq}`}${f.stream ? ` (stream ${f.stream.id}${f.stream.chunk === null ? "" : `, chunk ${f.stream.chunk}`})` : ""}: ${f.message}`),
      );
    }
  } catch (error) {
    into.className = "verification bad";
    replace(into, h("strong", { "data-testid": "verify-result" }, "Could not verify: "), error instanceof Error ? error.message : String(error));
  }
}

function eventRow(e: SessionEvent): HTMLTableRowElement {
  const refused = e.kind === "denied" || e.kind === "auth_failed";
  const failed = e.outcome === "error" || e.kind === "server_error";
  const details = e.details ?? {};
  const code = str(details.sqlstate) ?? str(details.errno) ?? str(details.code) ?? (details.exitStatus !== undefined ? `exit ${String(details.exitStatus)}` : undefined) ?? (details.exitCode !== undefined ? `exit ${String(details.exitCode)}` : undefined) ?? (details.httpStatus !== undefined ? `HTTP ${String(details.httpStatus)}` : undefined);
  const message = str(details.message) ?? str(details.reason) ?? str(details.error);
  const rest = Object.fromEntries(Object.entries(details).filter(([k]) => !["message", "reason", "stream"].includes(k)));
  return h(
    "tr",
    { class: refused ? "refused" : failed ? "failed" : "", "data-testid": "event-row", "data-seq": String(e.seq), "data-kind": e.kind },
    h("td", { class: "num" }, String(e.seq)),
    h("td", { class: "time" }, shortTime(e.time)),
    h("td", {}, e.kind),
    h(
      "td",
      { class: "command" },
      e.command ? h("pre", { "data-testid": "event-command" }, printable(e.command)) : null,
      e.params && e.params.length > 0 ? h("div", { class: "params" }, "parameters: ", h("code", {}, JSON.stringify(e.params))) : null,
    ),
    h("td", {}, outcomeBadge(e)),
    h("td", { class: "num" }, e.durationUs === null || e.durationUs === undefined ? "" : duration(e.durationUs)),
    h(
      "td",
      { class: "details" },
      code ? h("span", { class: "code" }, code) : null,
      message ? h("div", { class: "message" }, printable(message)) : null,
      Object.keys(rest).length > 0 ? h("details", {}, h("summary", {}, "details"), h("pre", {}, JSON.stringify(rest, null, 2))) : null,
    ),
  );
}

function outcomeBadge(e: SessionEvent): HTMLElement | null {
  if (e.kind === "denied") return h("span", { class: "badge denied" }, "denied");
  if (e.kind === "auth_failed") return h("span", { class: "badge denied" }, "auth failed");
  if (e.outcome === "error") return h("span", { class: "badge error" }, "error");
  if (e.outcome === "ok") return h("span", { class: "badge ok" }, "ok");
  return null;
}

async function showStreams(into: HTMLElement, session: Session, events: readonly SessionEvent[]): Promise<void> {
  const ids = new Set<number>();
  for (const e of events) {
    const stream = (e.details as { stream?: { streamId?: number } } | null | undefined)?.stream;
    if (typeof stream?.streamId === "number") ids.add(stream.streamId);
  }
  const streamIds: Array<number | "first"> = ids.size > 0 ? [...ids].sort((a, b) => a - b) : session.protocol === "ssh" || session.protocol === "kubernetes" ? ["first"] : [];
  if (streamIds.length === 0) return replace(into);
  const blocks: Child[] = [];
  for (const streamId of streamIds) {
    const base = `/api/v1/sessions/${encodeURIComponent(session.id)}/streams/${streamId}`;
    try {
      const response = await fetch(`${base}?format=asciicast`, { credentials: "same-origin", cache: "no-store" });
      if (response.status === 404) continue;
      if (!response.ok) throw new Error(`the stream could not be read (${response.status})`);
      const cast = parseCast(await response.text());
      blocks.push(
        h(
          "div",
          { class: "stream", "data-testid": "stream" },
          h("h3", {}, `Terminal stream ${streamId === "first" ? "" : streamId}`, h("span", { class: "muted" }, ` ${cast.frames.length} chunks, ${cast.duration.toFixed(1)} s`)),
          h("p", {}, h("a", { class: "button", href: `${base}?format=asciicast`, download: `${session.id}-${streamId}.cast`, "data-testid": "export-asciicast" }, "Export asciicast"), " ", h("a", { class: "button", href: `${base}?format=jsonl`, download: `${session.id}-${streamId}.jsonl`, "data-testid": "export-jsonl" }, "Export JSON Lines")),
          player(cast),
        ),
      );
    } catch (error) {
      blocks.push(h("p", { class: "error" }, error instanceof Error ? error.message : String(error)));
    }
  }
  replace(into, blocks.length > 0 ? h("h2", {}, "Replay") : null, ...blocks);
}

// --- search ----------------------------------------------------------------------------------

async function searchPage(main: HTMLElement, params: URLSearchParams): Promise<void> {
  const body = h("tbody", { "data-testid": "search-body" });
  const summary = h("p", { class: "muted", "data-testid": "search-summary" });
  const more = h("div", {});
  replace(
    main,
    h("h1", {}, "Search events"),
    filterForm(params, "/search"),
    summary,
    h("table", { class: "timeline" }, h("thead", {}, h("tr", {}, ...["Time", "Identity", "Connection", "Kind", "Command", "Outcome", "Duration", "Details", "Session"].map((t) => h("th", {}, t)))), body),
    more,
  );
  let count = 0;
  const load = async (cursor: string | null) => {
    const q = apiQuery(params);
    if (cursor) q.set("cursor", cursor);
    const page = await api.get<{ events: SessionEvent[]; nextCursor: string | null }>(`/api/v1/events?${q.toString()}`);
    for (const e of page.events) {
      const row = eventRow(e);
      row.removeChild(row.firstChild!); // no seq column here
      row.insertBefore(h("td", {}, e.connection ?? ""), row.children[1] ?? null);
      row.insertBefore(h("td", {}, e.identity ?? ""), row.children[1] ?? null);
      row.appendChild(h("td", {}, h("a", { href: `#/session/${encodeURIComponent(e.sessionId)}` }, `#${e.seq} of ${e.sessionId.slice(0, 8)}…`)));
      body.appendChild(row);
    }
    count += page.events.length;
    summary.textContent = `${count} event${count === 1 ? "" : "s"}${page.nextCursor ? " shown (more below)" : ""}`;
    replace(more, page.nextCursor ? h("button", { type: "button", onclick: () => void load(page.nextCursor) }, "Load more") : null);
  };
  await load(null);
}

// --- connectors ------------------------------------------------------------------------------

async function connectorsPage(main: HTMLElement): Promise<void> {
  const connectors = h("tbody", { "data-testid": "connectors-body" });
  const connections = h("tbody", { "data-testid": "connections-body" });
  const stamp = h("p", { class: "muted" });
  replace(
    main,
    h("h1", {}, "Connectors"),
    stamp,
    h("table", { class: "list" }, h("thead", {}, h("tr", {}, ...["Connector", "From", "Attached since", "Streams", "Round trip", "State"].map((t) => h("th", {}, t)))), connectors),
    h("h2", {}, "Connections"),
    h("table", { class: "list" }, h("thead", {}, h("tr", {}, ...["Connection", "Protocol", "Connector", "Attached"].map((t) => h("th", {}, t)))), connections),
  );
  const load = async () => {
    const view = await api.get<{ connectors: ConnectorView[]; connections?: ConnectionView[] }>("/api/v1/connectors");
    replace(
      connectors,
      ...view.connectors.map((c) =>
        h("tr", { "data-testid": "connector-row" }, h("td", {}, c.name), h("td", {}, c.remoteAddress), h("td", {}, new Date(c.connectedUs / 1000).toISOString()), h("td", { class: "num" }, String(c.streams)), h("td", { class: "num" }, c.roundTripMs === undefined || c.roundTripMs === null ? "—" : `${c.roundTripMs.toFixed(1)} ms`), h("td", {}, c.draining ? h("span", { class: "badge error" }, "draining") : h("span", { class: "badge ok" }, "live"))),
      ),
    );
    if (view.connectors.length === 0) replace(connectors, h("tr", {}, h("td", {}, "No connector is attached.")));
    replace(
      connections,
      ...(view.connections ?? []).map((c) => h("tr", {}, h("td", {}, c.name), h("td", {}, c.protocol), h("td", {}, c.connector), h("td", {}, c.attached > 0 ? h("span", { class: "badge ok" }, `${c.attached} attached`) : h("span", { class: "badge denied" }, "no connector")))),
    );
    stamp.textContent = `Refreshed ${new Date().toLocaleTimeString()}`;
  };
  await load();
  const timer = window.setInterval(() => void load().catch(() => undefined), 3000);
  leave.push(() => window.clearInterval(timer));
}

// --- formatting ------------------------------------------------------------------------------

function shortTime(iso: string): string {
  return iso.replace("T", " ").replace(/Z$/, "");
}

function duration(us: number): string {
  if (us < 1000) return `${us} µs`;
  if (us < 1_000_000) return `${(us / 1000).toFixed(1)} ms`;
  return `${(us / 1_000_000).toFixed(2)} s`;
}

/**
 * Control characters (a terminal escape, a bell) shown as their Unicode pictures (␛, ␇), so an
 * auditor sees that they were there; the raw bytes are in the exports.
 */
function printable(text: string): string {
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, (c) => String.fromCharCode(c === "\u007f" ? 0x2421 : 0x2400 + c.charCodeAt(0)));
}

function str(value: unknown): string | undefined {
  return typeof value === "string" || typeof value === "number" ? String(value) : undefined;
}

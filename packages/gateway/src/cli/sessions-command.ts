import { renameSync, writeFileSync } from "node:fs";
import { API_TARGET_HELP, API_TARGET_OPTIONS, ApiClient, resolveApiTarget } from "./api-client.js";
import { parseCommand, UsageError, write, type CommandContext } from "./command.js";
import { formatSession, formatSessionList } from "./format.js";
import { readPages, SEARCH_HELP, SEARCH_OPTIONS, searchQuery } from "./search-options.js";

const COMMON = `  --json              print the API's JSON instead of a table
${API_TARGET_HELP}`;

export const SESSIONS_HELP = `Usage:
  gatehouse sessions list [--identity NAME] [--connection NAME] [--protocol P] [--since TIME] [--until TIME]
                          [--kind K] [--outcome O] [--text S] [--sqlstate S] [--exit-status N]
                          [--http-status N] [--limit N] [--all|--cursor C] [--json]
  gatehouse sessions show ID|--last [--json]
  gatehouse sessions export ID --format asciicast|jsonl [--stream N] [--out FILE]

Reads the record through the gateway's API. Sessions are listed newest first; --since and
--until are on a session's start, and the event filters (--kind, --outcome, --text and the
statuses) keep the sessions with at least one event that matches them all.

Options:
${SEARCH_HELP}
  --format F          export: asciicast (v2, for asciinema play/cat) or jsonl
                      (every chunk as stored, base64, with its hashes)
  --stream N          export: which of the session's streams (default: its first)
  --out FILE          export: write to FILE instead of stdout
${COMMON}`;

const shared = {
  ...API_TARGET_OPTIONS,
  json: { type: "boolean" },
} as const;

export async function sessionsCommand(ctx: CommandContext): Promise<number> {
  const [sub, ...rest] = ctx.argv;
  if (sub === undefined || sub === "--help" || sub === "-h" || sub === "help") {
    write(ctx.stdout, SESSIONS_HELP);
    return sub === undefined ? 2 : 0;
  }
  if (sub === "list") return list({ ...ctx, argv: rest });
  if (sub === "show") return show({ ...ctx, argv: rest });
  if (sub === "export") return exportStream({ ...ctx, argv: rest });
  throw new UsageError(`unknown sessions subcommand "${sub}"`);
}

async function list(ctx: CommandContext): Promise<number> {
  const { values } = parseCommand(ctx.argv, { ...shared, ...SEARCH_OPTIONS });
  if (values.help) {
    write(ctx.stdout, SESSIONS_HELP);
    return 0;
  }
  // Checked here too, so a typo is a usage error naming the option rather than a round trip.
  const query = searchQuery(values, "sessions");
  const client = new ApiClient(resolveApiTarget({ gateway: values.gateway, dataDir: values["data-dir"], ca: values.ca, env: ctx.env }));
  const { items: sessions, nextCursor } = await readPages(query, values.all, async (q) => {
    const page = await client.sessionPage(q);
    return { items: page.sessions, nextCursor: page.nextCursor };
  });
  // --json stays the list of sessions it always was; the next page's cursor goes to stderr.
  write(ctx.stdout, values.json ? JSON.stringify(sessions, null, 2) : formatSessionList(sessions));
  if (nextCursor !== null) write(ctx.stderr, `more: add --cursor ${nextCursor} for the next page, or --all`);
  return 0;
}

async function show(ctx: CommandContext): Promise<number> {
  const { values, positionals } = parseCommand(ctx.argv, { ...shared, last: { type: "boolean" } }, 1);
  if (values.help) {
    write(ctx.stdout, SESSIONS_HELP);
    return 0;
  }
  const id = positionals[0];
  if (!id === !values.last) throw new UsageError("sessions show needs a session ID or --last (not both)");
  const client = new ApiClient(resolveApiTarget({ gateway: values.gateway, dataDir: values["data-dir"], ca: values.ca, env: ctx.env }));
  let sessionId = id;
  if (values.last) {
    const [last] = await client.listSessions({ limit: "1" });
    if (!last) {
      write(ctx.stderr, "no sessions recorded yet");
      return 1;
    }
    sessionId = last.id;
  }
  const { session, events } = await client.getSession(sessionId!);
  write(ctx.stdout, values.json ? JSON.stringify({ session, events }, null, 2) : formatSession(session, events));
  return 0;
}

async function exportStream(ctx: CommandContext): Promise<number> {
  const { values, positionals } = parseCommand(ctx.argv, { ...API_TARGET_OPTIONS, format: { type: "string" }, stream: { type: "string" }, out: { type: "string" } }, 1);
  if (values.help) {
    write(ctx.stdout, SESSIONS_HELP);
    return 0;
  }
  const id = positionals[0];
  if (!id) throw new UsageError("sessions export needs a session ID");
  const format = values.format ?? "asciicast";
  if (format !== "asciicast" && format !== "jsonl") throw new UsageError(`--format: expected asciicast or jsonl, got "${format}"`);
  let stream: number | undefined;
  if (values.stream !== undefined) {
    if (!/^[1-9]\d{0,8}$/.test(values.stream)) throw new UsageError(`--stream: expected a stream number (1, 2, ...), got "${values.stream}"`);
    stream = Number(values.stream);
  }
  const client = new ApiClient(resolveApiTarget({ gateway: values.gateway, dataDir: values["data-dir"], ca: values.ca, env: ctx.env }));
  const text = await client.exportStream(id, stream, format);
  if (values.out === undefined) {
    ctx.stdout.write(text);
    return 0;
  }
  // Written whole, then renamed: a reader never sees half an export.
  const temporary = `${values.out}.tmp-${process.pid}`;
  writeFileSync(temporary, text);
  renameSync(temporary, values.out);
  return 0;
}

import { API_TARGET_HELP, API_TARGET_OPTIONS, ApiClient, resolveApiTarget } from "./api-client.js";
import { parseCommand, UsageError, write, type CommandContext } from "./command.js";
import { formatEventSearch } from "./format.js";
import { readPages, SEARCH_HELP, SEARCH_OPTIONS, searchQuery } from "./search-options.js";

export const EVENTS_HELP = `Usage:
  gatehouse events search [--identity NAME] [--connection NAME] [--protocol P] [--kind K]
                          [--outcome ok|error|denied] [--since TIME] [--until TIME] [--text S]
                          [--sqlstate S] [--exit-status N] [--http-status N] [--limit N]
                          [--all|--cursor C] [--json]

Searches the recorded events of every session through the gateway's API, newest first. Every
DROP or TRUNCATE copilot-agent ran in the last week, and how each ended:

  gatehouse events search --identity copilot-agent --since 7d --text drop --text truncate

Options:
${SEARCH_HELP}
  --json              print the API's JSON ({"events": [...], "nextCursor": ...})
${API_TARGET_HELP}`;

export async function eventsCommand(ctx: CommandContext): Promise<number> {
  const [sub, ...rest] = ctx.argv;
  if (sub === undefined || sub === "--help" || sub === "-h" || sub === "help") {
    write(ctx.stdout, EVENTS_HELP);
    return sub === undefined ? 2 : 0;
  }
  if (sub === "search") return search({ ...ctx, argv: rest });
  throw new UsageError(`unknown events subcommand "${sub}"`);
}

async function search(ctx: CommandContext): Promise<number> {
  const { values } = parseCommand(ctx.argv, { ...API_TARGET_OPTIONS, ...SEARCH_OPTIONS, json: { type: "boolean" } });
  if (values.help) {
    write(ctx.stdout, EVENTS_HELP);
    return 0;
  }
  const query = searchQuery(values, "events");
  const client = new ApiClient(resolveApiTarget({ gateway: values.gateway, dataDir: values["data-dir"], ca: values.ca, env: ctx.env }));
  const { items, nextCursor } = await readPages(query, values.all, async (q) => {
    const page = await client.eventPage(q);
    return { items: page.events, nextCursor: page.nextCursor };
  });
  if (values.json) {
    write(ctx.stdout, JSON.stringify({ events: items, nextCursor }, null, 2));
    return 0;
  }
  write(ctx.stdout, formatEventSearch(items, (ctx.stdout as NodeJS.WritableStream & { columns?: number }).columns));
  if (nextCursor !== null) write(ctx.stderr, `more: add --cursor ${nextCursor} for the next page, or --all`);
  return 0;
}

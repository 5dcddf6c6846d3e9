import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import type { Checkpoint } from "@gatehouse/store";
import { GatewayError } from "../errors.js";
import { formatCheckpointFile, parseCheckpointFile } from "../evidence/checkpoint-file.js";
import { parseCommand, UsageError, write, type CommandContext } from "./command.js";
import { openRecordSource } from "./record-access.js";

export const CHECKPOINTS_HELP = `Usage: gatehouse checkpoints export [--out FILE] [options]

Writes the gateways' signed checkpoint chains (every session opened and
sealed, retention cuts, live-session states) as JSON lines, to stdout or FILE.
Keep the export where the store's owner cannot write; "gatehouse verify --all
--checkpoints FILE" then shows a session, seal or checkpoint that has since
gone from the store. With --out, checkpoints already in FILE are kept (even
those the store no longer has) and new ones added; the file is replaced
atomically.

Where the record is read (first that applies):
  --store-url URL      the Postgres store (or GATEHOUSE_STORE_URL)
  --config FILE        that gateway config's store
  --gateway URL        through a running gateway's API
  --data-dir DIR       default ./data: its embedded store, or its running gateway

Options:
  --out FILE           write (and merge into) FILE instead of stdout`;

export async function checkpointsCommand(ctx: CommandContext, now: () => number = () => Date.now() * 1000): Promise<number> {
  const [sub, ...rest] = ctx.argv;
  if (sub === undefined || sub === "--help" || sub === "-h") {
    write(ctx.stdout, CHECKPOINTS_HELP);
    return sub === undefined ? 2 : 0;
  }
  if (sub !== "export") throw new UsageError(`unknown checkpoints subcommand "${sub}" (there is: export)`);
  const { values } = parseCommand(rest, {
    out: { type: "string" },
    "store-url": { type: "string" },
    config: { type: "string" },
    gateway: { type: "string" },
    "data-dir": { type: "string" },
  });
  if (values.help) {
    write(ctx.stdout, CHECKPOINTS_HELP);
    return 0;
  }
  const source = await openRecordSource(values, ctx.env);
  let fromStore: Checkpoint[];
  try {
    fromStore = (await source.checkpoints()).checkpoints;
  } finally {
    await source.close();
  }
  const out = values.out;
  if (out === undefined) {
    ctx.stdout.write(formatCheckpointFile(fromStore, now()));
    return 0;
  }
  // What the file has stays as it was: the store's owner may have removed it since.
  const kept = existsSync(out) ? parseCheckpointFile(readText(out), out) : [];
  const merged = new Map(kept.map((c) => [`${c.gateway}:${c.seq}`, c]));
  let added = 0;
  for (const c of fromStore) {
    const key = `${c.gateway}:${c.seq}`;
    if (merged.has(key)) continue;
    merged.set(key, c);
    added++;
  }
  try {
    writeFileSync(`${out}.tmp`, formatCheckpointFile([...merged.values()], now()), { mode: 0o644 });
    renameSync(`${out}.tmp`, out);
  } catch (cause) {
    throw new GatewayError("CHECKPOINTS_UNREADABLE", `cannot write ${out}: ${(cause as Error).message}`, { cause });
  }
  write(ctx.stderr, `${out}: ${merged.size} checkpoints (${added} new from ${source.where})`);
  return 0;
}

function readText(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (cause) {
    throw new GatewayError("CHECKPOINTS_UNREADABLE", `cannot read ${file}: ${(cause as Error).message}`, { cause });
  }
}

import { isoFromUs } from "../clock.js";
import { parseCommand, UsageError, write, type CommandContext } from "./command.js";
import { openTargetStore, storeTarget } from "./record-access.js";

export const RETENTION_HELP = `Usage: gatehouse retention --days N [--dry-run] [options]

Drops the store's monthly event partitions whose whole range is more than N
days old, and removes the ended sessions that started before the newest
dropped partition's end (with any of their events in later partitions), so
no session is kept in part. Partitions are whole UTC months: an event is kept
at least N days and at most about a month longer. Run it as the store's owner
(the role that ran the migrations): the gateway's role cannot drop anything.

Options:
  --days N             keep at least N days (N ≥ 1)
  --dry-run            say what would be dropped, drop nothing
  --store-url URL      the Postgres store (or GATEHOUSE_STORE_URL)
  --config FILE        that gateway config's store
  --data-dir DIR       default ./data: its embedded store (stop the gateway first)
  --json               print JSON`;

export async function retentionCommand(ctx: CommandContext, now: () => number = () => Date.now() * 1000): Promise<number> {
  const { values } = parseCommand(ctx.argv, {
    days: { type: "string" },
    "dry-run": { type: "boolean" },
    "store-url": { type: "string" },
    config: { type: "string" },
    "data-dir": { type: "string" },
    json: { type: "boolean" },
  });
  if (values.help) {
    write(ctx.stdout, RETENTION_HELP);
    return 0;
  }
  const days = Number(values.days);
  if (values.days === undefined || !Number.isSafeInteger(days) || days < 1) throw new UsageError("retention needs --days N, a whole number of days ≥ 1");
  const target = storeTarget(values, ctx.env, false);
  if (target.kind === "api") throw new UsageError("retention works on the store itself: pass --store-url URL or --config FILE");
  const store = await openTargetStore(target);
  const cutoffUs = now() - days * 86_400_000_000;
  try {
    const result = await store.retention.dropBefore(cutoffUs, { dryRun: values["dry-run"] === true });
    if (values.json) {
      write(ctx.stdout, JSON.stringify({ cutoff: isoFromUs(cutoffUs), dryRun: values["dry-run"] === true, ...result }, null, 2));
      return 0;
    }
    const verb = values["dry-run"] ? "would drop" : "dropped";
    if (result.dropped.length === 0) write(ctx.stdout, `nothing older than ${isoFromUs(cutoffUs)}: no partition ${values["dry-run"] ? "would be" : "was"} dropped`);
    for (const p of result.dropped) write(ctx.stdout, `${verb} ${p.name}  (${isoFromUs(p.fromUs).slice(0, 10)} to ${isoFromUs(p.toUs).slice(0, 10)})`);
    if (result.dropped.length > 0) {
      write(ctx.stdout, `${values["dry-run"] ? "would remove" : "removed"} ${result.sessionsDeleted} ended session${result.sessionsDeleted === 1 ? "" : "s"} (and ${result.straddlingEventsDeleted} of their events in kept partitions)`);
    }
    return 0;
  } finally {
    await store.close();
  }
}

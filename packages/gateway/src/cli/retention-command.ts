import { resolve } from "node:path";
import { isoFromUs } from "../clock.js";
import { loadConfigFile } from "../config/load.js";
import { applyRetention, type SignedRetention } from "../evidence/retention.js";
import { ApiClient, resolveApiTarget } from "./api-client.js";
import { parseCommand, UsageError, write, type CommandContext } from "./command.js";
import { openTargetStore } from "./record-access.js";

export const RETENTION_HELP = `Usage: gatehouse retention --days N [--dry-run] [options]

Drops the store's monthly event partitions whose whole range is more than N
days old, and removes the ended sessions that started before the newest
dropped partition's end (with any of their events in later partitions), so
no session is kept in part. Partitions are whole UTC months: an event is kept
at least N days and at most about a month longer.

Before anything is dropped, the running gateway signs a retention checkpoint
(it holds the key), so "gatehouse verify" tells the sessions removed here
from sessions deleted by hand; sessions that end after that checkpoint are
kept. So the gateway must be running and reachable.

  Postgres store: run it as the store's owner (the role that ran the
  migrations; the gateway's role cannot drop anything) with --store-url or
  --config; the gateway is found with --gateway URL (admin token:
  GATEHOUSE_ADMIN_TOKEN), or from its data directory (--data-dir).
  Embedded store: the gateway holds it and does the whole job, asked
  through its API (--data-dir of the gateway, or --gateway URL).

Options:
  --days N             keep at least N days (N ≥ 1; the gateway refuses fewer
                       than its recording.minRetentionDays, default 30)
  --dry-run            say what would be dropped, drop nothing (no gateway needed
                       for a Postgres store)
  --store-url URL      the Postgres store (or GATEHOUSE_STORE_URL)
  --config FILE        that gateway config's store (and data directory)
  --gateway URL        the gateway that signs the cut
  --data-dir DIR       default ./data: the gateway's data directory
  --json               print JSON`;

export async function retentionCommand(ctx: CommandContext, now: () => number = () => Date.now() * 1000): Promise<number> {
  const { values } = parseCommand(ctx.argv, {
    days: { type: "string" },
    "dry-run": { type: "boolean" },
    "store-url": { type: "string" },
    config: { type: "string" },
    gateway: { type: "string" },
    "data-dir": { type: "string" },
    json: { type: "boolean" },
  });
  if (values.help) {
    write(ctx.stdout, RETENTION_HELP);
    return 0;
  }
  const days = Number(values.days);
  if (values.days === undefined || !Number.isSafeInteger(days) || days < 1) throw new UsageError("retention needs --days N, a whole number of days ≥ 1");
  const dryRun = values["dry-run"] === true;
  const cutoffUs = now() - days * 86_400_000_000;
  const config = values.config === undefined ? undefined : loadConfigFile(values.config);
  const url = values["store-url"] ?? ctx.env.GATEHOUSE_STORE_URL ?? config?.store.url;
  const dataDir = config ? resolve(config.dataDir) : (values["data-dir"] ?? ctx.env.GATEHOUSE_DATA_DIR ?? "./data");
  const gateway = () => new ApiClient(resolveApiTarget({ ...(values.gateway ? { gateway: values.gateway } : {}), dataDir, env: ctx.env }));

  let result: SignedRetention;
  if (url) {
    const store = await openTargetStore({ kind: "url", url });
    try {
      result = await applyRetention(store, (cutoff, horizon) => gateway().signRetention(cutoff, horizon), cutoffUs, dryRun);
    } finally {
      await store.close();
    }
  } else {
    // The embedded store: held by the gateway, which signs and drops.
    result = await gateway().retention(cutoffUs, dryRun);
  }

  if (values.json) {
    write(ctx.stdout, JSON.stringify({ cutoff: isoFromUs(cutoffUs), dryRun, ...result }, null, 2));
    return 0;
  }
  const verb = dryRun ? "would drop" : "dropped";
  if (result.dropped.length === 0) write(ctx.stdout, `nothing older than ${isoFromUs(cutoffUs)}: no partition ${dryRun ? "would be" : "was"} dropped`);
  for (const p of result.dropped) write(ctx.stdout, `${verb} ${p.name}  (${isoFromUs(p.fromUs).slice(0, 10)} to ${isoFromUs(p.toUs).slice(0, 10)})`);
  if (result.dropped.length > 0) {
    write(ctx.stdout, `${dryRun ? "would remove" : "removed"} ${result.sessionsDeleted} ended session${result.sessionsDeleted === 1 ? "" : "s"} (and ${result.straddlingEventsDeleted} of their events in kept partitions)`);
  }
  if (result.checkpoint) write(ctx.stdout, `signed by gateway ${result.checkpoint.gateway} as checkpoint ${result.checkpoint.seq}`);
  return 0;
}

import { join } from "node:path";
import type { Store } from "@gatehouse/store";
import type { Clock } from "../clock.js";
import type { GatewayConfig } from "../config/schema.js";
import { Journal, type JournalRecovery } from "../journal/journal.js";
import { Shipper, type ShipperOptions } from "../journal/shipper.js";
import type { Logger } from "../logger.js";
import { Recorder } from "../sessions/recorder.js";
import { loadOrCreateSigningKey, type SigningKey } from "./signing.js";

export const JOURNAL_DIR = "journal";

/** How long a stopping gateway waits for the shipper to hand the journal's tail to the store. */
const DRAIN_ON_CLOSE_MS = 5_000;

export interface Recording {
  recorder: Recorder;
  journal: Journal;
  shipper: Shipper;
  signingKey: SigningKey;
  recovery: JournalRecovery;
  /** Ships what it can (for `drainMs`, default 5 s), then closes the journal. Call after the listeners closed. */
  close(drainMs?: number): Promise<void>;
}

/**
 * The gateway's recording, started in order: the signing key (generated at first start), the
 * journal (recovered: a torn tail dropped, sessions left open by a killed gateway closed as
 * `gateway_restart`), then the shipper that moves entries on to the store.
 */
export async function startRecording(options: {
  dataDir: string;
  store: Pick<Store, "record">;
  settings: GatewayConfig["recording"];
  clock: Clock;
  logger: Logger;
  shipper?: ShipperOptions;
}): Promise<Recording> {
  const { dataDir, settings, clock } = options;
  const logger = options.logger.child({ component: "recording" });
  const { key: signingKey, generated } = loadOrCreateSigningKey(dataDir);
  if (generated) logger.info({ keyId: signingKey.keyId }, "generated the session signing key (gatehouse keys signing prints its public key)");

  const { journal, recovery } = await Journal.open({
    dir: join(dataDir, JOURNAL_DIR),
    logger,
    maxBytes: settings.journal.maxBytes,
    segmentBytes: settings.journal.segmentBytes,
  });
  const recorder = new Recorder({ journal, signingKey, mode: settings.mode, clock, logger });
  const closed = recorder.finishRecovered(recovery.openSessions);
  logger.info(
    {
      mode: settings.mode,
      keyId: signingKey.keyId,
      entries: recovery.entries,
      tornEntries: recovery.tornEntries,
      sessionsClosed: closed,
      unshipped: recovery.lastLsn - recovery.ackedLsn,
    },
    "journal recovered",
  );
  const shipper = new Shipper(journal, options.store, logger, options.shipper);
  shipper.start();

  return {
    recorder,
    journal,
    shipper,
    signingKey,
    recovery,
    async close(drainMs = DRAIN_ON_CLOSE_MS) {
      recorder.closeAll("gateway_shutdown");
      await journal.whenDurable(journal.lastLsn)?.catch(() => undefined);
      const drained = await shipper.drain(Math.min(drainMs, DRAIN_ON_CLOSE_MS));
      if (!drained) logger.warn({ durableLsn: journal.durableLsn, ackedLsn: journal.ackedLsn }, "stopping with journal entries not yet in the store; they are shipped at the next start");
      await shipper.stop();
      await journal.close();
    },
  };
}

import { join } from "node:path";
import type { Store } from "@gatehouse/store";
import type { Clock } from "../clock.js";
import type { GatewayConfig } from "../config/schema.js";
import { Journal, type JournalRecovery } from "../journal/journal.js";
import { Shipper, type ShipperOptions } from "../journal/shipper.js";
import type { Logger } from "../logger.js";
import { Recorder } from "../sessions/recorder.js";
import { CheckpointChain } from "./checkpoints.js";
import { startSealKey } from "./seal-keys.js";
import type { SigningKey } from "./signing.js";
import type { SessionMetrics } from "../metrics/session-metrics.js";

export const JOURNAL_DIR = "journal";

/** How long a stopping gateway waits for the shipper to hand the journal's tail to the store. */
const DRAIN_ON_CLOSE_MS = 5_000;

/** How often the gateway signs which sessions it has live (when that changed): see Recorder.checkpointState. */
export const STATE_CHECKPOINT_MS = 60_000;

export interface Recording {
  recorder: Recorder;
  journal: Journal;
  shipper: Shipper;
  signingKey: SigningKey;
  recovery: JournalRecovery;
  checkpoints: CheckpointChain;
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
  /** `checkpoints` lets a gateway whose journal was lost go on with its chain where the store has it. */
  store: Pick<Store, "record"> & Partial<Pick<Store, "checkpoints" | "gatewayKeys">>;
  settings: GatewayConfig["recording"];
  clock: Clock;
  logger: Logger;
  shipper?: ShipperOptions;
  /** Default STATE_CHECKPOINT_MS. */
  stateCheckpointMs?: number;
  /** Sessions, commands and journal syncs are counted here (metrics/gateway-metrics.ts); left out, nothing is. */
  metrics?: SessionMetrics & { journalSynced(seconds: number): void };
}): Promise<Recording> {
  const { dataDir, settings, clock } = options;
  const logger = options.logger.child({ component: "recording" });
  // Registered in the store for other gateways' verify; a key retired there is replaced (seal-keys.ts).
  const { key: signingKey, generated, rotatedFrom } = await startSealKey(dataDir, options.store, logger);
  if (generated) logger.info({ keyId: signingKey.keyId }, "generated the session signing key (gatehouse keys signing prints its public key)");

  const { journal, recovery } = await Journal.open({
    dir: join(dataDir, JOURNAL_DIR),
    logger,
    maxBytes: settings.journal.maxBytes,
    segmentBytes: settings.journal.segmentBytes,
    ...(options.metrics ? { onSync: (seconds: number) => options.metrics!.journalSynced(seconds) } : {}),
  });
  // The chain goes on from the journal's last checkpoint; a new journal (first start, or a lost
  // one) from the store's last checkpoint under this key, so the chain is not started twice.
  // A rotated key starts a chain of its own: the journal's head belongs to the retired key's.
  const journalHead = rotatedFrom === undefined ? recovery.chainHead : undefined;
  const stored = journalHead === undefined ? await options.store.checkpoints?.last(signingKey.keyId) : undefined;
  const checkpoints = new CheckpointChain(signingKey, journalHead ?? (stored ? { seq: stored.seq, hash: stored.hash } : undefined));
  const recorder = new Recorder({ journal, signingKey, checkpoints, mode: settings.mode, clock, logger, ...(options.metrics ? { metrics: options.metrics } : {}) });
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
  recorder.checkpointState();
  const stateTimer = setInterval(() => {
    try {
      recorder.checkpointState();
    } catch (error) {
      logger.warn({ err: error }, "could not journal the live sessions' checkpoint");
    }
  }, options.stateCheckpointMs ?? STATE_CHECKPOINT_MS);
  stateTimer.unref();

  return {
    recorder,
    journal,
    shipper,
    signingKey,
    recovery,
    checkpoints,
    async close(drainMs = DRAIN_ON_CLOSE_MS) {
      clearInterval(stateTimer);
      recorder.closeAll("gateway_shutdown");
      // The last word: nothing is live any more, so a session the store shows open was tampered with.
      recorder.checkpointState();
      await journal.whenDurable(journal.lastLsn)?.catch(() => undefined);
      const drained = await shipper.drain(Math.min(drainMs, DRAIN_ON_CLOSE_MS));
      if (!drained) logger.warn({ durableLsn: journal.durableLsn, ackedLsn: journal.ackedLsn }, "stopping with journal entries not yet in the store; they are shipped at the next start");
      await shipper.stop();
      await journal.close();
    },
  };
}

import type { Checkpoint, RetentionResult, Store } from "@gatehouse/store";

// Retention as a signed act: before the store's owner drops anything, the gateway (which holds
// the key) signs a retention checkpoint saying which sessions may go — those ended by its time
// that started before the newest dropped partition's end — so `verify` tells them from sessions
// deleted by hand. Used by the gateway's API (embedded store, or a store it owns) and by
// `gatehouse retention --store-url` (which asks the gateway only for the signature).

/** Signs a retention cut and resolves once the checkpoint is in the store. */
export type SignRetention = (cutoffUs: number, horizonUs: number) => Promise<Checkpoint>;

export interface SignedRetention extends RetentionResult {
  /** The signed cut; absent for a dry run, or when nothing was old enough. */
  checkpoint?: Checkpoint;
}

export async function applyRetention(store: Pick<Store, "retention">, sign: SignRetention, cutoffUs: number, dryRun: boolean): Promise<SignedRetention> {
  const planned = await store.retention.dropBefore(cutoffUs, { dryRun: true });
  const horizonUs = planned.dropped.at(-1)?.toUs;
  if (dryRun || horizonUs === undefined) return planned;
  const checkpoint = await sign(cutoffUs, horizonUs);
  // A session that ends after the checkpoint is kept: the cut did not announce it.
  const done = await store.retention.dropBefore(cutoffUs, { endedByUs: checkpoint.timeUs });
  return { ...done, checkpoint };
}

import type { Store, StoreChange } from "@gatehouse/store";
import type { Logger } from "../logger.js";

// Several gateways share one Postgres store, each holding access keys, SSH keys and identity
// settings in memory. A change made through one (a key created or revoked, an identity disabled)
// reaches the others by the store's change notices (migration 007: a trigger's pg_notify on the
// `gatehouse_changes` channel, delivered when the change commits): each gateway LISTENs and reads
// again what the notice names. Notices sent while the listening connection is down are lost, so
// - when listening (re)starts, everything held is read again;
// - every `pollMs` the store's change counter is read; when it moved past the last notice seen,
//   everything is read again, then once more shortly after and at the next poll (the counter moves
//   when a change is made, before it commits).
// The embedded store has one gateway: nothing to follow.

export interface ChangeTargets {
  accessKeys: { invalidate(identity?: string): void };
  sshKeys: { invalidate(identity?: string): void };
  identities: { load(): Promise<void> };
  /** The gateway's own seal key id: a notice that it was retired is logged. */
  sealKeyId: string;
}

export const CHANGE_POLL_MS = 2_000;

/** After the counter moved without a notice, everything is read again once more within this (ms). */
const SETTLE_MS = 500;

/** How long a start waits for the LISTEN to be in place before going on without it (polled meanwhile). */
const LISTEN_START_MS = 5_000;

export interface ChangeFollower {
  close(): Promise<void>;
}

export async function followStoreChanges(
  store: Pick<Store, "changes" | "gatewayKeys">,
  targets: ChangeTargets,
  options: { logger: Logger; pollMs?: number },
): Promise<ChangeFollower> {
  const listen = store.changes.listen;
  if (listen === undefined) return { close: async () => undefined };
  const logger = options.logger.child({ component: "store-changes" });
  let seen = await store.changes.version().catch(() => 0);
  let settle = false;
  let retiredSaid = false;

  const reloadAll = () => {
    targets.accessKeys.invalidate();
    targets.sshKeys.invalidate();
    void targets.identities.load();
    checkSealKey();
  };
  const checkSealKey = () => {
    if (retiredSaid) return;
    store.gatewayKeys
      .list()
      .then((keys) => {
        const own = keys.find((k) => k.keyId === targets.sealKeyId);
        if (own?.retiredUs == null || retiredSaid) return;
        retiredSaid = true;
        logger.warn({ keyId: targets.sealKeyId }, "this gateway's seal key was retired; it seals with it until its next start, which makes a new key");
      })
      .catch(() => undefined);
  };
  const apply = (change: StoreChange) => {
    if (change.version > seen) seen = change.version;
    switch (change.table) {
      case "access_keys":
        targets.accessKeys.invalidate(change.identity ?? undefined);
        return;
      case "ssh_keys":
        targets.sshKeys.invalidate(change.identity ?? undefined);
        return;
      case "identity_settings":
        void targets.identities.load();
        return;
      case "gateway_keys":
        checkSealKey();
        return;
      default:
        reloadAll();
    }
  };

  let listening = false;
  const started = listen(apply, () => {
    // The first time is the start (nothing held yet); later, notices may have been missed.
    if (listening) {
      logger.info("listening for the store's change notices again; reading keys and identity settings again");
      reloadAll();
    }
    listening = true;
  });
  const fallback = `changes made through other gateways apply within ${options.pollMs ?? CHANGE_POLL_MS} ms`;
  started.catch((error: unknown) => logger.warn({ err: error }, `cannot listen for the store's change notices; ${fallback}`));
  // A start does not wait long on it: the counter is polled meanwhile.
  let timer: NodeJS.Timeout | undefined;
  const listened = await Promise.race([started.then(() => true, () => false), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), LISTEN_START_MS)))]);
  clearTimeout(timer);
  if (!listened) logger.warn(`not yet listening for the store's change notices; ${fallback}`);

  let polling = false;
  const poll = setInterval(() => {
    if (polling) return;
    polling = true;
    store.changes
      .version()
      .then((version) => {
        if (version > seen) {
          seen = version;
          settle = true;
          reloadAll();
          // The counter moves before the change commits: read again shortly, and at the next poll.
          setTimeout(reloadAll, Math.min(SETTLE_MS, options.pollMs ?? CHANGE_POLL_MS) / 2).unref();
        } else if (settle) {
          settle = false;
          reloadAll();
        }
      })
      .catch(() => undefined)
      .finally(() => (polling = false));
  }, options.pollMs ?? CHANGE_POLL_MS);
  poll.unref();

  return {
    close: async () => {
      clearInterval(poll);
      // A LISTEN that never got in place (a blackholed store) must not hold the stop up: the store's close ends it.
      await Promise.race([started.then((stop) => stop(), () => undefined), new Promise((resolve) => setTimeout(resolve, 1_000).unref())]);
    },
  };
}

import type { IdentitySettings, Store } from "@gatehouse/store";
import type { Clock } from "../clock.js";
import type { Logger } from "../logger.js";

// Identity settings kept in the store (migration 007), so that disabling an identity through one
// gateway applies on every gateway of the store: each holds the set in memory (a policy decision
// never waits on the store), loads it at start, and loads it again when the store announces a
// change (store-changes.ts). The config's `identity.disabled` still counts beside it.

export class IdentityDirectory {
  private disabled = new Set<string>();
  /** Loads are numbered: one answering after a later one is dropped. */
  private loads = 0;
  private applied = 0;

  constructor(
    private readonly store: Pick<Store, "identitySettings">,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {}

  /** Whether the store's settings disable the identity (as last read). */
  isDisabled(identity: string): boolean {
    return this.disabled.has(identity);
  }

  /** Reads the settings again; a store that cannot answer leaves the set as it was (logged). */
  async load(): Promise<void> {
    const n = ++this.loads;
    try {
      const settings = await this.store.identitySettings.list();
      if (n < this.applied) return;
      this.applied = n;
      this.disabled = new Set(settings.filter((s) => s.disabled).map((s) => s.identity));
    } catch (error) {
      this.logger.warn({ err: error }, "could not read the identities' settings from the store; the ones last read stay in force");
    }
  }

  list(): Promise<IdentitySettings[]> {
    return this.store.identitySettings.list();
  }

  /** Disables (or enables) an identity for every gateway of the store; in force here at once. */
  async setDisabled(identity: string, disabled: boolean): Promise<void> {
    await this.store.identitySettings.setDisabled(identity, disabled, this.clock());
    // A load that was sent before this write must not undo it here.
    this.applied = ++this.loads;
    if (disabled) this.disabled.add(identity);
    else this.disabled.delete(identity);
  }
}

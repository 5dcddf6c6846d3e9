
export const KEY_USES_DEFAULTS = {
  /** How long key uses collect before they are sent to the store together. */
  reportDelayMs: 1_000,
  /** How long to wait before sending again after the store failed. */
  retryDelayMs: 5_000,
  /** How long close() waits for the last report. */
  closeWaitMs: 1_000,
};

/**
 * Reports key uses (`last_used_at`, of access keys or SSH keys) to the store in the background, one batch at a time.
 * A login that waited on this, or a store call per login, would pile up on a slow or unreachable
 * store (and hold its connections when it comes back); here each key has at most one pending time
 * (the latest), and at most one report is in flight.
 */
export class KeyUses {
  private pending = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private sending: Promise<void> | undefined;
  private closed = false;
  /** The last report failed: the next waits retryDelayMs. */
  private failedLast = false;

  constructor(
    /** Where uses go: the store's accessKeys or sshKeys. */
    private readonly keys: { touch(id: string, atUs: number): Promise<void> },
    private readonly timing = KEY_USES_DEFAULTS,
  ) {}

  report(keyId: string, atUs: number): void {
    if (this.closed) return;
    const known = this.pending.get(keyId);
    if (known === undefined || known < atUs) this.pending.set(keyId, atUs);
    this.schedule(this.timing.reportDelayMs);
  }

  /** Sends what is pending, waiting at most closeWaitMs. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    let waited: NodeJS.Timeout | undefined;
    await Promise.race([
      (async () => {
        await this.sending;
        await this.send();
      })(),
      new Promise<void>((resolve) => (waited = setTimeout(resolve, this.timing.closeWaitMs))),
    ]);
    clearTimeout(waited);
  }

  private schedule(delayMs: number): void {
    if (this.timer || this.sending) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.sending = this.send().finally(() => {
        this.sending = undefined;
        if (this.pending.size > 0 && !this.closed) this.schedule(this.failedLast ? this.timing.retryDelayMs : this.timing.reportDelayMs);
      });
    }, delayMs);
    this.timer.unref();
  }

  private async send(): Promise<void> {
    const batch = this.pending;
    this.pending = new Map();
    this.failedLast = false;
    for (const [keyId, atUs] of batch) {
      try {
        await this.keys.touch(keyId, atUs);
      } catch {
        // Kept for the next report (a later use of the key wins); the store keeps the latest anyway.
        this.failedLast = true;
        for (const [id, us] of batch) if ((this.pending.get(id) ?? -1) < us) this.pending.set(id, us);
        return;
      }
      batch.delete(keyId);
    }
  }
}

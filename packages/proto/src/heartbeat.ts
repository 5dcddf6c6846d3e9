/** Sends pings on a fixed interval and declares the link dead after a stretch of silence. */
export interface HeartbeatOptions {
  pingIntervalMs: number;
  deadAfterMs: number;
  /** Monotonic clock in ms. */
  now: () => number;
  onPing: () => void;
  onDead: (silentForMs: number) => void;
}

export class Heartbeat {
  readonly #options: HeartbeatOptions;
  #lastReceived: number;
  #nextPing: number;
  #timer: NodeJS.Timeout | undefined;
  #confirm: NodeJS.Immediate | undefined;

  constructor(options: HeartbeatOptions) {
    this.#options = options;
    const now = options.now();
    this.#lastReceived = now;
    this.#nextPing = now + options.pingIntervalMs;
    this.#arm(now);
  }

  /** Something arrived from the peer. Cheap: called for every message; the timer is not re-armed here. */
  touch(): void {
    this.#lastReceived = this.#options.now();
  }

  stop(): void {
    clearTimeout(this.#timer);
    clearImmediate(this.#confirm);
    this.#timer = undefined;
    this.#confirm = undefined;
  }

  #arm(now: number): void {
    const wake = Math.min(this.#nextPing, this.#lastReceived + this.#options.deadAfterMs);
    this.#timer = setTimeout(() => this.#tick(), Math.max(1, Math.ceil(wake - now)));
    // The socket keeps the process alive while the link is up; the heartbeat should not.
    this.#timer.unref();
  }

  #tick(): void {
    const { now, deadAfterMs, pingIntervalMs, onPing, onDead } = this.#options;
    const at = now();
    const silent = at - this.#lastReceived;
    if (silent >= deadAfterMs) {
      this.#timer = undefined;
      // If this process itself was stalled (GC, a busy CPU), the peer's frames may be waiting unread in
      // the socket. setImmediate runs after the event loop's next I/O poll: judge once they are read.
      this.#confirm = setImmediate(() => {
        this.#confirm = undefined;
        const after = now();
        if (after - this.#lastReceived >= deadAfterMs) onDead(after - this.#lastReceived);
        else this.#arm(after);
      });
      return;
    }
    if (at >= this.#nextPing) {
      this.#nextPing = at + pingIntervalMs;
      onPing();
    }
    if (this.#timer !== undefined) this.#arm(at);
  }
}

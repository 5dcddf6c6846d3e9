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
    this.#timer = undefined;
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
      onDead(silent);
      return;
    }
    if (at >= this.#nextPing) {
      this.#nextPing = at + pingIntervalMs;
      onPing();
    }
    if (this.#timer !== undefined) this.#arm(at);
  }
}

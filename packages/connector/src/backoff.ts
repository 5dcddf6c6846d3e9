/**
 * Reconnect delays: exponential backoff with full jitter (a uniform draw in [0, min(cap, base * 2^attempt))),
 * which spreads a fleet of connectors that lost the same gateway instead of having them return in waves.
 *
 * The attempt count goes back to zero only once a link has stayed up for `resetAfterMs`: a gateway that accepts
 * the upgrade and then drops the link at once still sees the connector back off.
 */
export interface BackoffOptions {
  /** First ceiling of the jittered delay, in ms. Default 500. */
  baseMs?: number;
  /** Largest ceiling, in ms. Default 30_000. */
  capMs?: number;
  /** How long a link must stay up before the next failure starts again from `baseMs`, in ms. Default 60_000. */
  resetAfterMs?: number;
  /** Uniform in [0, 1). Default Math.random. */
  random?: () => number;
  /** Milliseconds, monotonic is best. Default performance.now. */
  now?: () => number;
}

export const BACKOFF_DEFAULTS = { baseMs: 500, capMs: 30_000, resetAfterMs: 60_000 } as const;

export class Backoff {
  readonly #baseMs: number;
  readonly #capMs: number;
  readonly #resetAfterMs: number;
  readonly #random: () => number;
  readonly #now: () => number;
  #attempt = 0;
  #upSince: number | null = null;

  constructor(options: BackoffOptions = {}) {
    this.#baseMs = options.baseMs ?? BACKOFF_DEFAULTS.baseMs;
    this.#capMs = options.capMs ?? BACKOFF_DEFAULTS.capMs;
    this.#resetAfterMs = options.resetAfterMs ?? BACKOFF_DEFAULTS.resetAfterMs;
    this.#random = options.random ?? Math.random;
    this.#now = options.now ?? (() => performance.now());
    if (!(this.#baseMs > 0) || !(this.#capMs >= this.#baseMs) || !(this.#resetAfterMs >= 0)) {
      throw new RangeError("backoff needs 0 < baseMs <= capMs and resetAfterMs >= 0");
    }
  }

  /** Failed attempts since the last reset. */
  get attempt(): number {
    return this.#attempt;
  }

  /** The delay before the next attempt, in ms; counts one more failed attempt. */
  next(): number {
    // 2^attempt overflows to Infinity eventually; min() keeps the ceiling at the cap regardless.
    const ceiling = Math.min(this.#capMs, this.#baseMs * 2 ** this.#attempt);
    this.#attempt++;
    return Math.floor(this.#random() * ceiling);
  }

  /** The link is up. */
  succeeded(): void {
    this.#upSince = this.#now();
  }

  /** The link went down (call before `next()`); resets the attempts if it had been up long enough. */
  lost(): void {
    if (this.#upSince !== null && this.#now() - this.#upSince >= this.#resetAfterMs) this.#attempt = 0;
    this.#upSince = null;
  }

  reset(): void {
    this.#attempt = 0;
    this.#upSince = null;
  }
}

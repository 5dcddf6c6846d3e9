import { StoreError } from "./errors.js";
import type { SessionEvent } from "./types.js";

/** Where the writer sends its batches: a Store, or anything with the same `events.insertBatch`. */
export interface EventSink {
  readonly events: { insertBatch(events: readonly SessionEvent[]): Promise<void> };
}

export interface EventWriterOptions {
  /** Most events in one insert (one round trip). Default 500. */
  maxBatch?: number;
  /** Most events accepted but not yet sent; past it `write` waits for room. Default 10,000. */
  maxQueued?: number;
  /**
   * Milliseconds the first event after a quiet spell waits for company before it is sent.
   * While a batch is in flight the next one collects anyway, so under load this costs nothing.
   * Default 5.
   */
  flushIntervalMs?: number;
}

export interface EventWriterStats {
  /** Accepted, waiting for the next batch. */
  queued: number;
  /** `write` calls waiting for room (backpressure). */
  waiting: number;
  /** Events in the batch being written now. */
  inFlight: number;
  /** Batches sent (round trips), successful or not. */
  batches: number;
  /** Events committed. */
  written: number;
  failedBatches: number;
  failedEvents: number;
}

export interface EventWriter {
  /**
   * Resolves once the event is committed to the store; rejects with WRITE_FAILED when its batch
   * failed (nothing is dropped silently), or CLOSED after `close()`. When `maxQueued` events are
   * already waiting, the event is held until there is room, so a caller that awaits each write
   * is slowed down to the store's pace instead of growing memory.
   */
  write(event: SessionEvent): Promise<void>;
  /**
   * Sends what is waiting now and resolves when every event written before the call has
   * settled. It does not reject: each write's own promise carries its failure.
   */
  flush(): Promise<void>;
  /** Refuses further writes, then flushes. The store stays open: it belongs to the caller. */
  close(): Promise<void>;
  readonly stats: EventWriterStats;
}

/** EventWriterOptions defaults, in one place. */
export const EVENT_WRITER_DEFAULTS = { maxBatch: 500, maxQueued: 10_000, flushIntervalMs: 5 } as const;

interface Pending {
  event: SessionEvent;
  resolve: () => void;
  reject: (err: StoreError) => void;
}

/**
 * Batches events into the store: group commit. One batch is in flight at a time; whatever
 * arrives meanwhile forms the next batch, sent the moment the current one settles. Batches leave
 * in arrival order and settle in that order.
 */
export function createEventWriter(sink: EventSink, options: EventWriterOptions = {}): EventWriter {
  const maxBatch = positiveInteger("maxBatch", options.maxBatch ?? EVENT_WRITER_DEFAULTS.maxBatch);
  const maxQueued = positiveInteger("maxQueued", options.maxQueued ?? EVENT_WRITER_DEFAULTS.maxQueued);
  const flushIntervalMs = options.flushIntervalMs ?? EVENT_WRITER_DEFAULTS.flushIntervalMs;
  if (!(flushIntervalMs >= 0)) {
    throw new StoreError("INVALID_ARGUMENT", `flushIntervalMs must be 0 or more, got ${flushIntervalMs}`);
  }

  const queue: Pending[] = [];
  const waiting = new Fifo<Pending>();
  let inFlight = 0;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  // Writes are numbered as they arrive and settle strictly in that order, so "everything up to
  // write n has settled" is one comparison; flush() waits on it.
  let accepted = 0;
  let settled = 0;
  let flushWaiters: { upTo: number; resolve: () => void }[] = [];
  const stats = { batches: 0, written: 0, failedBatches: 0, failedEvents: 0 };

  const admitWaiting = (): void => {
    while (queue.length < maxQueued) {
      const next = waiting.shift();
      if (next === undefined) return;
      queue.push(next);
    }
  };

  const send = (): void => {
    if (timer !== undefined) {
      clearTimeout(timer);
      timer = undefined;
    }
    if (inFlight > 0 || queue.length === 0) return;
    const batch = queue.splice(0, maxBatch);
    admitWaiting();
    inFlight = batch.length;
    stats.batches++;
    // Through a promise so that a sink throwing synchronously is handled like a rejection.
    Promise.resolve()
      .then(() => sink.events.insertBatch(batch.map((p) => p.event)))
      .then(
        () => {
          stats.written += batch.length;
          for (const p of batch) p.resolve();
        },
        (cause: unknown) => {
          stats.failedBatches++;
          stats.failedEvents += batch.length;
          const error = new StoreError(
            "WRITE_FAILED",
            `writing a batch of ${batch.length} events failed: ${cause instanceof Error ? cause.message : String(cause)}`,
            { cause, context: { batchSize: batch.length } },
          );
          for (const p of batch) p.reject(error);
        },
      )
      .finally(() => {
        inFlight = 0;
        settled += batch.length;
        if (flushWaiters.length > 0) {
          const done = flushWaiters.filter((w) => w.upTo <= settled);
          flushWaiters = flushWaiters.filter((w) => w.upTo > settled);
          for (const w of done) w.resolve();
        }
        // Whatever collected during the round trip has waited long enough: send it now.
        send();
      });
  };

  const schedule = (): void => {
    if (inFlight > 0) return; // the settling batch sends the next one
    if (queue.length >= maxBatch) send();
    else if (timer === undefined) timer = setTimeout(send, flushIntervalMs);
  };

  const flush = (): Promise<void> => {
    if (settled >= accepted) return Promise.resolve();
    const done = new Promise<void>((resolve) => flushWaiters.push({ upTo: accepted, resolve }));
    send();
    return done;
  };

  return {
    write(event) {
      if (closed) return Promise.reject(new StoreError("CLOSED", "the event writer is closed"));
      return new Promise<void>((resolve, reject) => {
        accepted++;
        const pending = { event, resolve, reject };
        if (waiting.length === 0 && queue.length < maxQueued) {
          queue.push(pending);
          schedule();
        } else {
          waiting.push(pending);
        }
      });
    },
    flush,
    close() {
      closed = true;
      return flush();
    },
    get stats(): EventWriterStats {
      return { queued: queue.length, waiting: waiting.length, inFlight, ...stats };
    },
  };
}

/**
 * A first-in first-out list with O(1) shift. Array#shift moves every element, and the list of
 * writers waiting for room can hold as many entries as there are concurrent writers.
 */
class Fifo<T> {
  private items: (T | undefined)[] = [];
  private head = 0;

  get length(): number {
    return this.items.length - this.head;
  }

  push(item: T): void {
    this.items.push(item);
  }

  shift(): T | undefined {
    if (this.head === this.items.length) return undefined;
    const item = this.items[this.head];
    this.items[this.head++] = undefined; // let it be collected
    // Drop the consumed prefix once it is the larger part, keeping shifts O(1) amortized.
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return item;
  }
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new StoreError("INVALID_ARGUMENT", `${name} must be a positive integer, got ${value}`);
  }
  return value;
}

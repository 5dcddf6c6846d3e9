import type { Checkpoint, NewSession, SessionClose, SessionEvent, Store, StreamChunk } from "@gatehouse/store";
import { StoreError } from "@gatehouse/store";
import type { Logger } from "../logger.js";
import type { JournalEntry } from "./entries.js";
import type { Journal, JournalCursor } from "./journal.js";

// Moves the journal's entries to the store, in order, in batches: one `store.record` call (one
// statement) per batch, one batch in flight. A batch is acknowledged to the journal only once the
// store has committed it, and the store ignores what it already has, so a batch sent twice (the
// acknowledgement lost to a crash) changes nothing. While the store is down the shipper retries
// with backoff and the journal grows; when it is back, shipping resumes where it stopped.

export interface ShipperOptions {
  /** Most journal entries in one batch. Default 2000. */
  maxBatch?: number;
  /** Most payload bytes in one batch. Default 8 MiB. */
  maxBatchBytes?: number;
  /** First and longest wait (ms) between attempts while the store fails. Defaults 100 and 5000. */
  retryMinMs?: number;
  retryMaxMs?: number;
  /**
   * Unless it is working through a backlog (full batches), the shipper waits this long (ms) for
   * more entries before reading the next batch — after idling and after each batch — so a
   * stream of commands becomes a store call every gatherMs instead of one per few commands (each
   * call costs far more CPU than the events in it). The journal already holds them durably; this
   * only delays their arrival in the store. Default 50.
   */
  gatherMs?: number;
}

export const SHIPPER_DEFAULTS = { maxBatch: 2000, maxBatchBytes: 8 * 1024 * 1024, retryMinMs: 100, retryMaxMs: 5000, gatherMs: 50 } as const;

/**
 * gatherMs for the embedded store (PGlite): a store call there costs ≈ 3 ms of CPU in the
 * gateway's own process before its events' ≈ 26 µs each (packages/store/bench/record-blocking.mjs:
 * 108 µs an event in batches of 50, 39 in 300, 28 in 1,500), so it gathers longer; the store sees
 * events at most this much later.
 */
export const EMBEDDED_STORE_GATHER_MS = 200;

export interface ShipperStats {
  batches: number;
  sessions: number;
  events: number;
  closes: number;
  /** The gateway's signed checkpoints stored. */
  checkpoints: number;
  /** Stream chunks stored. */
  chunks: number;
  /** Store calls that failed (each retried). */
  failures: number;
  /** Entries the store refused as invalid and that were skipped (each logged). */
  rejected: number;
  /** True while the store is failing. */
  storeDown: boolean;
  /** Since when (Date.now() ms) the store has been failing; undefined while it answers. */
  storeDownSinceMs: number | undefined;
}

interface Batch {
  sessions: NewSession[];
  events: SessionEvent[];
  closes: SessionClose[];
  checkpoints: Checkpoint[];
  chunks: StreamChunk[];
  /** The last lsn the batch covers (including entries with nothing to ship). */
  lastLsn: number;
}

export class Shipper {
  private readonly cursor: JournalCursor;
  private readonly options: Required<ShipperOptions>;
  private running: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private stopped = false;
  private readonly unsubscribe: () => void;
  private readonly counters: ShipperStats = { batches: 0, sessions: 0, events: 0, closes: 0, checkpoints: 0, chunks: 0, failures: 0, rejected: 0, storeDown: false, storeDownSinceMs: undefined };
  private drainWaiters: (() => void)[] = [];

  constructor(
    private readonly journal: Journal,
    private readonly store: Pick<Store, "record">,
    private readonly logger: Logger,
    options: ShipperOptions = {},
  ) {
    this.options = { ...SHIPPER_DEFAULTS, ...options };
    this.cursor = journal.cursor(journal.ackedLsn + 1);
    this.unsubscribe = journal.onDurable(() => this.wake?.());
  }

  /** Starts shipping in the background. */
  start(): void {
    this.running ??= this.loop();
  }

  get stats(): ShipperStats {
    return { ...this.counters };
  }

  /** Resolves when everything appended to the journal so far is in the store, or after `timeoutMs` (false). */
  async drain(timeoutMs: number): Promise<boolean> {
    const target = this.journal.lastLsn;
    if (this.journal.ackedLsn >= target) return true;
    let timer: NodeJS.Timeout | undefined;
    const done = await Promise.race([
      new Promise<boolean>((resolve) => {
        const check = () => {
          if (this.journal.ackedLsn >= target) resolve(true);
          else this.drainWaiters.push(check);
        };
        check();
      }),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs))),
    ]);
    clearTimeout(timer);
    return done;
  }

  /** Stops after the batch in flight (which may still be acknowledged). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe();
    this.wake?.();
    await this.running;
  }

  private async loop(): Promise<void> {
    let delay = this.options.retryMinMs;
    // The next batch is read (and parsed) while the current one is in the store's hands.
    let prefetched: Promise<{ lsn: number; entry: JournalEntry }[]> | undefined;
    const read = () => this.cursor.read(this.options.maxBatch, this.options.maxBatchBytes);
    while (!this.stopped) {
      let entries;
      try {
        entries = await (prefetched ?? read());
        prefetched = undefined;
        // What was prefetched may have been read before the last entries became durable.
        if (entries.length === 0) entries = await read();
      } catch (error) {
        prefetched = undefined;
        this.logger.error({ err: error, nextLsn: this.cursor.nextLsn }, "cannot read the journal; retrying");
        await new Promise((resolve) => setTimeout(resolve, this.options.retryMaxMs));
        continue;
      }
      if (entries.length === 0) {
        await new Promise<void>((resolve) => (this.wake = resolve));
        this.wake = undefined;
        if (!this.stopped && this.options.gatherMs > 0) await new Promise((resolve) => setTimeout(resolve, this.options.gatherMs));
        continue;
      }
      // A full batch means a backlog: read the next one while this one is in the store's hands.
      const backlog = entries.length >= this.options.maxBatch;
      if (backlog) {
        prefetched = read();
        prefetched.catch(() => undefined); // surfaced when awaited
      }
      const batch: Batch = { sessions: [], events: [], closes: [], checkpoints: [], chunks: [], lastLsn: entries[entries.length - 1]!.lsn };
      for (const { entry } of entries) {
        switch (entry.t) {
          case "open":
            batch.sessions.push(entry.session);
            if (entry.checkpoint) batch.checkpoints.push(entry.checkpoint);
            break;
          case "signed":
            batch.checkpoints.push(entry.checkpoint);
            break;
          case "event":
            batch.events.push(entry.event);
            break;
          case "close": {
            const { eventCount: _count, ...close } = entry.close;
            batch.closes.push(close);
            if (entry.checkpoint) batch.checkpoints.push(entry.checkpoint);
            break;
          }
          case "chunk":
            batch.chunks.push(entry.chunk);
            break;
          case "start":
          case "stream":
          case "checkpoint":
            break; // for recovery only
        }
      }
      for (;;) {
        try {
          await this.ship(batch);
          if (this.counters.storeDown) this.logger.info({ ackedLsn: batch.lastLsn }, "the store is back; shipping the journal again");
          this.counters.storeDown = false;
          this.counters.storeDownSinceMs = undefined;
          delay = this.options.retryMinMs;
          break;
        } catch (error) {
          this.counters.failures++;
          if (!this.counters.storeDown) this.logger.warn({ err: error, pendingLsn: batch.lastLsn }, "the store refused a batch; the journal keeps it and shipping is retried");
          this.counters.storeDown = true;
          this.counters.storeDownSinceMs ??= Date.now();
          if (this.stopped) return;
          await new Promise((resolve) => setTimeout(resolve, delay));
          delay = Math.min(delay * 2, this.options.retryMaxMs);
        }
      }
      this.journal.acknowledge(batch.lastLsn);
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const check of waiters) check();
      // Caught up: let the next batch gather too, rather than ship each few events as they become
      // durable — every store call has a fixed cost far above its events' (see gatherMs).
      if (!backlog && !this.stopped && this.options.gatherMs > 0) await new Promise((resolve) => setTimeout(resolve, this.options.gatherMs));
    }
  }

  /**
   * Sends one batch. A batch the store refuses as invalid (bad data, not an outage) is split in
   * halves until the one bad entry is found; that entry is logged and skipped, so one poisoned
   * event cannot stop the record (its gap then shows in `gatehouse verify`).
   */
  private readonly shippedListeners = new Set<(sessionIds: ReadonlySet<string>) => void>();

  /**
   * Calls `listener` after each batch reaches the store, with the ids of the sessions it touched
   * (new events, closes, stream chunks): the console's live tail reads the store then instead of
   * polling it. Returns the unsubscribe.
   */
  onShipped(listener: (sessionIds: ReadonlySet<string>) => void): () => void {
    this.shippedListeners.add(listener);
    return () => this.shippedListeners.delete(listener);
  }

  private notifyShipped(batch: Batch): void {
    if (this.shippedListeners.size === 0) return;
    const ids = new Set<string>();
    for (const s of batch.sessions) ids.add(s.id);
    for (const e of batch.events) ids.add(e.sessionId);
    for (const c of batch.closes) ids.add(c.id);
    for (const c of batch.chunks) ids.add(c.sessionId);
    if (ids.size === 0) return;
    for (const listener of this.shippedListeners) {
      try {
        listener(ids);
      } catch (error) {
        this.logger.warn({ err: error }, "a shipped-batch listener failed");
      }
    }
  }

  private async ship(batch: Batch): Promise<void> {
    const size = batch.sessions.length + batch.events.length + batch.closes.length + batch.checkpoints.length + batch.chunks.length;
    if (size === 0) return;
    try {
      const result = await this.store.record(batch);
      this.notifyShipped(batch);
      this.counters.batches++;
      this.counters.sessions += result.sessions;
      this.counters.events += result.events;
      this.counters.closes += result.closed;
      this.counters.checkpoints += result.checkpoints;
      this.counters.chunks += result.chunks;
      for (const { id, status } of result.notClosed) {
        if (status === "not_found") this.logger.error({ sessionId: id }, "a journaled close names a session the store does not have");
      }
      for (const { gateway, seq } of result.checkpointConflicts) {
        this.logger.error({ gateway, seq }, "the store holds another checkpoint under this gateway key and seq (a second chain under one key: two gateways share a signing key, or the journal was lost)");
      }
    } catch (error) {
      if (!isInvalid(error)) throw error;
      if (size === 1) {
        this.counters.rejected++;
        const checkpoint = batch.checkpoints[0];
        const chunk = batch.chunks[0];
        this.logger.error({ err: error, entry: batch.sessions[0]?.id ?? batch.closes[0]?.id ?? (checkpoint ? `checkpoint ${checkpoint.gateway}#${checkpoint.seq}` : chunk ? `${chunk.sessionId} stream ${chunk.streamId} chunk ${chunk.seq}` : `${batch.events[0]?.sessionId}#${batch.events[0]?.seq}`) }, "the store refused a journal entry as invalid; it is skipped");
        return;
      }
      // Halves in the order the store applies them: sessions, events, closes, checkpoints.
      const items: ({ k: "s"; v: NewSession } | { k: "e"; v: SessionEvent } | { k: "c"; v: SessionClose } | { k: "k"; v: Checkpoint } | { k: "b"; v: StreamChunk })[] = [
        ...batch.sessions.map((v) => ({ k: "s" as const, v })),
        ...batch.events.map((v) => ({ k: "e" as const, v })),
        ...batch.closes.map((v) => ({ k: "c" as const, v })),
        ...batch.chunks.map((v) => ({ k: "b" as const, v })),
        ...batch.checkpoints.map((v) => ({ k: "k" as const, v })),
      ];
      const half = Math.ceil(items.length / 2);
      for (const part of [items.slice(0, half), items.slice(half)]) {
        await this.ship({
          sessions: part.flatMap((i) => (i.k === "s" ? [i.v] : [])),
          events: part.flatMap((i) => (i.k === "e" ? [i.v] : [])),
          closes: part.flatMap((i) => (i.k === "c" ? [i.v] : [])),
          checkpoints: part.flatMap((i) => (i.k === "k" ? [i.v] : [])),
          chunks: part.flatMap((i) => (i.k === "b" ? [i.v] : [])),
          lastLsn: batch.lastLsn,
        });
      }
    }
  }
}

/** The data is at fault (retrying cannot help), as opposed to the store being unreachable. */
function isInvalid(error: unknown): boolean {
  if (!(error instanceof StoreError)) return false;
  if (error.code === "INVALID_ARGUMENT" || error.code === "NOT_FOUND") return true;
  const sqlstate = error.context.sqlstate ?? (error.cause instanceof StoreError ? error.cause.context.sqlstate : undefined);
  // 22: data exception (bad value), 23: integrity (a missing session).
  return sqlstate !== undefined && (sqlstate.startsWith("22") || sqlstate.startsWith("23"));
}

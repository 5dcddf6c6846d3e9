import { mkdirSync, readdirSync, readFileSync, writeSync } from "node:fs";
import { open, rename, unlink, writeFile, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { GatewayError, type RecordingProblem } from "../errors.js";
import type { Logger } from "../logger.js";
import { lockDirectory } from "./dir-lock.js";
import type { ChainHead } from "../evidence/checkpoints.js";
import { decodeEntry, JournalState, type JournalEntry, type SessionState } from "./entries.js";
import { encodeFrame, FRAME_HEADER_BYTES, readFrame } from "./frame.js";
import { RECENT_ENTRIES_MAX_BYTES, RecentEntries } from "./recent-entries.js";
import { BacklogAge } from "./backlog-age.js";

// The write-ahead journal: every entry of the record is appended here, in the gateway's data
// directory, before it goes to the store.
//
// - Segments `NNNNNNNNNN.seg` are zero-filled to `segmentBytes` when created, so appending is an
//   overwrite of allocated blocks and `fdatasync` flushes data only, not file-size metadata (on
//   ext4 about 0.25 ms instead of 3 ms here). The next segment is made ahead of time.
// - Group commit: appends are buffered; one writer writes everything buffered and calls
//   fdatasync once for all of it, while the next appends collect for the following round.
// - Every segment starts with a checkpoint (the open sessions' state), so a segment whose entries
//   are all acknowledged by the store can be deleted: recovery only needs the segments from the
//   oldest unacknowledged entry on.
// - The limit (`maxBytes`) is counted in segment files. When the current segment is full and
//   another would pass the limit, the journal stops admitting new work (new sessions, new
//   commands) but still takes what completes work already admitted (a command's outcome, a
//   close), overflowing its segment a little: nothing already recorded is dropped.
// - A failed write or sync makes the journal unwritable: everything not yet durable stays in
//   memory and is written again (the whole batch, from its start: after a failed fsync the page
//   cache cannot be trusted) every `retryMs` until it succeeds.

export interface JournalOptions {
  dir: string;
  logger: Logger;
  /** Bytes of each segment file. Default 16 MiB. */
  segmentBytes?: number;
  /** Most bytes of segment files before new work is refused. Default 1 GiB (at least two segments). */
  maxBytes?: number;
  /** Milliseconds between attempts to write again after a write or sync failed. Default 1000. */
  retryMs?: number;
  /** Most payload bytes of unacknowledged entries kept in memory for the shipper. Default 32 MiB. */
  recentBytes?: number;
  /** Told how long each successful fdatasync took (seconds), for the fsync histogram. */
  onSync?: (seconds: number) => void;
}

/** What the journal holds that the store does not have yet (for /metrics). */
export interface JournalBacklog {
  entries: number;
  /**
   * Their bytes in the segment files: exact while they are all held in memory for the shipper
   * (`recentBytes`), past that the rest counted at the segment files' average entry size.
   */
  bytes: number;
  /** Seconds since the oldest of them was written, to within a second; 0 when there is none. */
  oldestAgeSeconds: number;
}

export const JOURNAL_DEFAULTS = { segmentBytes: 16 * 1024 * 1024, maxBytes: 1024 * 1024 * 1024, retryMs: 1000, recentBytes: RECENT_ENTRIES_MAX_BYTES } as const;

export type JournalHealth =
  | { state: "ok" }
  | { state: "full"; maxBytes: number }
  | { state: "unwritable"; errno: string | undefined; message: string };

/** What recovery found when the journal was opened. */
export interface JournalRecovery {
  /** Sessions the previous process left open (it crashed or was killed). */
  openSessions: SessionState[];
  /** Entries read back from disk. */
  entries: number;
  /** Torn or invalid entries found (and dropped) at the end of a segment. */
  tornEntries: number;
  /** The last lsn the store had acknowledged. */
  ackedLsn: number;
  /** The last lsn on disk. */
  lastLsn: number;
  /** Where the gateway's checkpoint chain stood; undefined when the journal holds none. */
  chainHead: ChainHead | undefined;
}

export interface JournalStats {
  appended: number;
  refused: number;
  flushes: number;
  durableLsn: number;
  ackedLsn: number;
  segments: number;
  bytes: number;
}

interface Segment {
  no: number;
  path: string;
  /** Set once the file exists, is zero-filled and synced. */
  fd: FileHandle | undefined;
  /** Creating (or re-creating, after a failure) the file. */
  creating: Promise<FileHandle> | undefined;
  /** Lsn of its checkpoint, its first entry. */
  firstLsn: number;
  /** Bytes given out to entries (the append position). */
  used: number;
  /** Bytes known to be on disk, synced. */
  durableEnd: number;
  /** Size of the file on disk. */
  fileBytes: number;
}

interface Round {
  batch: PendingFrame[];
  segments: Set<Segment>;
  done: boolean;
}

/** Longest an entry nobody waits for stays buffered before a round writes it. */
const LAZY_ROUND_MS = 5;

/** Most fdatasync calls in flight at once (each holds one of libuv's 4 pool threads). */
const MAX_SYNCS = 2;

interface PendingFrame {
  segment: Segment;
  offset: number;
  frame: Buffer;
  lsn: number;
}

const SEGMENT_NAME = /^(\d{10})\.seg$/;
const ACK_FILE = "acked";
const ACK_WRITE_INTERVAL_MS = 200;
const LOCK_FILE = "journal.lock";
const ZEROS = Buffer.alloc(1024 * 1024);
const READ_CHUNK = 1024 * 1024;

export class Journal {
  private readonly state = new JournalState();
  private readonly segments: Segment[] = [];
  private spare: Segment | undefined;
  private pending: PendingFrame[] = [];
  private kickScheduled = false;
  /** Something buffered is urgent (see append): the next round starts as soon as it can. */
  private urgentPending = false;
  private lazyTimer: NodeJS.Timeout | undefined;
  /** A round is writing: the next waits for it (writes stay in order). */
  private writing = false;
  /** Rounds whose fdatasync is running. */
  private syncing = 0;
  /** Rounds written, in order, not yet durable (or durable behind one that is not). */
  private rounds: Round[] = [];
  /** A round failed; set until every round in flight has settled. */
  private broken: unknown;
  private retryTimer: NodeJS.Timeout | undefined;
  private failure: { errno: string | undefined; message: string } | undefined;
  private waiters: { lsn: number; resolve: () => void; reject: (error: Error) => void }[] = [];
  private readonly durableListeners = new Set<() => void>();
  private nextLsn: number;
  private durable: number;
  private acked: number;
  private ackWrite: Promise<void> | undefined;
  private ackDirty = false;
  private closed = false;
  private readonly counters = { appended: 0, refused: 0, flushes: 0 };
  /** Entries appended by this process and not yet acknowledged, for the cursor (see RecentEntries). */
  readonly recent: RecentEntries;
  private readonly maxSegments: number;
  private readonly age = new BacklogAge();

  private constructor(
    private readonly options: Required<Omit<JournalOptions, "logger" | "onSync">> & Pick<JournalOptions, "logger" | "onSync">,
    private readonly lock: { release(): void },
    recovered: { segments: Segment[]; state: SessionState[]; chain: ChainHead | undefined; lastLsn: number; ackedLsn: number },
  ) {
    this.segments = recovered.segments;
    this.state.apply(recovered.chain ? { t: "checkpoint", sessions: recovered.state, chain: recovered.chain } : { t: "checkpoint", sessions: recovered.state });
    this.nextLsn = recovered.lastLsn + 1;
    this.durable = recovered.lastLsn;
    this.acked = Math.min(recovered.ackedLsn, recovered.lastLsn);
    this.maxSegments = Math.max(2, Math.floor(options.maxBytes / options.segmentBytes));
    this.recent = new RecentEntries(options.recentBytes);
    // Entries a previous run left unshipped: their age counts from this start (their own is not kept).
    if (this.acked < recovered.lastLsn) this.age.round(this.acked + 1);
  }

  /** Opens (creating or recovering) the journal in `options.dir`. */
  static async open(options: JournalOptions): Promise<{ journal: Journal; recovery: JournalRecovery }> {
    const resolved = {
      dir: options.dir,
      logger: options.logger,
      segmentBytes: options.segmentBytes ?? JOURNAL_DEFAULTS.segmentBytes,
      maxBytes: options.maxBytes ?? JOURNAL_DEFAULTS.maxBytes,
      retryMs: options.retryMs ?? JOURNAL_DEFAULTS.retryMs,
      recentBytes: options.recentBytes ?? JOURNAL_DEFAULTS.recentBytes,
      ...(options.onSync ? { onSync: options.onSync } : {}),
    };
    try {
      mkdirSync(resolved.dir, { recursive: true, mode: 0o700 });
    } catch (cause) {
      throw new GatewayError("JOURNAL_FAILED", `cannot create the journal directory ${resolved.dir}: ${(cause as Error).message}`, { cause });
    }
    const lock = lockDirectory(resolved.dir, LOCK_FILE);
    try {
      const recovered = await recover(resolved.dir, resolved.logger);
      const journal = new Journal(resolved, lock, recovered);
      if (journal.segments.length === 0) {
        // A new journal: its first segment, starting with an (empty) checkpoint.
        journal.startSegment(1);
        journal.kick();
        await journal.whenDurable(journal.lastLsn);
      }
      journal.prepareSpare();
      return {
        journal,
        recovery: {
          openSessions: recovered.state,
          entries: recovered.entries,
          tornEntries: recovered.torn,
          ackedLsn: journal.acked,
          lastLsn: recovered.lastLsn,
          chainHead: recovered.chain,
        },
      };
    } catch (error) {
      lock.release();
      if (error instanceof GatewayError) throw error;
      throw new GatewayError("JOURNAL_FAILED", `cannot recover the journal in ${resolved.dir}: ${(error as Error).message}`, { cause: error });
    }
  }

  /** Whether new work (a session, a command) may be journaled now, and if not, why. */
  health(): JournalHealth {
    if (this.failure) return { state: "unwritable", ...this.failure };
    if (!this.hasRoom()) return { state: "full", maxBytes: this.options.maxBytes };
    return { state: "ok" };
  }

  /** The health as the problem a strict session reports, or undefined when new work is admitted. */
  problem(): RecordingProblem | undefined {
    const health = this.health();
    if (health.state === "ok") return undefined;
    if (health.state === "full") return { reason: "journal_full" };
    return health.errno === undefined ? { reason: "journal_unwritable" } : { reason: "journal_unwritable", errno: health.errno };
  }

  /**
   * Appends an entry; returns its lsn. `mandatory` entries complete work already admitted and are
   * always taken; others return undefined when the journal is full or unwritable. `payload`: the
   * entry as written, when the caller has it already (an event: entries.ts eventPayload).
   * `urgent`: something waits for it (a write-ahead entry in strict mode): its round starts at
   * the end of this event-loop turn. Otherwise it rides with the next urgent entry's round, or one
   * LAZY_ROUND_MS later — one fdatasync for the outcome of a command and the start of the next,
   * instead of two in a row that a lone client would wait for, one after the other.
   */
  append(entry: JournalEntry, mandatory: boolean, payload: string = JSON.stringify(entry), urgent = true): number | undefined {
    if (this.closed) throw new GatewayError("JOURNAL_FAILED", "the journal is closed");
    if (!mandatory && (this.failure !== undefined || !this.hasRoom())) {
      this.counters.refused++;
      return undefined;
    }
    const payloadBytes = Buffer.byteLength(payload);
    const current = this.current();
    if (current.used + FRAME_HEADER_BYTES + payloadBytes > this.options.segmentBytes && this.segments.length < this.maxSegments) {
      this.startSegment(current.no + 1);
    }
    const lsn = this.place(payload, payloadBytes);
    this.state.apply(entry);
    this.recent.push(lsn, entry, payloadBytes);
    this.counters.appended++;
    if (urgent) {
      this.urgentPending = true;
      this.kickSoon();
    } else this.kickLater();
    return lsn;
  }

  /** The last lsn given out. */
  get lastLsn(): number {
    return this.nextLsn - 1;
  }

  /** The last lsn known to be on disk. */
  get durableLsn(): number {
    return this.durable;
  }

  get ackedLsn(): number {
    return this.acked;
  }

  /**
   * Undefined when `lsn` is durable already (the common case, without allocating a promise);
   * otherwise a promise that resolves when it is, or rejects when a write or sync fails.
   */
  whenDurable(lsn: number): Promise<void> | undefined {
    if (lsn <= this.durable) return undefined;
    if (this.failure) return Promise.reject(this.unwritableError());
    return new Promise((resolve, reject) => {
      const waiter = { lsn, resolve, reject };
      // Almost always appended in lsn order; keep the list sorted when not.
      let i = this.waiters.length;
      while (i > 0 && this.waiters[i - 1]!.lsn > lsn) i--;
      this.waiters.splice(i, 0, waiter);
    });
  }

  /** Called after every round that made entries durable. */
  onDurable(listener: () => void): () => void {
    this.durableListeners.add(listener);
    return () => this.durableListeners.delete(listener);
  }

  /**
   * The store has everything up to `lsn`: remember it (in `acked`, without fsync — losing it only
   * means shipping some entries again, which the store ignores) and delete segments no longer needed.
   */
  acknowledge(lsn: number): void {
    if (lsn <= this.acked) return;
    this.acked = Math.min(lsn, this.durable);
    this.recent.dropThrough(this.acked);
    this.age.acknowledged(this.acked);
    this.writeAck();
    while (this.segments.length > 1 && this.segments[1]!.firstLsn <= this.acked) {
      const done = this.segments.shift()!;
      void this.removeSegment(done);
    }
    this.prepareSpare();
  }

  /** A reader of durable entries from `lsn` on (or the oldest entry kept, if later), in order. */
  cursor(fromLsn: number): JournalCursor {
    return new JournalCursor(this, Math.max(fromLsn, this.segments[0]?.firstLsn ?? fromLsn));
  }

  /** Segment lookup for the cursor: the segment holding `lsn`. */
  segmentFor(lsn: number): Segment | undefined {
    for (let i = this.segments.length - 1; i >= 0; i--) {
      const segment = this.segments[i]!;
      if (segment.firstLsn <= lsn) return segment;
    }
    return undefined;
  }

  /** Entries not yet in the store, their bytes and the oldest one's age (read at scrape time, never on the hot path). */
  backlog(): JournalBacklog {
    const entries = Math.max(0, this.lastLsn - this.acked);
    const held = this.recent.held();
    let bytes = held.bytes + held.entries * FRAME_HEADER_BYTES;
    const notHeld = Math.max(0, entries - held.entries);
    if (notHeld > 0) {
      const first = this.segments[0]?.firstLsn ?? 1;
      const used = this.segments.reduce((sum, s) => sum + s.used, 0);
      bytes += Math.round(notHeld * (used / Math.max(1, this.lastLsn - first + 1)));
    }
    return { entries, bytes, oldestAgeSeconds: this.age.ageSeconds(this.acked, this.lastLsn) };
  }

  /** Bytes of segment files the journal may hold before it refuses new work (recording.journal.maxBytes). */
  get capacityBytes(): number {
    return this.options.maxBytes;
  }

  /** Bytes written into the segment files kept (acknowledged entries included until their segment goes). */
  get usedBytes(): number {
    return this.segments.reduce((sum, s) => sum + s.used, 0);
  }

  get stats(): JournalStats {
    return {
      ...this.counters,
      durableLsn: this.durable,
      ackedLsn: this.acked,
      segments: this.segments.length,
      bytes: this.segments.reduce((sum, s) => sum + Math.max(s.fileBytes, s.used), 0),
    };
  }

  /**
   * Writes what is buffered (one more attempt if the journal is unwritable), then closes the files
   * and lets go of the directory. Entries that still cannot be written are lost to this process:
   * their `start` entries, already durable, make the next start record them as interrupted.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.lazyTimer);
    this.lazyTimer = undefined;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    // One more attempt for what is buffered, even if the journal was failing.
    this.failure = undefined;
    this.kick();
    await this.idle();
    if (this.pending.length > 0) this.options.logger.error({ entries: this.pending.length }, "journal entries could not be written at shutdown");
    for (const waiter of this.waiters.splice(0)) waiter.reject(new GatewayError("JOURNAL_FAILED", "the journal is closed"));
    await this.ackWrite;
    if (this.ackDirty) await this.persistAck();
    const files = [...this.segments, ...(this.spare ? [this.spare] : [])];
    await Promise.all(files.map(async (s) => (s.fd ?? (await s.creating?.catch(() => undefined)))?.close().catch(() => undefined)));
    this.lock.release();
  }

  // ------------------------------------------------------------------------------------------
  // Appending

  private current(): Segment {
    return this.segments[this.segments.length - 1]!;
  }

  /** Room for new work: space left in the current segment, or another segment allowed. */
  private hasRoom(): boolean {
    const current = this.segments[this.segments.length - 1];
    return current === undefined || current.used < this.options.segmentBytes || this.segments.length < this.maxSegments;
  }

  /** Starts segment `no` (the spare when it is that one) with a checkpoint of the open sessions. */
  private startSegment(no: number): void {
    let segment = this.spare?.no === no ? this.spare : undefined;
    this.spare = undefined;
    if (!segment) {
      segment = this.newSegment(no);
      segment.creating = this.createFile(segment);
    }
    segment.firstLsn = this.nextLsn;
    this.segments.push(segment);
    const chain = this.state.chain;
    const checkpoint: JournalEntry = chain ? { t: "checkpoint", sessions: this.state.snapshot(), chain } : { t: "checkpoint", sessions: this.state.snapshot() };
    const payload = JSON.stringify(checkpoint);
    const payloadBytes = Buffer.byteLength(payload);
    this.recent.push(this.place(payload, payloadBytes), checkpoint, payloadBytes);
    this.prepareSpare();
  }

  private place(payload: string, payloadBytes: number): number {
    const segment = this.current();
    const lsn = this.nextLsn++;
    const frame = encodeFrame(lsn, payload, payloadBytes);
    this.pending.push({ segment, offset: segment.used, frame, lsn });
    segment.used += frame.length;
    return lsn;
  }

  private newSegment(no: number): Segment {
    return {
      no,
      path: join(this.options.dir, `${String(no).padStart(10, "0")}.seg`),
      fd: undefined,
      creating: undefined,
      firstLsn: Number.POSITIVE_INFINITY,
      used: 0,
      durableEnd: 0,
      fileBytes: 0,
    };
  }

  /** Makes the next segment's file ahead of time, when the limit allows another segment. */
  private prepareSpare(): void {
    if (this.closed || this.spare || this.segments.length === 0 || this.segments.length >= this.maxSegments) return;
    const spare = this.newSegment(this.current().no + 1);
    spare.creating = this.createFile(spare);
    // A failure here is retried when the segment is needed (and reported then).
    spare.creating.catch(() => undefined);
    this.spare = spare;
  }

  /** Creates a segment file zero-filled to segmentBytes, synced, its directory entry synced. */
  private async createFile(segment: Segment): Promise<FileHandle> {
    const tmp = `${segment.path}.tmp`;
    let fd: FileHandle | undefined;
    try {
      fd = await open(tmp, "w", 0o600);
      for (let written = 0; written < this.options.segmentBytes; ) {
        const n = Math.min(ZEROS.length, this.options.segmentBytes - written);
        await fd.write(ZEROS, 0, n, written);
        written += n;
      }
      await fd.datasync();
      await fd.close();
      fd = undefined;
      await rename(tmp, segment.path);
      await syncDirectory(this.options.dir);
      const handle = await open(segment.path, "r+");
      segment.fd = handle;
      segment.fileBytes = this.options.segmentBytes;
      return handle;
    } catch (error) {
      await fd?.close().catch(() => undefined);
      await unlink(tmp).catch(() => undefined);
      throw error;
    }
  }

  private async removeSegment(segment: Segment): Promise<void> {
    try {
      await (segment.fd ?? (await segment.creating))?.close();
      await unlink(segment.path);
    } catch (error) {
      this.options.logger.warn({ err: error, segment: segment.path }, "could not delete an acknowledged journal segment");
    }
  }

  // ------------------------------------------------------------------------------------------
  // Group commit

  private kick(): void {
    if (this.writing || this.broken || this.retryTimer || this.pending.length === 0 || this.syncing >= MAX_SYNCS) return;
    void this.round();
  }

  /**
   * A round once this turn of the event loop has run its I/O callbacks: the commands of every
   * socket read in the same turn share one write and one fdatasync, instead of each taking a
   * round of its own while the disk has the capacity (CPU per command, not latency, is what that
   * costs). setImmediate runs right after the poll phase, so a lone command waits microseconds.
   */
  private kickSoon(): void {
    if (this.kickScheduled) return;
    this.kickScheduled = true;
    clearTimeout(this.lazyTimer);
    this.lazyTimer = undefined;
    setImmediate(() => {
      this.kickScheduled = false;
      this.kick();
    });
  }

  /** A round within LAZY_ROUND_MS, unless an urgent entry starts one sooner. */
  private kickLater(): void {
    if (this.kickScheduled || this.lazyTimer) return;
    this.lazyTimer = setTimeout(() => {
      this.lazyTimer = undefined;
      this.kick();
    }, LAZY_ROUND_MS);
  }

  /**
   * One round of the group commit: write everything buffered (after the previous round's write
   * finished), then sync it. The next round may write while this one syncs: an fdatasync covers
   * every write that completed before it began, so rounds still complete in order, and an entry
   * waits for one write and one sync rather than for the sync before too.
   */
  private async round(): Promise<void> {
    this.writing = true;
    const batch = this.pending;
    this.pending = [];
    this.urgentPending = false;
    const round: Round = { batch, segments: new Set(), done: false };
    this.rounds.push(round);
    if (batch.length > 0) this.age.round(batch[0]!.lsn);
    try {
      await this.writeFrames(batch, round.segments);
    } catch (error) {
      this.broken ??= error;
    }
    this.writing = false;
    if (this.broken) return this.settleBreak();
    this.syncing++;
    this.next();
    const syncStarted = performance.now();
    try {
      for (const segment of round.segments) await segment.fd!.datasync();
      this.options.onSync?.((performance.now() - syncStarted) / 1000);
    } catch (error) {
      this.broken ??= error;
    }
    this.syncing--;
    if (this.broken) return this.settleBreak();
    round.done = true;
    // Rounds before it whose files this sync covered are durable with it.
    for (const earlier of this.rounds) {
      if (earlier === round) break;
      if (!earlier.done && [...earlier.segments].every((s) => round.segments.has(s))) earlier.done = true;
    }
    this.advance();
    this.next();
  }

  /**
   * After a round's step: the next round at once when what is buffered is urgent, else within
   * LAZY_ROUND_MS — not back to back, which under a steady stream of entries nobody waits for
   * would run the disk's fdatasync in a loop (thousands a second, each costing CPU).
   */
  private next(): void {
    if (this.pending.length === 0) return;
    if (this.urgentPending || this.closed) this.kick();
    else this.kickLater();
  }

  private async writeFrames(batch: PendingFrame[], touched: Set<Segment>): Promise<void> {
    for (let i = 0; i < batch.length; ) {
      const segment = batch[i]!.segment;
      let j = i;
      while (j < batch.length && batch[j]!.segment === segment) j++;
      const fd = segment.fd ?? (await this.fileOf(segment));
      const bytes = j - i === 1 ? batch[i]!.frame : Buffer.concat(batch.slice(i, j).map((p) => p.frame));
      const offset = batch[i]!.offset;
      // A synchronous write: it only copies into the page cache (the fdatasync after it is what
      // waits for the disk, and that stays off the event loop), and it saves each round a trip
      // through libuv's thread pool and the promise machinery around it.
      let written = 0;
      while (written < bytes.length) written += writeSync(fd.fd, bytes, written, bytes.length - written, offset + written);
      touched.add(segment);
      i = j;
    }
  }

  /** Makes the leading completed rounds durable: resolves their waiters, wakes the shipper. */
  private advance(): void {
    let advanced = false;
    while (this.rounds.length > 0 && this.rounds[0]!.done) {
      const { batch } = this.rounds.shift()!;
      for (const p of batch) {
        if (p.offset + p.frame.length > p.segment.durableEnd) p.segment.durableEnd = p.offset + p.frame.length;
        if (p.segment.durableEnd > p.segment.fileBytes) p.segment.fileBytes = p.segment.durableEnd;
      }
      if (batch.length > 0) this.durable = batch[batch.length - 1]!.lsn;
      this.counters.flushes++;
      advanced = true;
    }
    if (!advanced) return;
    if (this.failure) {
      this.options.logger.info({ durableLsn: this.durable }, "the journal is writable again");
      this.failure = undefined;
    }
    while (this.waiters.length > 0 && this.waiters[0]!.lsn <= this.durable) this.waiters.shift()!.resolve();
    for (const listener of this.durableListeners) listener();
  }

  /**
   * A write or sync failed. Once no round is in flight, nothing not yet durable counts: every
   * round's entries go back in front of what is buffered, to be written again from their start
   * (after a failed fsync the page cache cannot be trusted), and the journal is unwritable until
   * a retry succeeds.
   */
  private settleBreak(): void {
    if (this.writing || this.syncing > 0 || !this.broken) return;
    const error = this.broken;
    this.broken = undefined;
    this.pending = [...this.rounds.flatMap((r) => r.batch), ...this.pending];
    this.rounds = [];
    this.fail(error);
  }

  /** Resolves once nothing is being written or synced (and nothing is buffered, unless the journal is failing). */
  private async idle(): Promise<void> {
    while (this.writing || this.syncing > 0 || (this.pending.length > 0 && !this.failure && !this.broken)) {
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
  }

  private async fileOf(segment: Segment): Promise<FileHandle> {
    if (segment.fd) return segment.fd;
    if (!segment.creating) segment.creating = this.createFile(segment);
    try {
      return await segment.creating;
    } catch (error) {
      segment.creating = undefined; // make it again on the next attempt
      throw error;
    }
  }

  private fail(error: unknown): void {
    const errno = (error as NodeJS.ErrnoException).code;
    const message = (error as Error).message;
    if (!this.failure) this.options.logger.error({ err: error, pending: this.pending.length }, "the journal cannot be written; new sessions and commands are refused until it can");
    this.failure = { errno, message };
    const rejection = this.unwritableError();
    for (const waiter of this.waiters.splice(0)) waiter.reject(rejection);
    if (!this.closed) {
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        this.kick();
      }, this.options.retryMs);
      this.retryTimer.unref();
    }
  }

  private unwritableError(): GatewayError {
    const errno = this.failure?.errno;
    return new GatewayError("RECORDING_UNAVAILABLE", `the journal cannot be written: ${this.failure?.message ?? "unknown error"}`, {
      recording: errno === undefined ? { reason: "journal_unwritable" } : { reason: "journal_unwritable", errno },
    });
  }

  // ------------------------------------------------------------------------------------------
  // Acknowledgements

  /** At most one write of the `acked` file per ACK_WRITE_INTERVAL_MS: it only saves re-shipping after a restart. */
  private writeAck(): void {
    this.ackDirty = true;
    if (this.ackWrite) return;
    this.ackWrite = (async () => {
      while (this.ackDirty && !this.closed) {
        // Not unref'd: close() awaits this loop, and must not find the process gone under it.
        await new Promise((resolve) => setTimeout(resolve, ACK_WRITE_INTERVAL_MS));
        await this.persistAck();
      }
    })().finally(() => (this.ackWrite = undefined));
  }

  private async persistAck(): Promise<void> {
    this.ackDirty = false;
    const path = join(this.options.dir, ACK_FILE);
    try {
      // Write-then-rename: a crash leaves the old value or the new, never half of one.
      await writeFile(`${path}.tmp`, `${this.acked}\n`, { mode: 0o600 });
      await rename(`${path}.tmp`, path);
    } catch (error) {
      this.options.logger.warn({ err: error }, "could not record the acknowledged journal position");
    }
  }
}

/**
 * Reads durable entries in lsn order, for the shipper: the ones this process appended from memory
 * (Journal.recent), the others (a previous run's, or more than memory keeps) from the segment files.
 */
export class JournalCursor {
  private segmentNo: number | undefined;
  private offset = 0;

  constructor(
    private readonly journal: Journal,
    /** The next lsn this cursor returns. */
    public nextLsn: number,
  ) {}

  /** Up to `maxEntries` durable entries from `nextLsn` on; empty when there are none yet. */
  async read(maxEntries: number, maxBytes: number): Promise<{ lsn: number; entry: JournalEntry }[]> {
    const recent = this.journal.recent.take(this.nextLsn, this.journal.durableLsn, maxEntries, maxBytes);
    if (recent) {
      if (recent.length > 0) this.nextLsn = recent[recent.length - 1]!.lsn + 1;
      // The file position is stale now: a later read from the files finds its place again.
      this.segmentNo = undefined;
      return recent;
    }
    const out: { lsn: number; entry: JournalEntry }[] = [];
    let bytes = 0;
    while (out.length < maxEntries && bytes < maxBytes && this.nextLsn <= this.journal.durableLsn) {
      const segment = this.journal.segmentFor(this.nextLsn);
      if (!segment?.fd) break;
      if (segment.no !== this.segmentNo) {
        this.segmentNo = segment.no;
        this.offset = 0;
      }
      if (this.offset >= segment.durableEnd) break;
      let want = Math.min(READ_CHUNK, segment.durableEnd - this.offset);
      let buf = Buffer.allocUnsafe(want);
      await readFully(segment.fd, buf, this.offset);
      let at = 0;
      while (out.length < maxEntries && bytes < maxBytes) {
        const read = readFrame(buf, at);
        if (read.type === "short" && at === 0 && read.needed > want) {
          // One entry larger than a chunk: read exactly it.
          want = read.needed;
          buf = Buffer.allocUnsafe(want);
          await readFully(segment.fd, buf, this.offset);
          continue;
        }
        if (read.type !== "frame") break;
        at = read.next;
        if (read.lsn < this.nextLsn) continue; // before where this cursor starts
        if (read.lsn !== this.nextLsn) throw new GatewayError("JOURNAL_FAILED", `journal entry ${read.lsn} found where ${this.nextLsn} was expected`);
        out.push({ lsn: read.lsn, entry: decodeEntry(read.payload.toString("utf8")) });
        bytes += read.payload.length;
        this.nextLsn++;
      }
      this.offset += at;
      if (at === 0) break; // nothing whole in what is durable: wait for more
    }
    return out;
  }
}

async function readFully(fd: FileHandle, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesRead } = await fd.read(buf, done, buf.length - done, position + done);
    if (bytesRead === 0) throw new GatewayError("JOURNAL_FAILED", "a journal segment is shorter than what was written to it");
    done += bytesRead;
  }
}

async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Recovery

interface Recovered {
  segments: Segment[];
  state: SessionState[];
  chain: ChainHead | undefined;
  lastLsn: number;
  ackedLsn: number;
  entries: number;
  torn: number;
}

/**
 * Reads every segment back: rebuilds the open sessions' state from the oldest segment's checkpoint
 * on, finds where appending resumes, and drops a torn tail (zeroing it so it cannot be misread
 * later). Empty segment files (made ahead of time, or cut short by a crash while being made) are
 * removed.
 */
async function recover(dir: string, logger: Logger): Promise<Recovered> {
  const names = readdirSync(dir)
    .filter((n) => SEGMENT_NAME.test(n))
    .sort();
  for (const leftover of readdirSync(dir).filter((n) => n.endsWith(".tmp"))) await unlink(join(dir, leftover)).catch(() => undefined);
  const state = new JournalState();
  const segments: Segment[] = [];
  let lastLsn = 0;
  let entries = 0;
  let torn = 0;

  for (const name of names) {
    const path = join(dir, name);
    const no = Number(SEGMENT_NAME.exec(name)![1]);
    const fd = await open(path, "r+");
    // One segment at a time, whole: simpler than windows, and a segment is a few MiB.
    const buf = await fd.readFile();
    const size = buf.length;
    let offset = 0;
    let firstLsn: number | undefined;
    let tornHere = false;
    for (;;) {
      // Within a segment entries are consecutive; a segment's first entry may follow a gap
      // (entries lost to a torn tail of an earlier segment) but never go backwards.
      const read = readFrame(buf, offset, firstLsn === undefined ? undefined : lastLsn + 1);
      if (read.type === "end") break;
      // "short" here means the frame claims bytes past the end of the file: torn too.
      if (read.type !== "frame" || (firstLsn === undefined && read.lsn <= lastLsn)) {
        tornHere = true;
        break;
      }
      const entry = decodeEntry(read.payload.toString("utf8"));
      if (firstLsn === undefined) {
        if (entry.t !== "checkpoint") {
          tornHere = true;
          break;
        }
        if (lastLsn !== 0 && read.lsn !== lastLsn + 1) logger.error({ segment: name, from: lastLsn + 1, to: read.lsn - 1 }, "journal entries are missing between segments");
        firstLsn = read.lsn;
      }
      state.apply(entry);
      entries++;
      lastLsn = read.lsn;
      offset = read.next;
    }
    if (tornHere) {
      torn++;
      logger.warn({ segment: name, offset }, "dropping a torn entry at the end of a journal segment");
      // Zero from the torn entry to the end of the file, so appending there cannot leave a tail
      // of the old bytes that a later recovery would misread.
      for (let at = offset; at < size; at += ZEROS.length) await fd.write(ZEROS, 0, Math.min(ZEROS.length, size - at), at);
      await fd.datasync();
    }
    if (firstLsn === undefined) {
      await fd.close();
      await unlink(path);
      continue;
    }
    segments.push({ no, path, fd, creating: undefined, firstLsn, used: offset, durableEnd: offset, fileBytes: size });
  }

  let ackedLsn = 0;
  try {
    ackedLsn = Number.parseInt(readFileSync(join(dir, ACK_FILE), "utf8"), 10) || 0;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
  }
  return { segments, state: state.snapshot(), chain: state.chain, lastLsn, ackedLsn, entries, torn };
}

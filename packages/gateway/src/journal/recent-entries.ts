import type { JournalEntry } from "./entries.js";

/** Default bound on what RecentEntries holds: payload bytes as written to the journal. */
export const RECENT_ENTRIES_MAX_BYTES = 32 * 1024 * 1024;

/**
 * The journal's newest entries, held in memory from their append until the store acknowledges
 * them, so the shipper takes what it ships from here instead of reading back and parsing what was
 * just written (that read-back cost more CPU than writing). Bounded: past `maxBytes` the oldest
 * are let go, and the cursor reads those from the segment files, as it does the entries of a
 * previous run. Entries arrive in lsn order, one lsn after the other.
 */
export class RecentEntries {
  private lsns: number[] = [];
  private entries: JournalEntry[] = [];
  private sizes: number[] = [];
  /** Index of the oldest entry held; the arrays are compacted once half of them is behind it. */
  private head = 0;
  private bytes = 0;

  constructor(private readonly maxBytes: number = RECENT_ENTRIES_MAX_BYTES) {}

  push(lsn: number, entry: JournalEntry, payloadBytes: number): void {
    const last = this.lsns[this.lsns.length - 1];
    // Never expected (lsns are handed out in order); start over rather than serve a gap.
    if (this.head < this.lsns.length && last !== lsn - 1) this.clear();
    this.lsns.push(lsn);
    this.entries.push(entry);
    this.sizes.push(payloadBytes);
    this.bytes += payloadBytes;
    while (this.bytes > this.maxBytes && this.head < this.lsns.length) this.dropOldest();
    this.compact();
  }

  /**
   * The entries from `fromLsn` through `throughLsn` (at most `maxEntries`, and past `maxBytes`
   * only by the entry that crosses it); empty when `fromLsn` is past `throughLsn`; undefined when
   * `fromLsn` is not held here (let go, or from before this process): read it from the files.
   */
  take(fromLsn: number, throughLsn: number, maxEntries: number, maxBytes: number): { lsn: number; entry: JournalEntry }[] | undefined {
    if (fromLsn > throughLsn) return [];
    const first = this.lsns[this.head];
    if (first === undefined || fromLsn < first || fromLsn > this.lsns[this.lsns.length - 1]!) return undefined;
    const out: { lsn: number; entry: JournalEntry }[] = [];
    let bytes = 0;
    for (let i = this.head + (fromLsn - first); i < this.lsns.length && out.length < maxEntries && bytes < maxBytes; i++) {
      const lsn = this.lsns[i]!;
      if (lsn > throughLsn) break;
      out.push({ lsn, entry: this.entries[i]! });
      bytes += this.sizes[i]!;
    }
    return out;
  }

  /** What is held now: entries and their payload bytes (the journal's backlog, while it fits here). */
  held(): { entries: number; bytes: number } {
    return { entries: this.lsns.length - this.head, bytes: this.bytes };
  }

  /** Lets go of every entry up to and including `lsn` (the store has them). */
  dropThrough(lsn: number): void {
    while (this.head < this.lsns.length && this.lsns[this.head]! <= lsn) this.dropOldest();
    this.compact();
  }

  private dropOldest(): void {
    this.bytes -= this.sizes[this.head]!;
    this.entries[this.head] = undefined as unknown as JournalEntry; // let it be collected
    this.head++;
  }

  private compact(): void {
    if (this.head < 1024 || this.head * 2 < this.lsns.length) return;
    this.lsns = this.lsns.slice(this.head);
    this.entries = this.entries.slice(this.head);
    this.sizes = this.sizes.slice(this.head);
    this.head = 0;
  }

  private clear(): void {
    this.lsns = [];
    this.entries = [];
    this.sizes = [];
    this.head = 0;
    this.bytes = 0;
  }
}

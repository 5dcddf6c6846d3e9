/** Seconds between two marks: the age of the oldest unshipped entry is known to within this. */
const MARK_INTERVAL_MS = 1_000;

/**
 * How long the oldest journal entry not yet in the store has waited, without a clock read per
 * entry: each group-commit round leaves a mark (its first lsn, the time) when the last mark is a
 * second old or more; the oldest unshipped entry is at least as young as the last mark at or
 * before it, so its age is known to within a second (an over-estimate, never under).
 */
export class BacklogAge {
  /** Marks in lsn order; the first is the last one at or before the oldest unshipped entry. */
  private marks: { lsn: number; atMs: number }[] = [];
  private head = 0;

  constructor(private readonly nowMs: () => number = () => performance.now()) {}

  /** A round is writing entries from `firstLsn` on. */
  round(firstLsn: number): void {
    const now = this.nowMs();
    const last = this.marks[this.marks.length - 1];
    if (last !== undefined && now - last.atMs < MARK_INTERVAL_MS) return;
    this.marks.push({ lsn: firstLsn, atMs: now });
  }

  /** The store has every entry through `ackedLsn`: marks past which nothing is left are let go. */
  acknowledged(ackedLsn: number): void {
    const oldest = ackedLsn + 1;
    while (this.head + 1 < this.marks.length && this.marks[this.head + 1]!.lsn <= oldest) this.head++;
    if (this.head > 1024 && this.head * 2 > this.marks.length) {
      this.marks = this.marks.slice(this.head);
      this.head = 0;
    }
  }

  /** Seconds since the oldest unshipped entry (through `lastLsn`) was written; 0 when none is. */
  ageSeconds(ackedLsn: number, lastLsn: number): number {
    if (ackedLsn >= lastLsn) return 0;
    const mark = this.marks[this.head];
    return mark === undefined ? 0 : Math.max(0, (this.nowMs() - mark.atMs) / 1000);
  }
}

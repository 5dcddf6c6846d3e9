/**
 * One schema step. Statements run in order inside the migration transaction; each is a single
 * SQL statement because the embedded driver's extended protocol takes one at a time.
 */
export interface Migration {
  /** 1, 2, 3... — increasing (a gap is allowed: versions are merged from parallel branches), matches the `NNN_` of the file name. */
  version: number;
  name: string;
  statements: readonly string[];
}

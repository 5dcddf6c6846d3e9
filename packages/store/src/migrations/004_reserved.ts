import type { Migration } from "./types.js";

/**
 * STAND-IN, to be replaced at merge: version 4 belongs to the streams table (branch h-streams),
 * written at the same time as 005_ssh_keys. The list must be gap-free, so this branch holds the
 * number with an empty step; the merge drops this file for the real 004.
 */
export const migration004: Migration = {
  version: 4,
  name: "reserved",
  statements: [],
};

import { migration001 } from "./001_initial.js";
import { migration002 } from "./002_evidence.js";
import { migration003 } from "./003_checkpoints.js";
import { migration004 } from "./004_streams.js";
import { migration005 } from "./005_ssh_keys.js";
import { migration006 } from "./006_search.js";
import { migration007 } from "./007_gateway_keys.js";
import { migration008 } from "./008_cancel_routes.js";
import type { Migration } from "./types.js";

export type { Migration } from "./types.js";
export { GATEWAY_ROLE } from "./002_evidence.js";

/**
 * Every migration, in order. A new one is a new `NNN_name.ts` file added to this list. Versions
 * only increase; a gap is allowed (a store migrated by a branch that had 008 before 007 takes 007 later).
 */
export const migrations: readonly Migration[] = [migration001, migration002, migration003, migration004, migration005, migration006, migration007, migration008];

import { recode, StoreError } from "./errors.js";
import type { SqlExecutor } from "./executor.js";
import { migrations as allMigrations, type Migration } from "./migrations/index.js";

/**
 * Key of the transaction-scoped advisory lock that serializes migrations: two gateways starting at
 * once against one Postgres would otherwise both see "not applied" and race on CREATE TABLE. It
 * is "gatehous" in ASCII, to be recognisable in pg_locks.
 */
const MIGRATION_LOCK_KEY = "7449363237540164979";

export interface MigrationResult {
  /** Versions applied by this call, in order; empty when the schema was already current. */
  applied: number[];
  /** The schema version after the call. */
  version: number;
}

/**
 * Brings the schema up to date: every migration not yet in `schema_migrations` is applied in
 * order, all inside one transaction that holds the advisory lock, so a failure leaves the schema
 * as it was and a concurrent start waits, then finds nothing left to do. Safe on every start.
 */
export type { Migration } from "./migrations/index.js";

export async function migrate(
  sql: SqlExecutor,
  migrations: readonly Migration[] = allMigrations,
): Promise<MigrationResult> {
  checkList(migrations);
  // Already current: nothing to lock or create. This is also what lets the gateway run as its
  // restricted role (no CREATE on the schema), once the owner has migrated.
  const current = await appliedVersions(sql).catch(() => undefined);
  if (current !== undefined && current.length === migrations.length && current.every((row, i) => sameStep(row, migrations[i]))) {
    return { applied: [], version: latestVersion(migrations) };
  }
  try {
    return await sql.transaction(async (tx) => {
      await tx.query(`select pg_advisory_xact_lock(${MIGRATION_LOCK_KEY})`);
      await tx.query(
        `create table if not exists schema_migrations (
          version    int4 primary key,
          name       text not null,
          applied_at timestamptz not null default now()
        )`,
      );
      const rows = await tx.query<{ version: number; name: string }>(
        "select version, name from schema_migrations order by version",
      );
      const known = new Map(migrations.map((m) => [m.version, m]));
      for (const row of rows) {
        const ours = known.get(row.version);
        if (ours === undefined) {
          throw new StoreError(
            "SCHEMA_TOO_NEW",
            `the store's schema has migration ${row.version} (${row.name}), which this gatehouse ` +
              `does not know (it knows up to ${latestVersion(migrations)}): upgrade gatehouse`,
            { context: { migration: `${row.version}_${row.name}` } },
          );
        }
        if (ours.name !== row.name) {
          throw new StoreError(
            "MIGRATION_FAILED",
            `the store's migration ${row.version} is "${row.name}" but this gatehouse's is "${ours.name}"`,
            { context: { migration: `${row.version}_${row.name}` } },
          );
        }
      }
      const done = new Set(rows.map((r) => r.version));
      const applied: number[] = [];
      for (const migration of migrations) {
        if (done.has(migration.version)) continue;
        const label = `${String(migration.version).padStart(3, "0")}_${migration.name}`;
        try {
          for (const statement of migration.statements) await tx.query(statement);
          await tx.query("insert into schema_migrations (version, name) values ($1, $2)", [
            migration.version,
            migration.name,
          ]);
        } catch (err) {
          throw recode("MIGRATION_FAILED", `migration ${label} failed`, err, { migration: label });
        }
        applied.push(migration.version);
      }
      return { applied, version: latestVersion(migrations) };
    });
  } catch (err) {
    throw recode("MIGRATION_FAILED", "migrating the store's schema failed", err);
  }
}

/**
 * The list is code, but a step out of order or a duplicate would run steps in the wrong order or
 * twice: check it. Versions must increase; a gap is allowed, because migrations are numbered on
 * parallel branches (008 may be merged before 007). A store that has 008 and later gets 007 applies
 * 007 then, as it applies any step it lacks, so steps on parallel branches must not depend on each other.
 */
function checkList(migrations: readonly Migration[]): void {
  migrations.forEach((m, i) => {
    const before = i === 0 ? 0 : migrations[i - 1]!.version;
    if (!Number.isInteger(m.version) || m.version <= before) {
      throw new StoreError(
        "MIGRATION_FAILED",
        `migration list out of order: position ${i + 1} holds version ${m.version} (${m.name}) after version ${before}`,
      );
    }
  });
}

/** The schema version once every migration is applied: the last one's. */
function latestVersion(migrations: readonly Migration[]): number {
  return migrations.at(-1)?.version ?? 0;
}

/** The migrations recorded in the store, in order; undefined when the table does not exist yet. */
async function appliedVersions(sql: SqlExecutor): Promise<{ version: number; name: string }[] | undefined> {
  const [exists] = await sql.query<{ table: string | null }>("select to_regclass('schema_migrations')::text as table");
  if (exists?.table == null) return undefined;
  return sql.query<{ version: number; name: string }>("select version, name from schema_migrations order by version");
}

function sameStep(row: { version: number; name: string }, migration: Migration | undefined): boolean {
  return migration !== undefined && row.version === migration.version && row.name === migration.name;
}

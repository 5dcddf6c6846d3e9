import { randomBytes } from "node:crypto";
import postgres from "postgres";

/** Where the real-Postgres half of the tests runs: STORE_TEST_URL, else the local server. */
export const ADMIN_URL = process.env["STORE_TEST_URL"] ?? "postgres://postgres@127.0.0.1:5432/postgres";

export type PostgresProbe = { available: true } | { available: false; reason: string };

/** Whether a Postgres answers at ADMIN_URL, and if not, why — for the skipped suite's title. */
export async function probePostgres(): Promise<PostgresProbe> {
  const sql = postgres(ADMIN_URL, { max: 1, connect_timeout: 3, onnotice: () => {} });
  try {
    await sql`select 1`;
    return { available: true };
  } catch (err) {
    return { available: false, reason: `no Postgres at ${redact(ADMIN_URL)}: ${(err as Error).message}` };
  } finally {
    await sql.end({ timeout: 1 });
  }
}

export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

/** A fresh, empty database `gatehouse_test_<random>` on the server at ADMIN_URL. */
export async function createTestDatabase(): Promise<TestDatabase> {
  const name = `gatehouse_test_${randomBytes(6).toString("hex")}`;
  const admin = postgres(ADMIN_URL, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`create database ${name}`);
  } finally {
    await admin.end({ timeout: 1 });
  }
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const sql = postgres(ADMIN_URL, { max: 1, onnotice: () => {} });
      try {
        // WITH (FORCE) ends sessions a failed test may have left open (Postgres 13+).
        await sql.unsafe(`drop database if exists ${name} with (force)`);
      } finally {
        await sql.end({ timeout: 1 });
      }
    },
  };
}

function redact(url: string): string {
  const parsed = new URL(url);
  if (parsed.password !== "") parsed.password = "***";
  return parsed.toString();
}

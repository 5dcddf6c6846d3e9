import { randomBytes } from "node:crypto";
import pg from "pg";

/** The local Postgres (trust auth) the tests use for stores of their own; GATEHOUSE_TEST_STORE_URL names another. */
const ADMIN_URL = process.env.GATEHOUSE_TEST_STORE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

export interface StoreDatabase {
  name: string;
  /** The database's URL; `at` reaches it through another host and port (a proxy). */
  url(at?: { host: string; port: number }): string;
  drop(): Promise<void>;
}

/**
 * A fresh database on the test Postgres server, for a gateway's store; `drop()` removes it. Made
 * with a plain client: opening the admin database as a store would migrate it.
 */
export async function createStoreDatabase(prefix = "gatehouse_test"): Promise<StoreDatabase> {
  const name = `${prefix}_${randomBytes(5).toString("hex")}`;
  await admin(`create database ${name}`);
  return {
    name,
    url(at) {
      const url = new URL(ADMIN_URL);
      url.pathname = `/${name}`;
      if (at) {
        url.hostname = at.host;
        url.port = String(at.port);
      }
      return url.toString();
    },
    drop: () => admin(`drop database if exists ${name} with (force)`),
  };
}

async function admin(sql: string): Promise<void> {
  const client = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 3_000 });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end();
  }
}

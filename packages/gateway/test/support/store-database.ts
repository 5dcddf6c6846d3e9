import { randomBytes } from "node:crypto";
import pg from "pg";

/** The local Postgres (trust auth) the tests use for stores of their own. */
const ADMIN_URL = process.env.GATEHOUSE_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

export interface StoreDatabase {
  url: string;
  drop(): Promise<void>;
}

/** A fresh, empty database for one test file's store (much quicker to start than the embedded one). */
export async function createStoreDatabase(): Promise<StoreDatabase> {
  const name = `gatehouse_test_${randomBytes(6).toString("hex")}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    async drop() {
      const client = new pg.Client({ connectionString: ADMIN_URL });
      await client.connect();
      try {
        await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await client.end();
      }
    },
  };
}

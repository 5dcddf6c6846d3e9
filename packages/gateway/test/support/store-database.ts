import { randomBytes } from "node:crypto";
import { openStore } from "@gatehouse/store";

const ADMIN_URL = process.env.GATEHOUSE_TEST_STORE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

/** A fresh database on the test Postgres server, for a gateway's store; `drop()` removes it. */
export async function createStoreDatabase(prefix: string): Promise<{ name: string; url: (at?: { host: string; port: number }) => string; drop(): Promise<void> }> {
  const name = `${prefix}_${randomBytes(5).toString("hex")}`;
  const admin = await openStore({ url: ADMIN_URL, maxConnections: 1, connectTimeoutSeconds: 3 });
  await admin.sql.query(`create database ${name}`);
  await admin.close();
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
    async drop() {
      const again = await openStore({ url: ADMIN_URL, maxConnections: 1 });
      await again.sql.query(`drop database if exists ${name} with (force)`);
      await again.close();
    },
  };
}

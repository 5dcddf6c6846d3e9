import { randomBytes } from "node:crypto";
import mysql from "mysql2/promise";
import { canStartThrowawayMariadb, findMariadb, startThrowawayMariadb, type MariadbServer as FoundServer } from "@gatehouse/test-servers";

// The MySQL/MariaDB resource the e2e tests put behind the gateway. Finding or
// starting it (GATEHOUSE_TEST_MYSQL_URL, else the local server, else a
// throwaway mariadbd; one with TLS when asked for) is @gatehouse/test-servers'
// job, shared with the package tests; this file adds what e2e tests do with it:
// mysql2 connections and test databases with the test tables.

/** The server as @gatehouse/test-servers found it (host, user, `sql`, `cliArgs`, `tls`, `stop`…), with mysql2 and test databases. */
export interface MariadbServer extends FoundServer {
  /** A mysql2 connection to `database` (default: none selected). */
  connect(database?: string): Promise<mysql.Connection>;
  /** Runs `sql` (one or more statements) on a connection of its own; the rows of the last result. */
  query(sql: string, database?: string): Promise<unknown>;
  /** A fresh database, `gatehouse_e2e_<random>`, with the test tables (unless `empty`); dropped by `drop()`. */
  createDatabase(options?: { orders?: number; empty?: boolean }): Promise<TestDatabase>;
}

export interface TestDatabase {
  name: string;
  /** Ends the sessions still in the database (DROP would wait for their locks), then drops it. */
  drop(): Promise<void>;
}

/** `tls`: the server must offer TLS (a throwaway with a certificate when the one found has none). */
export async function startMariadbServer(options: { tls?: boolean } = {}): Promise<MariadbServer> {
  return server(await findMariadb(options));
}

/** True when this machine can start a throwaway server (the mariadb-server package is installed). */
export const canStartThrowaway = canStartThrowawayMariadb;

/** A throwaway mariadbd on a free port, logged in to as `gatehouse` with a password (see @gatehouse/test-servers). */
export async function throwaway(options: { tls?: boolean } = {}): Promise<MariadbServer> {
  return server(await startThrowawayMariadb(options));
}

function server(s: FoundServer): MariadbServer {
  const connect = (database?: string) =>
    mysql.createConnection({
      host: s.host,
      port: s.port,
      user: s.user,
      ...(s.password === null ? {} : { password: s.password }),
      ...(database ? { database } : {}),
      multipleStatements: true,
    });
  const query = async (sql: string, database?: string) => {
    const c = await connect(database);
    try {
      const [rows] = await c.query(sql);
      return rows;
    } finally {
      await c.end();
    }
  };
  return {
    ...s,
    connect,
    query,
    async createDatabase(options = {}) {
      const name = `gatehouse_e2e_${randomBytes(6).toString("hex")}`;
      // utf8mb4 whatever the server's default: the tests store text beyond latin1.
      await query(`CREATE DATABASE ${name} CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci`);
      const drop = async () => {
        const c = await connect();
        try {
          const [sessions] = await c.query("SELECT id FROM information_schema.processlist WHERE db = ? AND id <> CONNECTION_ID()", [name]);
          for (const { id } of sessions as Array<{ id: number }>) await c.query(`KILL ${Number(id)}`).catch(() => undefined);
          await c.query(`DROP DATABASE IF EXISTS ${name}`);
        } finally {
          await c.end();
        }
      };
      if (options.empty) return { name, drop };
      // Rows built here rather than with a sequence table or a recursive CTE: the same on MariaDB and MySQL.
      const orders = options.orders ?? 5000;
      const values = Array.from({ length: orders }, (_, k) => `(${k + 1}, 'customer-${(k + 1) % 97}', ${((k + 1) % 1000) / 10})`).join(",");
      await query(
        `CREATE TABLE orders (id INT PRIMARY KEY, customer VARCHAR(100) NOT NULL, amount DECIMAL(10, 2) NOT NULL, created_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)) ENGINE=InnoDB;
         ${orders > 0 ? `INSERT INTO orders (id, customer, amount) VALUES ${values};` : ""}
         CREATE TABLE imports (id INT PRIMARY KEY, note TEXT) ENGINE=InnoDB;`,
        name,
      ).catch(async (error: unknown) => {
        await drop().catch(() => undefined);
        throw error;
      });
      return { name, drop };
    },
  };
}

import { execFileSync, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import mysql from "mysql2/promise";
import { answers, freePort } from "./postgres-server.js";

// The MySQL/MariaDB resource the e2e tests put behind the gateway, found the way
// a user would expect (as for Postgres in postgres-server.ts):
// GATEHOUSE_TEST_MYSQL_URL (mysql://user:password@host:port) when set, else the
// local server on 127.0.0.1:3306 when it answers (as root, no password: a
// Debian mariadb-server), else a throwaway server made with mariadb-install-db
// and started with mariadbd on a free port (as the mysql user: mariadbd will
// not run as root), stopped by `stop()`.

export interface MariadbServer {
  host: string;
  port: number;
  user: string;
  /** Null when the user has no password (the local Debian server's root). */
  password: string | null;
  /** Where it came from, for test names and failure messages. */
  source: "env" | "local" | "throwaway";
  /** A mysql2 connection to `database` (default: none selected). */
  connect(database?: string): Promise<mysql.Connection>;
  /** Runs `sql` (one or more statements) on a connection of its own; the rows of the last result. */
  query(sql: string, database?: string): Promise<unknown>;
  /** `-h -P -u [-p]` for the mariadb, mariadb-dump and mysqlslap command-line clients. */
  cliArgs(): string[];
  /** A fresh database, `gatehouse_e2e_<random>`, with the test tables (unless `empty`); dropped by `drop()`. */
  createDatabase(options?: { orders?: number; empty?: boolean }): Promise<TestDatabase>;
  /** Stops the throwaway server and removes its files (no-op for the others). */
  stop(): Promise<void>;
}

export interface TestDatabase {
  name: string;
  /** Ends the sessions still in the database (DROP would wait for their locks), then drops it. */
  drop(): Promise<void>;
}

const LOCAL = { host: "127.0.0.1", port: 3306 };

export async function startMariadbServer(): Promise<MariadbServer> {
  const url = process.env.GATEHOUSE_TEST_MYSQL_URL;
  if (url) {
    const parsed = new URL(url);
    return server({
      host: parsed.hostname,
      port: Number(parsed.port || 3306),
      user: decodeURIComponent(parsed.username || "root"),
      password: parsed.password ? decodeURIComponent(parsed.password) : null,
      source: "env",
      stop: async () => undefined,
    });
  }
  if (await answers(LOCAL.host, LOCAL.port)) {
    return server({ ...LOCAL, user: "root", password: null, source: "local", stop: async () => undefined });
  }
  return throwaway();
}

/** True when this machine can start a throwaway server (the mariadb-server package is installed). */
export function canStartThrowaway(): boolean {
  // Found on PATH, not run: mariadb-install-db has no harmless option (--help exits 1, --version installs).
  return spawnSync("sh", ["-c", "command -v mariadb-install-db && command -v mariadbd"], { stdio: "ignore" }).status === 0;
}

/**
 * mariadb-install-db + mariadbd in a temp dir (owned by the mysql user when we are root), TCP on
 * 127.0.0.1 and a free port, durability off (a test server). The tests log in as `gatehouse`, a
 * user with a password made here through the server's unix socket, like a DBA's account.
 */
export async function throwaway(): Promise<MariadbServer> {
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-e2e-mariadb-"));
  const data = join(dir, "data");
  const socket = join(dir, "mariadbd.sock");
  const root = process.getuid?.() === 0;
  const runAs = root ? ["--user=mysql"] : [];
  try {
    if (root) {
      const uid = Number(execFileSync("id", ["-u", "mysql"], { encoding: "utf8" }).trim());
      const gid = Number(execFileSync("id", ["-g", "mysql"], { encoding: "utf8" }).trim());
      chownSync(dir, uid, gid);
    }
    chmodSync(dir, 0o700);
    const install = spawnSync(
      "mariadb-install-db",
      ["--no-defaults", ...runAs, `--datadir=${data}`, "--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve"],
      { encoding: "utf8" },
    );
    if (install.status !== 0) throw new Error(`mariadb-install-db failed (${install.status}): ${install.stderr || install.stdout}`);
  } catch (error) {
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const port = await freePort();
  const log = join(dir, "mariadbd.log");
  const child = spawn(
    "mariadbd",
    [
      "--no-defaults",
      ...runAs,
      `--datadir=${data}`,
      `--socket=${socket}`,
      `--pid-file=${join(dir, "mariadbd.pid")}`,
      `--log-error=${log}`,
      `--port=${port}`,
      "--bind-address=127.0.0.1",
      "--skip-name-resolve",
      "--innodb-flush-log-at-trx-commit=0",
      "--innodb-doublewrite=0",
      "--innodb-buffer-pool-size=64M",
      "--max-allowed-packet=64M",
      "--max-connections=200",
      // Debian's packaged server says utf8mb4 in its config files, which --no-defaults skips.
      "--character-set-server=utf8mb4",
      "--collation-server=utf8mb4_general_ci",
    ],
    { stdio: "ignore" },
  );
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const deadline = Date.now() + 60_000;
    while (!(existsSync(socket) && (await answers("127.0.0.1", port)))) {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`mariadbd exited (${child.exitCode ?? child.signalCode}): ${tail(log)}`);
      if (Date.now() > deadline) throw new Error(`mariadbd did not start within 60 s: ${tail(log)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const password = randomBytes(12).toString("hex");
    const admin = await mysql.createConnection({ socketPath: socket, user: "root" });
    try {
      await admin.query(`CREATE USER 'gatehouse'@'127.0.0.1' IDENTIFIED BY '${password}'`);
      await admin.query(`GRANT ALL PRIVILEGES ON *.* TO 'gatehouse'@'127.0.0.1' WITH GRANT OPTION`);
    } finally {
      await admin.end();
    }
    return server({ host: "127.0.0.1", port, user: "gatehouse", password, source: "throwaway", stop });
  } catch (error) {
    await stop();
    throw error;
  }
}

function tail(file: string): string {
  try {
    return readFileSync(file, "utf8").split("\n").slice(-15).join("\n");
  } catch {
    return "(no log)";
  }
}

function server(s: { host: string; port: number; user: string; password: string | null; source: MariadbServer["source"]; stop: () => Promise<void> }): MariadbServer {
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
    host: s.host,
    port: s.port,
    user: s.user,
    password: s.password,
    source: s.source,
    connect,
    query,
    stop: s.stop,
    cliArgs: () => ["-h", s.host, "-P", String(s.port), "-u", s.user, ...(s.password === null ? [] : [`-p${s.password}`])],
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

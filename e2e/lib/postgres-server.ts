import { execFileSync, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { answers, findExistingServer, freePort } from "@gatehouse/test-servers";

// The Postgres resource the e2e tests put behind the gateway, found the way a
// user would expect: GATEHOUSE_TEST_PG_URL when set, else the local server on
// 127.0.0.1:5432 when it answers, else a throwaway cluster made with initdb and
// started with pg_ctl on a free port (as the postgres user: the server refuses
// to run as root), stopped by `stop()`.

export interface PostgresServer {
  host: string;
  port: number;
  user: string;
  /** Null when the server trusts the user (the local and throwaway servers). */
  password: string | null;
  /** Where it came from, for test names and failure messages. */
  source: "env" | "local" | "throwaway";
  /** A client for `database` (default: the maintenance database). */
  client(database?: string): Promise<pg.Client>;
  /** A postgres:// URL for `database`. */
  url(database: string): string;
  /** A fresh database, `gatehouse_e2e_<random>`, with the test tables (unless `empty`); dropped by `drop()`. */
  createDatabase(options?: { orders?: number; empty?: boolean }): Promise<TestDatabase>;
  /** Stops the throwaway server (no-op for the others). */
  stop(): Promise<void>;
}

export interface TestDatabase {
  name: string;
  /** Drops the database, ending whatever sessions are still in it. */
  drop(): Promise<void>;
}

/**
 * A gateway config's `connections[]` entry (protocol postgres) for `database` on `server`, through
 * `connector`, with the server's user as its credential: the password, when the server has one, is
 * `env:GATEHOUSE_E2E_PG_PASSWORD` (give the connector that variable; see `connectorPasswordEnv`).
 */
export function postgresConnection(server: PostgresServer, database: string, options: { allow: unknown[]; name?: string; connector?: string }): Record<string, unknown> {
  return {
    name: options.name ?? "app",
    protocol: "postgres",
    connector: options.connector ?? "dc1",
    target: { host: server.host, port: server.port, database, tls: "disable" },
    credential: { user: server.user, ...(server.password === null ? {} : { password: "env:GATEHOUSE_E2E_PG_PASSWORD" }) },
    allow: options.allow,
  };
}

/** The connector's environment for `postgresConnection`'s credential. */
export function connectorPasswordEnv(server: PostgresServer): Record<string, string> {
  return server.password === null ? {} : { GATEHOUSE_E2E_PG_PASSWORD: server.password };
}

export async function startPostgresServer(): Promise<PostgresServer> {
  const found = await findExistingServer({ envVar: "GATEHOUSE_TEST_PG_URL", defaultPort: 5432, defaultUser: "postgres" });
  if (!found) return throwaway();
  const { database, ...where } = found;
  return server({ ...where, maintenance: database ?? "postgres", stop: async () => undefined });
}

// From @gatehouse/test-servers, for the e2e files that import them from here.
export { answers, freePort };

/**
 * initdb + pg_ctl as the postgres OS user, data in a temp dir it owns. With `password`, the
 * server demands it (scram-sha-256 for every connection) instead of trusting the user.
 */
export async function throwaway(settings: { password?: string } = {}): Promise<PostgresServer> {
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-e2e-pg-"));
  const data = join(dir, "data");
  const asPostgres = (args: string[]) => {
    const argv = process.getuid?.() === 0 ? ["runuser", "-u", "postgres", "--", ...args] : args;
    const run = spawnSync(argv[0]!, argv.slice(1), { encoding: "utf8" });
    if (run.status !== 0) throw new Error(`${args.join(" ")} failed (${run.status}): ${run.stderr || run.stdout}`);
  };
  const pwfile = join(dir, "pwfile");
  if (settings.password !== undefined) writeFileSync(pwfile, `${settings.password}\n`, { mode: 0o600 });
  if (process.getuid?.() === 0) {
    const uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim());
    const gid = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim());
    chownSync(dir, uid, gid);
    if (settings.password !== undefined) chownSync(pwfile, uid, gid);
  }
  chmodSync(dir, 0o700);
  const auth = settings.password === undefined ? ["--auth=trust"] : ["--auth=scram-sha-256", `--pwfile=${pwfile}`];
  asPostgres(["initdb", "-D", data, "-U", "postgres", ...auth, "--no-sync", "-E", "UTF8"]);
  const port = await freePort();
  // No unix socket (the default directory may not be writable); fsync off: a test cluster.
  const options = `-p ${port} -k '' -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100`;
  asPostgres(["pg_ctl", "-D", data, "-o", options, "-l", join(dir, "log"), "-w", "start"]);
  return server({
    host: "127.0.0.1",
    port,
    user: "postgres",
    password: settings.password ?? null,
    maintenance: "postgres",
    source: "throwaway",
    stop: async () => {
      try {
        asPostgres(["pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  });
}

function server(s: { host: string; port: number; user: string; password: string | null; maintenance: string; source: PostgresServer["source"]; stop: () => Promise<void> }): PostgresServer {
  const client = async (database = s.maintenance) => {
    const c = new pg.Client({ host: s.host, port: s.port, user: s.user, database, ...(s.password === null ? {} : { password: s.password }) });
    await c.connect();
    return c;
  };
  return {
    host: s.host,
    port: s.port,
    user: s.user,
    password: s.password,
    source: s.source,
    client,
    stop: s.stop,
    url: (database) => `postgres://${encodeURIComponent(s.user)}${s.password === null ? "" : `:${encodeURIComponent(s.password)}`}@${s.host}:${s.port}/${database}`,
    async createDatabase(options = {}) {
      const name = `gatehouse_e2e_${randomBytes(6).toString("hex")}`;
      const admin = await client();
      try {
        await admin.query(`create database ${name}`);
      } finally {
        await admin.end();
      }
      const drop = async () => {
        const admin = await client();
        try {
          await admin.query(`drop database if exists ${name} with (force)`);
        } finally {
          await admin.end();
        }
      };
      if (options.empty) return { name, drop };
      const db = await client(name);
      try {
        await db.query(`
          create table orders (id int primary key, customer text not null, amount numeric(10, 2) not null, created_at timestamptz not null default now());
          insert into orders (id, customer, amount)
            select i, 'customer-' || (i % 97), (i % 1000) / 10.0 from generate_series(1, ${options.orders ?? 5000}) as i;
          create table imports (id int primary key, note text);
          analyze orders;
        `);
      } finally {
        await db.end();
      }
      return { name, drop };
    },
  };
}

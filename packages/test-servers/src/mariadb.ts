import { execFileSync, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, chownSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { findExistingServer } from "./existing-server.js";
import { answers, freePort } from "./net.js";

// The MariaDB server a test stands on, found the way a user would expect:
// GATEHOUSE_TEST_MYSQL_URL (mysql://user:password@host:port) when set, else the
// local server on 127.0.0.1:3306 when it answers (as root, no password: a
// Debian mariadb-server), else a throwaway server made with mariadb-install-db
// and started with mariadbd on a free port. A test that needs TLS asks for it:
// when the server found has none (a packaged server has no certificate), it
// gets a throwaway one with a fresh self-signed certificate instead of
// skipping. Administration goes through the `mariadb` command-line client, so
// this package needs no driver.

export interface MariadbServer {
  readonly host: string;
  readonly port: number;
  /** An administrator: may create databases and users, and install plugins. */
  readonly user: string;
  /** Null when the user has no password (the local Debian server's root). */
  readonly password: string | null;
  /** Where it came from, for test names and failure messages. */
  readonly source: "env" | "local" | "throwaway";
  /** Whether the server offers TLS (@@have_ssl is YES). */
  readonly tls: boolean;
  /** The certificate (PEM file) a client should trust for this server, when it was made here (a throwaway with TLS); else null. */
  readonly caFile: string | null;
  /** Runs `statement` (one or more) as the administrator with the mariadb client; its rows tab-separated, no column names, trimmed. Throws on an error. */
  sql(statement: string, database?: string): string;
  /** `-h -P -u [-p]` for the mariadb, mariadb-dump and mysqlslap command-line clients. */
  cliArgs(): string[];
  /** Stops a throwaway server and removes its files (no-op for the others). */
  stop(): Promise<void>;
}

export interface FindMariadbOptions {
  /** The server must offer TLS: when the one found does not, start a throwaway with a certificate. */
  tls?: boolean;
}

export async function findMariadb(options: FindMariadbOptions = {}): Promise<MariadbServer> {
  const found = await existingServer();
  if (found && (!options.tls || found.tls)) return found;
  return startThrowawayMariadb({ tls: options.tls ?? false });
}

/** The server named by GATEHOUSE_TEST_MYSQL_URL, else the local one when it answers (as root, no password), else null. */
async function existingServer(): Promise<MariadbServer | null> {
  const found = await findExistingServer({ envVar: "GATEHOUSE_TEST_MYSQL_URL", defaultPort: 3306, defaultUser: "root" });
  if (!found) return null;
  const { database: _database, ...where } = found;
  return server({ ...where, caFile: null, stop: async () => undefined });
}

/** True when this machine can start a throwaway server (the mariadb-server package is installed). */
export function canStartThrowawayMariadb(): boolean {
  // Found on PATH, not run: mariadb-install-db has no harmless option (--help exits 1, --version installs).
  return spawnSync("sh", ["-c", "command -v mariadb-install-db && command -v mariadbd"], { stdio: "ignore" }).status === 0;
}

/**
 * mariadb-install-db + mariadbd in a temp dir (owned by the mysql user when we are root: mariadbd
 * will not run as root), TCP on 127.0.0.1 and a free port, durability off (a test server). Tests log
 * in as `gatehouse`, a real user with a password made here through the server's unix socket, like a
 * DBA's account (no --skip-grant-tables: authentication is what the tests exercise). With `tls`, a
 * self-signed certificate for 127.0.0.1 (also its own CA, in `caFile`) via --ssl-cert/--ssl-key/--ssl-ca.
 */
export async function startThrowawayMariadb(options: { tls?: boolean } = {}): Promise<MariadbServer> {
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-mariadb-"));
  const data = join(dir, "data");
  const socket = join(dir, "mariadbd.sock");
  const root = process.getuid?.() === 0;
  const runAs = root ? ["--user=mysql"] : [];
  const cert = join(dir, "cert.pem");
  const key = join(dir, "key.pem");
  try {
    const owner = root ? mysqlOwner() : null;
    if (owner) chownSync(dir, owner.uid, owner.gid);
    chmodSync(dir, 0o700);
    if (options.tls) {
      execFileSync(
        "openssl",
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        { stdio: "ignore" },
      );
      // mariadbd reads them as the mysql user; the test process (root) still reads cert.pem as a CA.
      if (owner) for (const file of [cert, key]) chownSync(file, owner.uid, owner.gid);
    }
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
      ...(options.tls ? [`--ssl-cert=${cert}`, `--ssl-key=${key}`, `--ssl-ca=${cert}`] : []),
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
    // root has no password on the unix socket of a fresh install (--auth-root-authentication-method=normal).
    mariadbClient(["--socket", socket, "-u", "root"], null, `CREATE USER 'gatehouse'@'127.0.0.1' IDENTIFIED BY '${password}'; GRANT ALL PRIVILEGES ON *.* TO 'gatehouse'@'127.0.0.1' WITH GRANT OPTION`);
    const made = server({ host: "127.0.0.1", port, user: "gatehouse", password, source: "throwaway", caFile: options.tls ? cert : null, stop });
    if (options.tls && !made.tls) throw new Error(`mariadbd started without TLS despite its certificate: ${tail(log)}`);
    return made;
  } catch (error) {
    await stop();
    throw error;
  }
}

function mysqlOwner(): { uid: number; gid: number } {
  return {
    uid: Number(execFileSync("id", ["-u", "mysql"], { encoding: "utf8" }).trim()),
    gid: Number(execFileSync("id", ["-g", "mysql"], { encoding: "utf8" }).trim()),
  };
}

function tail(file: string): string {
  try {
    return readFileSync(file, "utf8").split("\n").slice(-15).join("\n");
  } catch {
    return "(no log)";
  }
}

/** Runs the mariadb client without option files (a developer's ~/.my.cnf may say anything), the password in MYSQL_PWD. */
function mariadbClient(connectArgs: string[], password: string | null, statement: string, database?: string): string {
  // utf8mb4 both ways: without option files the client would pick its charset from a locale the test may not have.
  return execFileSync("mariadb", ["--no-defaults", ...connectArgs, "--skip-ssl", "--default-character-set=utf8mb4", "-N", "-B", ...(database ? ["-D", database] : []), "-e", statement], {
    encoding: "utf8",
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", ...(password === null ? {} : { MYSQL_PWD: password }) },
    stdio: ["ignore", "pipe", "pipe"],
  }).trim();
}

function server(s: { host: string; port: number; user: string; password: string | null; source: MariadbServer["source"]; caFile: string | null; stop: () => Promise<void> }): MariadbServer {
  const connectArgs = ["-h", s.host, "-P", String(s.port), "-u", s.user];
  const sql = (statement: string, database?: string) => mariadbClient(connectArgs, s.password, statement, database);
  return {
    ...s,
    tls: sql("SELECT @@have_ssl") === "YES",
    sql,
    cliArgs: () => [...connectArgs, ...(s.password === null ? [] : [`-p${s.password}`])],
  };
}

export interface MariadbTestAccounts {
  /** A database the accounts may use. */
  database: string;
  /** A mysql_native_password user with a non-ASCII password, all privileges on `database`. */
  native: { user: string; password: string };
  /** A MariaDB ed25519 user (client_ed25519), or null when the auth_ed25519 plugin cannot be loaded here. */
  ed25519: { user: string; password: string } | null;
  /** Drops the users and the database. */
  drop(): void;
}

/**
 * The accounts a login test needs on `server`, named `<prefix>_native_<pid>` etc. so parallel test
 * files and runs do not collide; `drop()` removes them.
 */
export function createMariadbTestAccounts(server: MariadbServer, prefix: string): MariadbTestAccounts {
  const suffix = `${process.pid}`;
  const database = `${prefix}_db_${suffix}`;
  const native = { user: `${prefix}_native_${suffix}`, password: "native pw ü" };
  const ed = { user: `${prefix}_ed_${suffix}`, password: "ed pw" };
  server.sql(`CREATE DATABASE IF NOT EXISTS ${database}`);
  server.sql(`CREATE USER IF NOT EXISTS '${native.user}'@'%' IDENTIFIED VIA mysql_native_password USING PASSWORD('${native.password}')`);
  server.sql(`GRANT ALL ON ${database}.* TO '${native.user}'@'%'`);
  let ed25519: MariadbTestAccounts["ed25519"] = null;
  try {
    // The plugin ships with MariaDB but is not loaded by default; loading it twice is an error we ignore.
    try {
      server.sql("INSTALL SONAME 'auth_ed25519'");
    } catch {
      /* already installed */
    }
    server.sql(`CREATE USER IF NOT EXISTS '${ed.user}'@'%' IDENTIFIED VIA ed25519 USING PASSWORD('${ed.password}')`);
    ed25519 = ed;
  } catch {
    ed25519 = null;
  }
  return {
    database,
    native,
    ed25519,
    drop() {
      server.sql(`DROP USER IF EXISTS '${native.user}'@'%'`);
      server.sql(`DROP USER IF EXISTS '${ed.user}'@'%'`);
      server.sql(`DROP DATABASE IF EXISTS ${database}`);
    },
  };
}

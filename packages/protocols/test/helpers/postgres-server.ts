/**
 * A throwaway Postgres cluster for integration tests: initdb into a temp dir, pg_hba lines
 * chosen by the test (scram-sha-256, md5, password…), TLS with a self-signed certificate,
 * listening on a free port on 127.0.0.1. Postgres refuses to run as root, so as root the
 * commands run as the `postgres` user.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, chownSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface ThrowawayPostgres {
  readonly port: number;
  readonly dir: string;
  /** Run SQL as the superuser over the Unix socket (trusted). */
  sql(statement: string): string;
  stop(): void;
}

export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => resolve(typeof address === "object" && address !== null ? address.port : 0));
    });
  });
}

const isRoot = process.getuid?.() === 0;

function asPostgres(command: string, args: string[]): string {
  const [file, argv] = isRoot ? ["runuser", ["-u", "postgres", "--", command, ...args]] : [command, args];
  return execFileSync(file, argv, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], cwd: tmpdir() });
}

export function postgresAvailable(): boolean {
  return spawnSync("initdb", ["--version"]).status === 0 && spawnSync("pg_ctl", ["--version"]).status === 0;
}

export async function startThrowawayPostgres(hbaLines: readonly string[]): Promise<ThrowawayPostgres> {
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-pg-"));
  const data = join(dir, "data");
  if (isRoot) {
    const uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim());
    const gid = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim());
    chownSync(dir, uid, gid);
  }
  chmodSync(dir, 0o700);
  asPostgres("initdb", ["-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync", "--no-instructions"]);
  const cert = join(data, "server.crt");
  const key = join(data, "server.key");
  asPostgres("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost", "-keyout", key, "-out", cert]);
  asPostgres("chmod", ["600", key]);
  writeFileSync(
    join(dir, "pg_hba.conf"),
    ["local all all trust", ...hbaLines, "host all all 127.0.0.1/32 trust", ""].join("\n"),
  );
  if (isRoot) execFileSync("chown", ["postgres", join(dir, "pg_hba.conf")]);
  const port = await freePort();
  const options = [
    `-p ${port}`,
    `-k ${dir}`,
    "-c listen_addresses=127.0.0.1",
    `-c hba_file=${join(dir, "pg_hba.conf")}`,
    "-c ssl=on",
    "-c fsync=off",
    "-c max_connections=20",
    "-c shared_buffers=16MB",
  ].join(" ");
  asPostgres("pg_ctl", ["-D", data, "-o", options, "-l", join(dir, "log"), "-w", "-t", "60", "start"]);
  let stopped = false;
  return {
    port,
    dir,
    sql: (statement) => asPostgres("psql", ["-h", dir, "-p", String(port), "-U", "postgres", "-d", "postgres", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", statement]).trim(),
    stop: () => {
      if (stopped) return;
      stopped = true;
      try {
        asPostgres("pg_ctl", ["-D", data, "-m", "immediate", "-w", "stop"]);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

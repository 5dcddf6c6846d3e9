import { execFileSync, spawnSync } from "node:child_process";
import { chownSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { freePort, startPostgresServer, type PostgresServer, type TestDatabase, postgresConnection } from "../lib/postgres-server.js";
import { newToken, runCli, startConnectorProcess, startGatewayProcess, tempDir, type Proc, type RunningGateway } from "../lib/processes.js";

// Shared by the evidence tests: a store Postgres of their own that can be stopped and started
// again with its data (the "store outage"), and a gateway + connector in front of a resource
// database, with the gateway's store and recording settings given by the test.

export const IDENTITY = "agent";

/** A Postgres cluster in a temporary directory, run as the postgres user; stop() keeps its data, destroy() removes it. */
export interface StorePostgres {
  port: number;
  /** URL for `database` as `user` (trust authentication: no password). */
  url(database: string, user?: string): string;
  admin(database?: string): Promise<pg.Client>;
  stop(): void;
  start(): void;
  destroy(): void;
}

export async function startStorePostgres(): Promise<StorePostgres> {
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-e2e-store-pg-"));
  const data = join(dir, "data");
  const root = process.getuid?.() === 0;
  const asPostgres = (args: string[]) => {
    const argv = root ? ["runuser", "-u", "postgres", "--", ...args] : args;
    const run = spawnSync(argv[0]!, argv.slice(1), { encoding: "utf8" });
    if (run.status !== 0) throw new Error(`${args.join(" ")} failed (${run.status}): ${run.stderr || run.stdout}`);
  };
  if (root) {
    const uid = Number(execFileSync("id", ["-u", "postgres"], { encoding: "utf8" }).trim());
    const gid = Number(execFileSync("id", ["-g", "postgres"], { encoding: "utf8" }).trim());
    chownSync(dir, uid, gid);
  }
  asPostgres(["initdb", "-D", data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"]);
  const port = await freePort();
  const options = `-p ${port} -k '' -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off`;
  const start = () => asPostgres(["pg_ctl", "-D", data, "-o", options, "-l", join(dir, "log"), "-w", "start"]);
  start();
  let running = true;
  const url = (database: string, user = "postgres") => `postgres://${user}@127.0.0.1:${port}/${database}`;
  return {
    port,
    url,
    admin: async (database = "postgres") => {
      const client = new pg.Client({ connectionString: url(database) });
      await client.connect();
      return client;
    },
    stop: () => {
      asPostgres(["pg_ctl", "-D", data, "-m", "fast", "-w", "stop"]);
      running = false;
    },
    start: () => {
      start();
      running = true;
    },
    destroy: () => {
      if (running) {
        try {
          asPostgres(["pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"]);
        } catch {
          // already down
        }
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface EvidenceStack {
  resource: PostgresServer;
  db: TestDatabase;
  /** The gateway's store, when it is a Postgres one. */
  storeUrl: string | undefined;
  gateway: RunningGateway;
  connector: Proc;
  dir: string;
  config: Record<string, unknown>;
  key: string;
  listen: { host: string; port: number };
  /** A node-postgres client through the gateway, connected. */
  client(application?: string): Promise<pg.Client>;
  /** Starts the gateway again in the same directory (after it stopped or was killed). */
  restartGateway(): Promise<RunningGateway>;
  /** The public key file `gatehouse keys signing` printed. */
  publicKeyFile(): Promise<string>;
  cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }>;
  stop(): Promise<void>;
}

/**
 * `storeUrl`: the gateway's store; `storeDatabase`: a fresh empty database on the resource's
 * server instead (its URL in `storeUrl` of the result); neither: the embedded store.
 */
export async function startEvidenceStack(options: { storeUrl?: string; storeDatabase?: boolean; recording?: Record<string, unknown> }): Promise<EvidenceStack> {
  const resource = await startPostgresServer();
  const cleanups: Array<() => Promise<unknown>> = [() => resource.stop()];
  const stop = async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
  };
  try {
    const db = await resource.createDatabase({ orders: 10 });
    cleanups.push(() => db.drop());
    let storeUrl = options.storeUrl;
    if (options.storeDatabase) {
      const storeDb = await resource.createDatabase({ empty: true });
      cleanups.push(() => storeDb.drop());
      storeUrl = resource.url(storeDb.name);
    }
    const dc1 = newToken();
    const dir = tempDir("gatehouse-e2e-evidence-");
    const config: Record<string, unknown> = {
      listen: { api: "127.0.0.1:0", postgres: "127.0.0.1:0" },
      tunnel: { pingIntervalMs: 1000, deadAfterMs: 3000 },
      connectors: [{ name: "dc1", tokenSha256: dc1.sha256 }],
      connections: [
        postgresConnection(resource, db.name, { allow: [{ identity: IDENTITY }] }),
      ],
      ...(storeUrl ? { store: { url: storeUrl } } : {}),
      ...(options.recording ? { recording: options.recording } : {}),
    };
    let gateway = await startGatewayProcess(config, dir, 90_000);
    let gatewayProc = gateway.proc;
    cleanups.push(() => gatewayProc.stop());
    const connectorEnv = resource.password === null ? undefined : { GATEHOUSE_E2E_PG_PASSWORD: resource.password };
    const connector = await startConnectorProcess({ gateway: gateway.apiUrl, name: "dc1", token: dc1.token, allow: `${resource.host}:${resource.port}`, ...(connectorEnv ? { extra: connectorEnv } : {}) });
    cleanups.push(() => connector.stop());
    await gateway.proc.waitFor((l) => l.msg === "connector connected" && l.connector === "dc1");
    const created = await runCli(["keys", "create", "--identity", IDENTITY], { cwd: dir });
    if (created.code !== 0) throw new Error(`keys create failed: ${created.stderr}`);
    const key = created.stdout.trim();
    const listenOf = (g: RunningGateway) => g.proc.lines.find((l) => l.msg === "gateway started")!.postgres as { host: string; port: number };

    const stack: EvidenceStack = {
      resource,
      db,
      storeUrl,
      get gateway() {
        return gateway;
      },
      connector,
      dir,
      config,
      key,
      get listen() {
        return listenOf(gateway);
      },
      async client(application = "e2e-evidence") {
        const { host, port } = listenOf(gateway);
        const client = new pg.Client({ host, port, user: IDENTITY, database: "app", password: key, application_name: application, ssl: { rejectUnauthorized: false } });
        client.on("error", () => undefined);
        await client.connect();
        return client;
      },
      async restartGateway() {
        gateway = await startGatewayProcess(config, dir, 90_000);
        gatewayProc = gateway.proc;
        return gateway;
      },
      async publicKeyFile() {
        const printed = await runCli(["keys", "signing"], { cwd: dir });
        if (printed.code !== 0) throw new Error(`keys signing failed: ${printed.stderr}`);
        const file = join(dir, "signing-public.pem");
        writeFileSync(file, printed.stdout);
        return file;
      },
      cli: (args) => runCli(args, { cwd: dir }),
      stop,
    };
    return stack;
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Polls `check` until it returns a value (not undefined), or fails after `timeoutMs`. */
/** Runs one statement against a store database (`url`) and returns its rows. */
export async function queryStore<T extends pg.QueryResultRow>(url: string, sql: string, params: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query<T>(sql, params)).rows;
  } finally {
    await client.end();
  }
}

export { eventually } from "../lib/eventually.js";

// `pnpm demo`: a gateway, a connector, the embedded store and a demo Postgres
// resource, all on this machine, then the psql line to try; and a demo MariaDB
// resource with the mariadb line when the machine has MariaDB. Ctrl-C stops all.
//
// The resource is DEMO_DATABASE_URL when set (a Postgres you already run; the
// connector logs in with that URL's user and password), else an embedded
// PGlite with an `orders` table. The MySQL resource is DEMO_MYSQL_URL when set
// (mysql://user:password@host:port/database), else a throwaway mariadbd of its
// own (never the server you may run on 3306) when mariadb-server is installed,
// else none: the demo says what to install and carries on with Postgres.
// State lives in ./data, so `pnpm gatehouse sessions …` run from here finds
// this gateway.
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, chownSync, createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
process.chdir(root);
const cli = join(root, "packages/cli/dist/main.js");
const demoDir = join(root, "data", "demo");
mkdirSync(demoDir, { recursive: true });

const children = [];
let resource;
let mysqlResource;
const stop = async (code = 0) => {
  for (const child of children.reverse()) child.kill("SIGTERM");
  await Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null ? r() : c.once("exit", r)))));
  await resource?.close();
  await mysqlResource?.close();
  process.exit(code);
};
process.once("SIGINT", () => void stop());
process.once("SIGTERM", () => void stop());

function fail(message) {
  console.error(`demo: ${message}`);
  void stop(1);
}

/** The preferred port when it is free, else any free port. */
async function freePort(preferred) {
  const tryPort = (port) =>
    new Promise((resolve) => {
      const server = createServer();
      server.once("error", () => resolve(undefined));
      server.listen(port, "127.0.0.1", () => {
        const { port: bound } = server.address();
        server.close(() => resolve(bound));
      });
    });
  return (await tryPort(preferred)) ?? (await tryPort(0));
}

async function startResource() {
  if (process.env.DEMO_DATABASE_URL) {
    const url = new URL(process.env.DEMO_DATABASE_URL);
    return {
      host: url.hostname,
      port: Number(url.port || 5432),
      database: decodeURIComponent(url.pathname.slice(1)) || "postgres",
      user: decodeURIComponent(url.username) || "postgres",
      password: decodeURIComponent(url.password),
      describe: `your Postgres at ${url.hostname}:${url.port || 5432}`,
      close: async () => undefined,
    };
  }
  const { PGlite } = await import("@electric-sql/pglite");
  const { PGLiteSocketServer } = await import("@electric-sql/pglite-socket");
  const db = await PGlite.create();
  await db.exec(`
    CREATE TABLE orders (id serial PRIMARY KEY, customer text NOT NULL, total numeric(10,2) NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
    INSERT INTO orders (customer, total) SELECT 'customer-' || g, (g * 7 % 500) + 0.99 FROM generate_series(1, 1000) AS g;
  `);
  const port = await freePort(0);
  const server = new PGLiteSocketServer({ db, port, host: "127.0.0.1" });
  await server.start();
  return {
    host: "127.0.0.1",
    port,
    database: "postgres",
    user: "postgres",
    password: "",
    describe: "an embedded PGlite with an orders table",
    close: async () => {
      await server.stop();
      await db.close();
    },
  };
}

const DEMO_ORDERS_SQL = `CREATE TABLE IF NOT EXISTS orders (id INT AUTO_INCREMENT PRIMARY KEY, customer VARCHAR(100) NOT NULL, total DECIMAL(10,2) NOT NULL, created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP);
  INSERT INTO orders (customer, total) SELECT CONCAT('customer-', seq), (seq * 7 % 500) + 0.99 FROM seq_1_to_1000 WHERE NOT EXISTS (SELECT 1 FROM orders);`;

const answers = (port) =>
  new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => (socket.destroy(), resolve(true)));
    socket.once("error", () => resolve(false));
  });

/**
 * The MySQL resource: DEMO_MYSQL_URL, else a throwaway mariadbd (mariadb-install-db into a temp dir, as the
 * mysql user when we are root: mariadbd will not run as root) with a `demo` user and an orders table, else
 * undefined with what to install.
 */
async function startMysqlResource() {
  if (process.env.DEMO_MYSQL_URL) {
    const url = new URL(process.env.DEMO_MYSQL_URL);
    return {
      host: url.hostname,
      port: Number(url.port || 3306),
      database: decodeURIComponent(url.pathname.slice(1)) || "mysql",
      user: decodeURIComponent(url.username) || "root",
      password: decodeURIComponent(url.password),
      describe: `your MySQL at ${url.hostname}:${url.port || 3306}`,
      close: async () => undefined,
    };
  }
  const installed = spawnSync("sh", ["-c", "command -v mariadb-install-db && command -v mariadbd && command -v mariadb"], { stdio: "ignore" }).status === 0;
  if (!installed) return { missing: "MariaDB is not installed here (Debian: apt-get install mariadb-server mariadb-client, or bash scripts/setup.sh --test as root)" };
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-demo-mariadb-"));
  const asRoot = process.getuid?.() === 0;
  if (asRoot) chownSync(dir, Number(execFileSync("id", ["-u", "mysql"], { encoding: "utf8" })), Number(execFileSync("id", ["-g", "mysql"], { encoding: "utf8" })));
  chmodSync(dir, 0o700);
  const user = asRoot ? ["--user=mysql"] : [];
  const data = join(dir, "data");
  const socket = join(dir, "mariadbd.sock");
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  const install = spawnSync("mariadb-install-db", ["--no-defaults", ...user, `--datadir=${data}`, "--auth-root-authentication-method=normal", "--skip-test-db"], { encoding: "utf8" });
  if (install.status !== 0) {
    cleanup();
    return { missing: `mariadb-install-db failed, so no MariaDB resource: ${(install.stderr || install.stdout).trim().split("\n").at(-1)}` };
  }
  const port = await freePort(0);
  const server = spawn(
    "mariadbd",
    ["--no-defaults", ...user, `--datadir=${data}`, `--socket=${socket}`, `--port=${port}`, "--bind-address=127.0.0.1", "--skip-name-resolve", "--character-set-server=utf8mb4", `--log-error=${join(dir, "mariadbd.log")}`, `--pid-file=${join(dir, "mariadbd.pid")}`],
    { stdio: "ignore" },
  );
  const exited = new Promise((r) => server.once("exit", r));
  const close = async () => {
    if (server.exitCode === null && server.signalCode === null) {
      server.kill("SIGTERM");
      await exited;
    }
    cleanup();
  };
  for (let i = 0; !(existsSync(socket) && (await answers(port))); i++) {
    if (server.exitCode !== null || i > 300) {
      await close();
      return { missing: "mariadbd did not start, so no MariaDB resource" };
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const password = randomBytes(12).toString("hex");
  const setup = spawnSync(
    "mariadb",
    ["--no-defaults", `--socket=${socket}`, "-uroot", "-e", `CREATE DATABASE app; CREATE USER 'demo'@'127.0.0.1' IDENTIFIED BY '${password}'; GRANT ALL ON app.* TO 'demo'@'127.0.0.1'; USE app; ${DEMO_ORDERS_SQL}`],
    { encoding: "utf8" },
  );
  if (setup.status !== 0) {
    await close();
    return { missing: `could not set up the demo MariaDB: ${setup.stderr.trim()}` };
  }
  const version = spawnSync("mariadb", ["--no-defaults", `--socket=${socket}`, "-uroot", "-N", "-e", "SELECT VERSION()"], { encoding: "utf8" }).stdout.trim();
  return { host: "127.0.0.1", port, database: "app", user: "demo", password, version, describe: "a throwaway MariaDB with an orders table", close };
}

/** Whether this gateway build takes `config` (a MySQL listener and connection), asked with `gatehouse config check`. */
function gatewayTakes(config) {
  const file = join(demoDir, "mysql-check.yaml");
  writeFileSync(file, JSON.stringify(config));
  const check = spawnSync(process.execPath, [cli, "config", "check", file], { encoding: "utf8" });
  rmSync(file, { force: true });
  return check.status === 0;
}

/** Spawns the CLI, copies its JSON log lines to a file, and resolves the first line that matches. */
function run(args, env, logFile) {
  const child = spawn(process.execPath, [cli, ...args], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  const log = createWriteStream(logFile);
  const waiters = [];
  let buffered = "";
  child.stdout.setEncoding("utf8").on("data", (text) => {
    log.write(text);
    buffered += text;
    let nl;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      let parsed;
      try {
        parsed = JSON.parse(line);
      } catch {
        continue;
      }
      for (const w of [...waiters]) if (w.match(parsed)) waiters.splice(waiters.indexOf(w), 1) && w.resolve(parsed);
    }
  });
  let stderr = "";
  child.stderr.setEncoding("utf8").on("data", (text) => {
    log.write(text);
    stderr += text;
  });
  child.once("exit", (code) => {
    if (code !== 0 && code !== null) fail(`${args[0]} exited with ${code}:\n${stderr.trim()}\n(see ${logFile})`);
  });
  return { child, waitFor: (match) => new Promise((resolve) => waiters.push({ match, resolve })) };
}

resource = await startResource();
const apiPort = await freePort(8009);
const pgPort = await freePort(15432);
const connectorToken = randomBytes(24).toString("base64url");
const config = {
  dataDir: "./data",
  listen: { api: `127.0.0.1:${apiPort}`, postgres: `127.0.0.1:${pgPort}` },
  connectors: [{ name: "demo-connector", tokenSha256: createHash("sha256").update(connectorToken).digest("hex") }],
  connections: [
    {
      name: "app",
      protocol: "postgres",
      connector: "demo-connector",
      target: { host: resource.host, port: resource.port, database: resource.database, tls: "prefer" },
      credential: { user: resource.user, ...(resource.password ? { password: "env:DEMO_RESOURCE_PASSWORD" } : {}) },
      allow: [{ identity: "demo-agent" }],
    },
  ],
};
/** The demo's MySQL connection to `r`, and the listener it needs on `port`. */
const withMysql = (r, port) => ({
  ...config,
  listen: { ...config.listen, mysql: `127.0.0.1:${port}` },
  connections: [
    ...config.connections,
    {
      name: "app-mysql",
      protocol: "mysql",
      connector: "demo-connector",
      target: { host: r.host, port: r.port, database: r.database, tls: "prefer" },
      credential: { user: r.user, ...(r.password ? { password: "env:DEMO_MYSQL_PASSWORD" } : {}) },
      allow: [{ identity: "demo-agent" }],
    },
  ],
});
let mysqlNote;
// Asked before starting MariaDB: a gateway without a MySQL listener would not use it.
if (!gatewayTakes(withMysql({ host: "127.0.0.1", port: 3306, database: "app", user: "demo", password: "x" }, 0))) {
  mysqlNote = "this gateway build has no MySQL listener yet";
} else {
  const mysqlStarted = await startMysqlResource();
  if (mysqlStarted.missing) {
    mysqlNote = mysqlStarted.missing;
  } else {
    mysqlResource = mysqlStarted;
    Object.assign(config, withMysql(mysqlResource, await freePort(13306)));
    // The greeting shows this until the gateway has reached the resource once (docs/configuration.md,
    // mysql.serverVersion): the MariaDB's own version, in the form MariaDB servers greet with.
    if (mysqlResource.version) config.mysql = { serverVersion: `5.5.5-${mysqlResource.version}` };
  }
}
const configFile = join(demoDir, "gateway.yaml");
writeFileSync(configFile, `# Written by pnpm demo; see docs/configuration.md.\n${JSON.stringify(config, null, 2)}\n`);

console.log("demo: starting the gateway (the embedded store takes a few seconds the first time)…");
const gateway = run(["gateway", "--config", configFile], {}, join(demoDir, "gateway.log"));
const started = await gateway.waitFor((l) => l.msg === "gateway started");
const connected = gateway.waitFor((l) => l.msg === "connector connected");
run(
  ["connector"],
  {
    GATEHOUSE_GATEWAY_URL: started.apiUrl,
    GATEHOUSE_CONNECTOR_NAME: "demo-connector",
    GATEHOUSE_CONNECTOR_TOKEN: connectorToken,
    GATEHOUSE_ALLOW: [resource, mysqlResource].filter(Boolean).map((r) => `${r.host}:${r.port}`).join(","),
    DEMO_RESOURCE_PASSWORD: resource.password,
    DEMO_MYSQL_PASSWORD: mysqlResource?.password ?? "",
  },
  join(demoDir, "connector.log"),
);
await connected;

const adminToken = readFileSync(join(root, "data", "admin-token"), "utf8").trim();
const response = await fetch(`${started.apiUrl}/api/v1/keys`, {
  method: "POST",
  headers: { Authorization: `Bearer ${adminToken}`, "Content-Type": "application/json" },
  body: JSON.stringify({ identity: "demo-agent", expires: "7d" }),
});
if (!response.ok) fail(`could not create the demo key: ${response.status} ${await response.text()}`);
const { key } = await response.json();

const pg = started.postgres;
const my = mysqlResource ? started.mysql : undefined;
console.log(`
gatehouse demo is running: a gateway (API ${started.apiUrl}), a connector, the embedded store,
and ${resource.describe} registered as connection "app"${my ? `, ${mysqlResource.describe} as "app-mysql"` : ""}.
Identity "demo-agent" has a fresh access key.
Logs: data/demo/gateway.log and data/demo/connector.log. Ctrl-C stops everything.

Run a command as demo-agent through the gateway:

psql "postgresql://demo-agent:${key}@127.0.0.1:${pg.port}/app?sslmode=require" -c "select count(*) from orders"
${my ? `mariadb -h 127.0.0.1 -P ${my.port} --ssl -u demo-agent -p'${key}' -D app-mysql -e "select count(*) from orders"\n` : `(no mariadb line: ${mysqlNote})\n`}
Then read what the gateway recorded:

pnpm gatehouse sessions show --last

or in the web console, ${started.apiUrl}/ui/ (sign in with the admin token in data/admin-token).
`);

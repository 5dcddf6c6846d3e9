// `pnpm demo`: a gateway, a connector, the embedded store and a demo Postgres
// resource, all on this machine, then the psql line to try. Ctrl-C stops all.
//
// The resource is DEMO_DATABASE_URL when set (a Postgres you already run; the
// connector logs in with that URL's user and password), else an embedded
// PGlite with an `orders` table. State lives in ./data, so
// `pnpm gatehouse sessions …` run from here finds this gateway.
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { createWriteStream, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
process.chdir(root);
const cli = join(root, "packages/cli/dist/main.js");
const demoDir = join(root, "data", "demo");
mkdirSync(demoDir, { recursive: true });

const children = [];
let resource;
const stop = async (code = 0) => {
  for (const child of children.reverse()) child.kill("SIGTERM");
  await Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null ? r() : c.once("exit", r)))));
  await resource?.close();
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
    GATEHOUSE_ALLOW: `${resource.host}:${resource.port}`,
    DEMO_RESOURCE_PASSWORD: resource.password,
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
console.log(`
gatehouse demo is running: a gateway (API ${started.apiUrl}), a connector, the embedded store,
and ${resource.describe} registered as connection "app". Identity "demo-agent" has a fresh access key.
Logs: data/demo/gateway.log and data/demo/connector.log. Ctrl-C stops everything.

Run a command as demo-agent through the gateway:

psql "postgresql://demo-agent:${key}@127.0.0.1:${pg.port}/app?sslmode=require" -c "select count(*) from orders"

Then read what the gateway recorded:

pnpm gatehouse sessions show --last
`);

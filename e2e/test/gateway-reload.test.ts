import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { startPostgresServer, type PostgresServer, type TestDatabase } from "../lib/postgres-server.js";
import { startGatewayProcess, type RunningGateway } from "../lib/processes.js";

// SIGHUP twice after moving the Postgres listener in the file: the listener stays where it was
// until a restart, so both reloads must say that listen.postgres needs one.

let server: PostgresServer;
let store: TestDatabase;
let gateway: RunningGateway;

beforeAll(async () => {
  server = await startPostgresServer();
  store = await server.createDatabase({ empty: true });
  gateway = await startGatewayProcess({ listen: { api: "127.0.0.1:0", postgres: "127.0.0.1:0" }, store: { url: server.url(store.name) } });
});

afterAll(async () => {
  await gateway?.proc.stop();
  await store?.drop();
  await server?.stop();
  if (gateway) rmSync(gateway.dir, { recursive: true, force: true });
});

it("every SIGHUP names the settings that differ from what runs, not from the previous reload", async () => {
  const file = join(gateway.dir, "gatehouse.yaml");
  const config = JSON.parse(readFileSync(file, "utf8")) as { listen: Record<string, string> };
  config.listen.postgres = "127.0.0.1:6543";
  writeFileSync(file, JSON.stringify(config));
  const warnings = () => gateway.proc.lines.filter((l) => l.msg === "config reloaded, but these settings change only when the gateway restarts");
  for (const count of [1, 2]) {
    gateway.proc.child.kill("SIGHUP");
    await gateway.proc.waitFor(() => warnings().length === count);
    expect(warnings()[count - 1]?.restartNeeded).toEqual(["listen.postgres"]);
  }
});

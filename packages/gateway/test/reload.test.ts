import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterAll, beforeAll, expect, it } from "vitest";
import { reloadConfig } from "../src/cli/gateway-command.js";
import { validateConfig } from "../src/config/load.js";
import { startGateway, type Gateway } from "../src/gateway.js";
import { createLogger } from "../src/logger.js";
import { createStoreDatabase, type StoreDatabase } from "./support/store-database.js";

// A reload's "restart needed" list compares the file with what is running. Two SIGHUPs after
// moving a listener must both say so: the listener is still on its old port after the first.

let gateway: Gateway;
let database: StoreDatabase;
let dir: string;
const logLines: Array<Record<string, unknown>> = [];
const logger = createLogger(
  "info",
  new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString("utf8").split("\n").filter(Boolean)) logLines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  }),
);

const raw = (postgres: string) => ({ dataDir: join(dir, "data"), listen: { api: "127.0.0.1:0", postgres }, store: { url: database.url() } });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "gatehouse-reload-"));
  database = await createStoreDatabase();
  gateway = await startGateway(validateConfig(raw("127.0.0.1:0")), { logger });
});

afterAll(async () => {
  await gateway?.close();
  await database?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

it("a second reload still names a start-bound setting that differs from what runs", () => {
  const file = join(dir, "gatehouse.yaml");
  writeFileSync(file, JSON.stringify(raw("127.0.0.1:6543")));
  for (const _hangup of [1, 2]) {
    logLines.length = 0;
    expect(reloadConfig(gateway, file, logger)).toBe(true);
    const warning = logLines.find((l) => l.msg === "config reloaded, but these settings change only when the gateway restarts");
    expect(warning?.restartNeeded).toEqual(["listen.postgres"]);
  }
  // Back to what runs: nothing to restart for.
  expect(gateway.reload(validateConfig(raw("127.0.0.1:0"))).restartNeeded).toEqual([]);
});

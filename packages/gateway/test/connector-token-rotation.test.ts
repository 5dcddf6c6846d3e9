import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import WebSocket from "ws";
import { afterAll, beforeAll, expect, it } from "vitest";
import { validateConfig } from "../src/config/load.js";
import { sha256Hex } from "../src/data-dir.js";
import { startGateway, type Gateway } from "../src/gateway.js";
import { createLogger } from "../src/logger.js";
import { createStoreDatabase, type StoreDatabase } from "./support/store-database.js";

// Rotating a connector's token without refusing anyone (docs/operations.md): the name is listed twice,
// once with each token's hash, and either token opens the tunnel; after the old entry is removed (a
// SIGHUP reload), only the new one does.

const OLD_TOKEN = "ghc_old-token-for-rotation";
const NEW_TOKEN = "ghc_new-token-for-rotation";

let gateway: Gateway;
let database: StoreDatabase;
let dir: string;
const quiet = createLogger("warn", new Writable({ write: (_chunk, _encoding, done) => done() }));

const config = (tokens: string[]) =>
  validateConfig({
    dataDir: join(dir, "data"),
    listen: { api: "127.0.0.1:0" },
    store: { url: database.url() },
    connectors: tokens.map((token) => ({ name: "dc1", tokenSha256: sha256Hex(token) })),
  });

/** The HTTP status of a tunnel upgrade as connector dc1 with this token: 101 when let in. */
function upgradeStatus(token: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${gateway.apiUrl.replace(/^http/, "ws")}/v1/tunnel`, {
      headers: { "Gatehouse-Connector": "dc1", Authorization: `Bearer ${token}` },
    });
    ws.once("upgrade", () => {
      ws.terminate();
      resolve(101);
    });
    ws.once("unexpected-response", (_request, response) => {
      ws.terminate();
      resolve(response.statusCode ?? 0);
    });
    ws.once("error", (error) => {
      if (ws.readyState !== WebSocket.CLOSED) reject(error);
    });
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "gatehouse-rotation-"));
  database = await createStoreDatabase();
  gateway = await startGateway(config([OLD_TOKEN, NEW_TOKEN]), { logger: quiet });
});

afterAll(async () => {
  await gateway?.close();
  await database?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

it("lets a connector in with either of its name's tokens while both are listed, and only with the new one after", async () => {
  expect(await upgradeStatus(OLD_TOKEN)).toBe(101);
  expect(await upgradeStatus(NEW_TOKEN)).toBe(101);
  expect(await upgradeStatus("ghc_neither")).toBe(401);

  expect(gateway.reload(config([NEW_TOKEN])).restartNeeded).toEqual([]);
  expect(await upgradeStatus(OLD_TOKEN)).toBe(401);
  expect(await upgradeStatus(NEW_TOKEN)).toBe(101);
});

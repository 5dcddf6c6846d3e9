import { rmSync } from "node:fs";
import { join } from "node:path";
import { validateConfig } from "../../src/config/load.js";
import { startGateway, type Gateway } from "../../src/gateway.js";
import { AccessKeys } from "../../src/identity/access-keys.js";
import { createLogger } from "../../src/logger.js";
import { createStoreDatabase, type StoreDatabase } from "./store-database.js";
import { fillDisk, mountTmpfs } from "./tmpfs.js";

/** A gateway recording strictly onto a small tmpfs, with one connection "app" and an access key for "agent"; no connector runs. */
export interface GatewayOnSmallDisk {
  readonly gateway: Gateway;
  readonly key: string;
  /** Fills the disk; the returned function gives the space back. */
  fill(): () => void;
  close(): Promise<void>;
}

/**
 * Starts the gateway whose journal the tests fill: its data directory on a 1 MiB tmpfs (the
 * caller checks canMountTmpfs), small segments, strict recording, one `protocol` listener.
 */
export async function startGatewayOnSmallDisk(protocol: "postgres" | "mysql", target: { host: string; port: number }): Promise<GatewayOnSmallDisk> {
  const disk = mountTmpfs("1m");
  let db: StoreDatabase | undefined;
  let gateway: Gateway | undefined;
  const close = async () => {
    await gateway?.close();
    await db?.drop();
    disk.unmount();
  };
  try {
    db = await createStoreDatabase(`gatehouse_${protocol}_diskfull`);
    gateway = await startGateway(
      validateConfig({
        dataDir: join(disk.path, "data"),
        listen: { api: "127.0.0.1:0", [protocol]: "127.0.0.1:0" },
        store: { url: db.url() },
        recording: { mode: "strict", journal: { segmentBytes: 16 * 1024, maxBytes: 64 * 1024 * 1024 } },
        connectors: [{ name: "dc1", tokenSha256: "a".repeat(64) }],
        connections: [{ name: "app", protocol, connector: "dc1", target, allow: [{ identity: "agent" }] }],
      }),
      { logger: createLogger("fatal") },
    );
    const keys = new AccessKeys(gateway.store, () => Date.now() * 1000);
    const key = (await keys.create("agent")).key;
    await keys.close();
    const started = gateway;
    return {
      gateway: started,
      key,
      fill() {
        const filler = join(disk.path, "filler");
        fillDisk(filler);
        return () => rmSync(filler);
      },
      close,
    };
  } catch (error) {
    await close().catch(() => undefined);
    throw error;
  }
}

/**
 * Logs in until a login fails otherwise than `gotThrough` says (each session fills the
 * journal's segment; the next segment cannot be made): that refusal, or undefined after `tries`.
 */
export async function firstRefusal<E>(login: () => Promise<E>, gotThrough: (error: E) => boolean, tries = 500): Promise<E | undefined> {
  for (let i = 0; i < tries; i++) {
    const error = await login();
    if (!gotThrough(error)) return error;
  }
  return undefined;
}

/** Logs in until one gets through again (space returned), for up to `ms`: the last attempt's error. */
export async function loginOnceSpaceReturns<E>(login: () => Promise<E>, gotThrough: (error: E) => boolean, ms = 10_000): Promise<E | undefined> {
  const deadline = Date.now() + ms;
  let after: E | undefined;
  while (Date.now() < deadline && !gotThrough((after = await login()))) await new Promise((resolve) => setTimeout(resolve, 200));
  return after;
}

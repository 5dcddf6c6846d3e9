import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Checkpoint, GatewayKeyRecord, SessionEvent, SessionRecord, Store, StreamChunk } from "@gatehouse/store";
import { chunkFromView } from "../api/views.js";
import type { ChainHead } from "../evidence/checkpoints.js";
import { loadConfigFile } from "../config/load.js";
import { storeOpenOptions } from "../config/store-connection.js";
import { readState } from "../data-dir.js";
import { GatewayError } from "../errors.js";
import { ApiClient, resolveApiTarget } from "./api-client.js";

// Where `verify` and `retention` read the record. In order of precedence:
//   --store-url URL (or GATEHOUSE_STORE_URL)   the Postgres store, directly
//   --config FILE                               that gateway's store: store.url, else its embedded store
//   --gateway URL                               through the gateway's API (verify only)
//   --data-dir DIR (default ./data)             the embedded store in DIR/store when no gateway holds
//                                               it; while one runs, its API (verify only)

export interface RecordPage {
  sessions: SessionRecord[];
  /** Their events, ordered by session, then seq. */
  events: SessionEvent[];
  /** Their streams' chunks, ordered by session, stream, then seq. */
  chunks: StreamChunk[];
}

export interface RecordSource {
  /** For messages: where the record is read from. */
  readonly where: string;
  session(id: string): Promise<{ session: SessionRecord; events: SessionEvent[]; chunks: StreamChunk[] } | null>;
  /** Every session with its events, a page at a time, in session id order. */
  pages(pageSize: number): AsyncIterable<RecordPage>;
  /**
   * Every stored checkpoint, in (gateway, seq) order, and where running gateways' chains stood
   * just before they were read (through the API only: the store alone cannot say).
   */
  checkpoints(): Promise<{ checkpoints: Checkpoint[]; heads: (ChainHead & { gateway: string })[] }>;
  /** Every gateway's seal public key registered in the store (migration 007), retired ones too. */
  sealKeys(): Promise<Pick<GatewayKeyRecord, "keyId" | "publicKeyPem" | "gateway">[]>;
  close(): Promise<void>;
}

export interface AccessFlags {
  "store-url"?: string | undefined;
  config?: string | undefined;
  gateway?: string | undefined;
  "data-dir"?: string | undefined;
  /** PEM file of the API's CA (or GATEHOUSE_CA), when the record is read through the API. */
  ca?: string | undefined;
}

export type StoreTarget = { kind: "url"; url: string; password?: string } | { kind: "embedded"; dir: string } | { kind: "api"; gateway: string | undefined; dataDir: string };

/** Decides where the record is, from the flags (see above). `allowApi`: false for commands that need the store itself. */
export function storeTarget(flags: AccessFlags, env: NodeJS.ProcessEnv, allowApi: boolean): StoreTarget {
  const url = flags["store-url"] ?? env.GATEHOUSE_STORE_URL;
  if (url) return { kind: "url", url };
  if (flags.config) {
    const options = storeOpenOptions(loadConfigFile(flags.config), env);
    return options.url ? { kind: "url", url: options.url, ...(options.password === undefined ? {} : { password: options.password }) } : { kind: "embedded", dir: options.dataDir! };
  }
  const dataDir = flags["data-dir"] ?? env.GATEHOUSE_DATA_DIR ?? "./data";
  if (flags.gateway) {
    if (!allowApi) throw new GatewayError("API_UNREACHABLE", "this command works on the store itself: pass --store-url URL or --config FILE, not --gateway");
    return { kind: "api", gateway: flags.gateway, dataDir };
  }
  const storeDir = join(resolve(dataDir), "store");
  const state = readState(dataDir);
  if (state && isAlive(state.pid) && allowApi) return { kind: "api", gateway: undefined, dataDir };
  if (!existsSync(storeDir)) {
    throw new GatewayError("DATA_DIR_UNUSABLE", `no embedded store in ${storeDir}; pass --store-url URL, --config FILE or --data-dir DIR`);
  }
  return { kind: "embedded", dir: storeDir };
}

export async function openTargetStore(target: Extract<StoreTarget, { kind: "url" | "embedded" }>): Promise<Store> {
  const { openStore } = await import("@gatehouse/store");
  return openStore(target.kind === "url" ? { url: target.url, maxConnections: 2, ...(target.password === undefined ? {} : { password: target.password }) } : { dataDir: target.dir });
}

const CHECKPOINT_PAGE = 1000;

export async function openRecordSource(flags: AccessFlags, env: NodeJS.ProcessEnv): Promise<RecordSource> {
  const target = storeTarget(flags, env, true);
  if (target.kind === "api") {
    const client = new ApiClient(resolveApiTarget({ gateway: target.gateway, dataDir: target.dataDir, ca: flags.ca, env }));
    return {
      where: `the gateway's API (${client.url})`,
      session: async (id) => {
        try {
          const found = await client.getSession(id);
          const { chunks } = await client.sessionChunks(id);
          return { ...found, chunks: chunks.map(chunkFromView) };
        } catch (error) {
          if (error instanceof GatewayError && /\b404\b/.test(error.message)) return null;
          throw error;
        }
      },
      async *pages(pageSize) {
        let after: string | undefined;
        for (;;) {
          const page = await client.evidencePage(after, pageSize);
          if (page.sessions.length === 0) return;
          yield { sessions: page.sessions, events: page.events, chunks: (page.chunks ?? []).map(chunkFromView) };
          after = page.sessions[page.sessions.length - 1]!.id;
        }
      },
      checkpoints: async () => {
        const all: Checkpoint[] = [];
        let heads: (ChainHead & { gateway: string })[] = [];
        for (let after: Checkpoint | undefined; ; ) {
          const page = await client.checkpointPage(after, CHECKPOINT_PAGE);
          // The first page's head was taken before anything was read, so the pages cover it.
          if (after === undefined && page.head) heads = [page.head];
          all.push(...page.checkpoints);
          if (page.checkpoints.length < CHECKPOINT_PAGE) return { checkpoints: all, heads };
          after = page.checkpoints[page.checkpoints.length - 1];
        }
      },
      sealKeys: async () => (await client.sealKeys()).map((k) => ({ keyId: k.keyId, publicKeyPem: k.publicKey, gateway: k.gateway })),
      close: async () => undefined,
    };
  }
  const store = await openTargetStore(target);
  return {
    where: target.kind === "url" ? "the store" : `the embedded store in ${target.dir}`,
    session: async (id) => {
      const found = await store.sessions.get(id);
      return found && { ...found, chunks: await store.streams.chunks([id]) };
    },
    async *pages(pageSize) {
      let after: string | undefined;
      for (;;) {
        const sessions = await store.sessions.scan(after === undefined ? { limit: pageSize } : { afterId: after, limit: pageSize });
        if (sessions.length === 0) return;
        const ids = sessions.map((s) => s.id);
        yield { sessions, events: await store.events.forSessions(ids), chunks: await store.streams.chunks(ids) };
        after = sessions[sessions.length - 1]!.id;
      }
    },
    checkpoints: async () => {
      const all: Checkpoint[] = [];
      for (let after: Checkpoint | undefined; ; ) {
        const page = await store.checkpoints.scan(after === undefined ? { limit: CHECKPOINT_PAGE } : { after, limit: CHECKPOINT_PAGE });
        all.push(...page);
        if (page.length < CHECKPOINT_PAGE) return { checkpoints: all, heads: [] };
        after = page[page.length - 1];
      }
    },
    sealKeys: () => store.gatewayKeys.list(),
    close: () => store.close(),
  };
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

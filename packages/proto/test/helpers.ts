// Real WebSocket pairs on 127.0.0.1 port 0, and multiplexers over them.
import { createHash, randomBytes } from "node:crypto";
import { once } from "node:events";
import type { AddressInfo } from "node:net";
import type { Readable, Writable } from "node:stream";

import { WebSocket, WebSocketServer } from "ws";

import { type MuxOptions, Multiplexer, type OpenReply, type OpenStream, wsLink } from "../src/index.js";

export interface WsPair {
  /** The gateway's end (accepted by the server). */
  server: WebSocket;
  /** The connector's end (dialed). */
  client: WebSocket;
  wss: WebSocketServer;
  [Symbol.asyncDispose](): Promise<void>;
}

export async function wsPair(clientOptions: ConstructorParameters<typeof WebSocket>[2] = {}): Promise<WsPair> {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  await once(wss, "listening");
  const { port } = wss.address() as AddressInfo;
  const accepted = once(wss, "connection") as Promise<[WebSocket]>;
  const client = new WebSocket(`ws://127.0.0.1:${port}/v1/tunnel`, clientOptions);
  const [[server]] = await Promise.all([accepted, once(client, "open")]);
  return {
    server,
    client,
    wss,
    async [Symbol.asyncDispose]() {
      for (const ws of [client, server]) ws.terminate();
      for (const ws of wss.clients) ws.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

export interface MuxPair extends WsPair {
  gateway: Multiplexer;
  connector: Multiplexer;
}

export type Accept = (open: OpenStream, reply: OpenReply) => void;

/** A gateway mux on the server end and a connector mux on the client end. */
export async function muxPair(
  options: { gateway?: Partial<MuxOptions>; connector?: Partial<MuxOptions>; onOpen?: Accept } = {},
): Promise<MuxPair> {
  const pair = await wsPair();
  const gateway = new Multiplexer(wsLink(pair.server), { ...options.gateway, role: "gateway" });
  const connector = new Multiplexer(wsLink(pair.client), {
    ...options.connector,
    role: "connector",
    ...(options.onOpen ? { onOpen: options.onOpen } : {}),
  });
  return {
    ...pair,
    gateway,
    connector,
    async [Symbol.asyncDispose]() {
      gateway.close("test done");
      connector.close("test done");
      await pair[Symbol.asyncDispose]();
    },
  };
}

// ---------------------------------------------------------------- byte streams with checksums

const BLOCK = randomBytes(4 * 1024 * 1024);

/** Chunk `i` of a long pseudo-random byte sequence: a view into one random block at an offset that moves with i. */
export function chunkOf(i: number, size: number): Buffer {
  const offset = (i * 104_729) % (BLOCK.length - size);
  return BLOCK.subarray(offset, offset + size);
}

/** Writes `total` bytes respecting backpressure (awaits 'drain'), optionally ends; returns their SHA-256. */
export async function produce(
  stream: Writable,
  total: number,
  { chunkSize = 64 * 1024, end = true }: { chunkSize?: number; end?: boolean } = {},
): Promise<string> {
  const hash = createHash("sha256");
  for (let i = 0, sent = 0; sent < total; i++) {
    const chunk = chunkOf(i, Math.min(chunkSize, total - sent));
    hash.update(chunk);
    sent += chunk.length;
    if (!stream.write(chunk)) await once(stream, "drain");
  }
  if (end) stream.end();
  return hash.digest("hex");
}

/**
 * Reads a stream to its end; returns the byte count and SHA-256. Uses 'data'/'end' rather than
 * `for await`, whose iterator destroys the stream when it finishes, aborting the write side.
 */
export function consume(stream: Readable): Promise<{ bytes: number; sha256: string }> {
  return new Promise((resolve, reject) => {
    const hash = createHash("sha256");
    let bytes = 0;
    stream.on("data", (chunk: Buffer) => {
      hash.update(chunk);
      bytes += chunk.length;
    });
    stream.once("end", () => resolve({ bytes, sha256: hash.digest("hex") }));
    stream.once("error", reject);
  });
}

export function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Resolves with the error a stream emits (fails the test if it ends cleanly instead). */
export function errorOf(stream: Readable | Writable): Promise<Error> {
  return new Promise((resolve, reject) => {
    stream.once("error", resolve);
    stream.once("close", () => setImmediate(() => reject(new Error("stream closed without an error"))));
  });
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls until `check` is true (for states reached through the event loop). */
export async function until(check: () => boolean, timeoutMs = 5_000, what = "condition"): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

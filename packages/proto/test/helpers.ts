// Real WebSocket pairs on 127.0.0.1 port 0, and multiplexers over them.
import { once } from "node:events";
import type { AddressInfo } from "node:net";

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

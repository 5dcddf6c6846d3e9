import { once } from "node:events";
import type { AddressInfo } from "node:net";

import { expect, test } from "vitest";
import { WebSocket, WebSocketServer } from "ws";

import { wsLink } from "../src/index.js";
import { until } from "./helpers.js";

async function server() {
  const wss = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  await once(wss, "listening");
  return {
    wss,
    url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`,
    async [Symbol.asyncDispose]() {
      for (const ws of wss.clients) ws.terminate();
      await new Promise((resolve) => wss.close(resolve));
    },
  };
}

test("a link made while connecting sees the first message and sends once open", async () => {
  await using srv = await server();
  const serverGot: Buffer[] = [];
  srv.wss.on("connection", (ws) => {
    ws.send(Buffer.from("sent in the connection handler")); // travels right behind the handshake
    ws.on("message", (data: Buffer) => serverGot.push(data));
  });
  const ws = new WebSocket(srv.url);
  const link = wsLink(ws);
  const clientGot: Uint8Array[] = [];
  link.onMessage((data) => clientGot.push(data));
  const sent = new Promise<Error | null | undefined>((resolve) => link.send(Buffer.from("early"), resolve));
  expect(ws.readyState).toBe(WebSocket.CONNECTING);
  expect(await sent).toBeFalsy();
  await until(() => clientGot.length === 1 && serverGot.length === 1);
  expect(Buffer.from(clientGot[0]!).toString()).toBe("sent in the connection handler");
  expect(serverGot[0]!.toString()).toBe("early");
  ws.terminate();
});

test("a send on a socket that never opens fails through its callback", async () => {
  await using srv = await server();
  srv.wss.on("connection", () => {});
  const ws = new WebSocket(srv.url.replace(/:\d+$/, ":1")); // nothing listens on port 1
  const link = wsLink(ws);
  const closed = new Promise<number>((resolve) => link.onClose((code) => resolve(code)));
  const err = await new Promise<Error | null | undefined>((resolve) => link.send(Uint8Array.of(1), resolve));
  expect(err).toBeInstanceOf(Error);
  expect(await closed).toBe(1006);
});

test("close() sends the code and a reason cut to 123 bytes on a character boundary", async () => {
  await using srv = await server();
  const accepted = once(srv.wss, "connection") as Promise<[WebSocket]>;
  const ws = new WebSocket(srv.url);
  await once(ws, "open");
  const [peer] = await accepted;
  const peerClosed = once(peer, "close") as Promise<[number, Buffer]>;
  wsLink(ws).close(4000, "é".repeat(100)); // 200 bytes of UTF-8
  const [code, reason] = await peerClosed;
  expect(code).toBe(4000);
  expect(reason.length).toBeLessThanOrEqual(123);
  expect(reason.toString()).toBe("é".repeat(61));
});

// The link going away — cut, silent, or closed for a protocol violation — over real WebSockets.
import { once } from "node:events";

import type { WebSocket } from "ws";
import { describe, expect, test } from "vitest";

import {
  ConnectorFrame,
  encodeFrames,
  FrameDecoder,
  GatewayFrame,
  type IConnectorFrame,
  type IGatewayFrame,
  Multiplexer,
  type MuxOptions,
  type OpenReply,
  TunnelError,
  type TunnelStream,
  wsLink,
} from "../src/index.js";
import { errorOf, muxPair, sleep, until, wsPair } from "./helpers.js";

const ignore = (): void => {};

interface Closed {
  reason: string;
  error: TunnelError | undefined;
  at: number;
}

/** Resolves with the "close" event of a mux: its reason and error. */
function closeOf(mux: Multiplexer): Promise<Closed> {
  return new Promise((resolve) => mux.once("close", (reason, error) => resolve({ reason, error, at: Date.now() })));
}

function wsCloseOf(ws: WebSocket): Promise<number> {
  return once(ws, "close").then(([code]) => code as number);
}

describe("cut", () => {
  test("terminating the WebSocket errors every open stream on both sides with LINK_CLOSED", async () => {
    const accepted: TunnelStream[] = [];
    const unanswered: OpenReply[] = [];
    await using pair = await muxPair({
      onOpen: (open, reply) => {
        if (open.connection === "never") unanswered.push(reply);
        else accepted.push(reply.accept());
      },
    });
    const opened = await Promise.all(Array.from({ length: 5 }, () => pair.gateway.open({ protocol: "tcp" })));
    const streams = opened.map(({ stream }) => stream);
    await until(() => accepted.length === 5);
    const pending = pair.gateway.open({ connection: "never", protocol: "tcp" }).catch((e: unknown) => e);
    await until(() => unanswered.length === 1);
    // Half-closed streams are still open streams.
    streams[0]!.end();
    accepted[1]!.end();

    const errors = [...streams, ...accepted].map((stream) => errorOf(stream));
    const closes = [closeOf(pair.gateway), closeOf(pair.connector)];
    pair.client.terminate();

    for (const err of await Promise.all(errors)) {
      expect(err).toBeInstanceOf(TunnelError);
      expect((err as TunnelError).code).toBe("LINK_CLOSED");
    }
    expect(((await pending) as TunnelError).code).toBe("LINK_CLOSED");
    const [gatewayClose, connectorClose] = (await Promise.all(closes)) as [Closed, Closed];
    expect(gatewayClose.reason).toMatch(/link closed \(1006/);
    expect(connectorClose.reason).toMatch(/link closed \(1006/);
    expect(pair.gateway.streamCount).toBe(0);
    expect(pair.connector.streamCount).toBe(0);
    // A late accept gets a stream that is already gone; a new open fails at once.
    const late = unanswered[0]!.accept();
    expect(((await errorOf(late)) as TunnelError).code).toBe("LINK_CLOSED");
    expect(((await pair.gateway.open({}).catch((e: unknown) => e)) as TunnelError).code).toBe("LINK_CLOSED");
  });

  test("close() ends the link for both sides", async () => {
    const accepted: TunnelStream[] = [];
    await using pair = await muxPair({ onOpen: (_open, reply) => void accepted.push(reply.accept()) });
    const { stream } = await pair.gateway.open({ protocol: "tcp" });
    await until(() => accepted.length === 1);
    const errors = [errorOf(stream), errorOf(accepted[0]!)];
    const connectorClosed = closeOf(pair.connector);
    pair.gateway.close("gateway shutting down");
    for (const err of await Promise.all(errors)) expect((err as TunnelError).code).toBe("LINK_CLOSED");
    expect((await connectorClosed).reason).toBe("link closed (1000 gateway shutting down)");
    expect(pair.gateway.closed).toBe(true);
  });
});

describe("heartbeat", () => {
  const fast: Partial<MuxOptions> = { pingIntervalMs: 50, deadAfterMs: 300 };

  test("a peer that never answers is found dead within deadAfterMs", async () => {
    await using raw = await wsPair();
    const started = Date.now();
    const gateway = new Multiplexer(wsLink(raw.server), { ...fast, role: "gateway" });
    const pending = gateway.open({ protocol: "tcp" }).catch((e: unknown) => e);
    const pings: string[] = [];
    const decoder = new FrameDecoder(GatewayFrame.decode, 1 << 20);
    raw.client.on("message", (data: Buffer) => {
      for (const frame of decoder.frames(data)) pings.push(frame.frame ?? "?");
    });
    const rawClosed = wsCloseOf(raw.client);
    const { error, reason, at } = await closeOf(gateway);
    expect(error?.code).toBe("LINK_CLOSED");
    expect(reason).toMatch(/no frame from the peer for \d+ ms/);
    expect(at - started).toBeGreaterThanOrEqual(290);
    expect(at - started).toBeLessThan(300 + 700); // slack for a busy machine
    expect(((await pending) as TunnelError).code).toBe("LINK_CLOSED");
    expect(pings.filter((kind) => kind === "ping").length).toBeGreaterThanOrEqual(3);
    expect(await rawClosed).toBe(4000);
  });

  test("a peer whose socket stops reading is found dead; its streams error LINK_CLOSED", async () => {
    const accepted: TunnelStream[] = [];
    await using pair = await muxPair({
      gateway: fast,
      connector: fast,
      onOpen: (_open, reply) => void accepted.push(reply.accept()),
    });
    const { stream } = await pair.gateway.open({ protocol: "tcp" });
    await until(() => accepted.length === 1);
    const errors = [errorOf(stream), errorOf(accepted[0]!)];
    const connectorClosed = closeOf(pair.connector);
    const started = Date.now();
    pair.client.pause(); // the connector hears nothing more
    const { error, at } = await connectorClosed;
    expect(error?.code).toBe("LINK_CLOSED");
    expect(at - started).toBeLessThan(300 + 700);
    for (const err of await Promise.all(errors)) expect((err as TunnelError).code).toBe("LINK_CLOSED");
  });

  test("an idle but healthy link stays up well past deadAfterMs", async () => {
    await using pair = await muxPair({ gateway: fast, connector: fast });
    let closed = false;
    pair.gateway.on("close", () => (closed = true));
    pair.connector.on("close", () => (closed = true));
    await sleep(1_000);
    expect(closed).toBe(false);
  });
});

/** A gateway Multiplexer facing a hand-driven connector (raw ws) that can break the rules. */
async function gatewayFacingRawPeer(options: Partial<MuxOptions> = {}) {
  const raw = await wsPair();
  const gateway = new Multiplexer(wsLink(raw.server), { ...options, role: "gateway" });
  const decoder = new FrameDecoder(GatewayFrame.decode, 1 << 20);
  const received: ReturnType<typeof GatewayFrame.decode>[] = [];
  raw.client.on("message", (data: Buffer) => received.push(...decoder.frames(data)));
  const send = (...frames: IConnectorFrame[]) =>
    raw.client.send(encodeFrames(frames.map((frame) => ConnectorFrame.encode(frame).finish())));
  /** Opens a stream, answering OpenStream by hand. */
  const openStream = async (initialWindow = 65_536) => {
    const opening = gateway.open({ protocol: "tcp" });
    await until(() => received.some((frame) => frame.frame === "open"));
    const open = received.find((frame) => frame.frame === "open")!.open!;
    send({ opened: { streamId: open.streamId, initialWindow } });
    const { stream } = await opening;
    return stream;
  };
  return { raw, gateway, send, openStream, received };
}

describe("protocol violations close the link", () => {
  test("data beyond the credit granted: FLOW_CONTROL_VIOLATION, close 1002, streams LINK_CLOSED", async () => {
    const peer = await gatewayFacingRawPeer({ initialWindow: 1_000 });
    await using _raw = peer.raw;
    const stream = await peer.openStream();
    const streamError = errorOf(stream);
    const closed = closeOf(peer.gateway);
    const wsClosed = wsCloseOf(peer.raw.client);
    peer.send({ data: { streamId: stream.id, payload: new Uint8Array(600) } });
    await until(() => stream.flow.receivedBytes === 600);
    peer.send({ data: { streamId: stream.id, payload: new Uint8Array(401) } }); // 1001 > 1000
    const { error } = await closed;
    expect(error?.code).toBe("FLOW_CONTROL_VIOLATION");
    expect(error?.streamId).toBe(stream.id);
    expect(await wsClosed).toBe(1002);
    const err = (await streamError) as TunnelError;
    expect(err.code).toBe("LINK_CLOSED");
    expect((err.cause as TunnelError).code).toBe("FLOW_CONTROL_VIOLATION");
  });

  test("a declared frame length over maxFrameBytes: FRAME_TOO_LARGE, close 1009", async () => {
    const peer = await gatewayFacingRawPeer({ maxFrameBytes: 4_096, maxDataPayload: 1_024 });
    await using _raw = peer.raw;
    const closed = closeOf(peer.gateway);
    const wsClosed = wsCloseOf(peer.raw.client);
    // varint(1 MiB) = 0x80 0x80 0x40, then a little of the promised frame.
    peer.raw.client.send(Uint8Array.of(0x80, 0x80, 0x40, 0x12, 0x00));
    const { error } = await closed;
    expect(error?.code).toBe("FRAME_TOO_LARGE");
    expect(await wsClosed).toBe(1009);
  });

  test("undecodable bytes: BAD_FRAME, close 1002", async () => {
    const peer = await gatewayFacingRawPeer();
    await using _raw = peer.raw;
    const closed = closeOf(peer.gateway);
    const wsClosed = wsCloseOf(peer.raw.client);
    peer.raw.client.send(Uint8Array.of(4, 0x1a, 0x10, 0x08, 0x01)); // data field claims 16 bytes, has 2
    expect((await closed).error?.code).toBe("BAD_FRAME");
    expect(await wsClosed).toBe(1002);
  });

  test("data for a stream that was never opened: BAD_FRAME", async () => {
    const peer = await gatewayFacingRawPeer();
    await using _raw = peer.raw;
    const closed = closeOf(peer.gateway);
    peer.send({ data: { streamId: 41, payload: Uint8Array.of(1) } });
    const { error } = await closed;
    expect(error?.code).toBe("BAD_FRAME");
    expect(error?.message).toMatch(/unknown stream 41/);
  });

  test("a text message is not the tunnel protocol: the link closes", async () => {
    const peer = await gatewayFacingRawPeer();
    await using _raw = peer.raw;
    const closed = closeOf(peer.gateway);
    peer.raw.client.send("hello");
    expect((await closed).reason).toMatch(/1003/);
  });

  test("connector side: a gateway sending past the connector's window gets the link closed", async () => {
    await using raw = await wsPair();
    const accepted: TunnelStream[] = [];
    const connector = new Multiplexer(wsLink(raw.client), {
      role: "connector",
      initialWindow: 2_048,
      onOpen: (_open, reply) => void accepted.push(reply.accept().on("error", ignore)),
    });
    const closed = closeOf(connector);
    const send = (frame: IGatewayFrame) => raw.server.send(encodeFrames([GatewayFrame.encode(frame).finish()]));
    send({ open: { streamId: 1, protocol: "tcp", initialWindow: 65_536 } });
    await until(() => accepted.length === 1);
    send({ data: { streamId: 1, payload: new Uint8Array(2_049) } });
    expect((await closed).error?.code).toBe("FLOW_CONTROL_VIOLATION");
  });
});

test("the link survives a burst of pings and keeps answering them", async () => {
  const peer = await gatewayFacingRawPeer();
  await using _raw = peer.raw;
  for (let nonce = 1; nonce <= 50; nonce++) peer.send({ ping: { nonce } });
  await until(() => peer.received.filter((frame) => frame.frame === "pong").length === 50);
  // uint64 decodes as Long: compare as decimal strings.
  expect(peer.received.filter((frame) => frame.frame === "pong").map((frame) => String(frame.pong!.nonce))).toEqual(
    Array.from({ length: 50 }, (_, i) => String(i + 1)),
  );
  peer.gateway.close("done");
});

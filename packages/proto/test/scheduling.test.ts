// How the mux uses the link: round-robin between streams, coalescing, and link backpressure.
// In memory, so the messages it sends can be inspected and held back.
import { once } from "node:events";

import { expect, test } from "vitest";

import {
  FrameDecoder,
  GatewayFrame,
  MUX_DEFAULTS,
  Multiplexer,
  type MuxOptions,
  type TunnelStream,
} from "../src/index.js";
import { consume, produce, sleep, until } from "./helpers.js";
import { memoryLinks } from "./memory-link.js";

const ignore = (): void => {};

async function setup(gatewayOptions: Partial<MuxOptions> = {}, connectorOptions: Partial<MuxOptions> = {}) {
  const [gatewayLink, connectorLink] = memoryLinks();
  const accepted: TunnelStream[] = [];
  const gateway = new Multiplexer(gatewayLink, { ...gatewayOptions, role: "gateway" });
  const connector = new Multiplexer(connectorLink, {
    ...connectorOptions,
    role: "connector",
    onOpen: (_open, reply) => void accepted.push(reply.accept().on("error", ignore)),
  });
  const open = async () => {
    const { stream } = await gateway.open({ protocol: "tcp" });
    stream.on("error", ignore);
    await until(() => accepted.some((remote) => remote.id === stream.id));
    return { stream, remote: accepted.find((remote) => remote.id === stream.id)! };
  };
  /** The frames the gateway sent, message by message. */
  const messages = () => {
    const decoder = new FrameDecoder(GatewayFrame.decode, 1 << 20);
    return gatewayLink.sent.map((message) => [...decoder.frames(message)]);
  };
  return {
    gateway,
    connector,
    gatewayLink,
    open,
    messages,
    [Symbol.dispose]() {
      gateway.close("test done");
      connector.close("test done");
    },
  };
}

test("a stream with a huge write cannot starve a stream with a small one", async () => {
  // A window big enough for all of it, so credit does not hand out turns: the scheduler must.
  using mux = await setup({}, { initialWindow: 16 * 1024 * 1024 });
  const busy = await mux.open();
  const quiet = await mux.open();
  const busyRead = consume(busy.remote);
  const quietRead = consume(quiet.remote);
  busy.stream.end(Buffer.alloc(8 * 1024 * 1024, 1)); // one write, 128 frames' worth
  quiet.stream.end("small, and queued behind it");
  await Promise.all([busyRead, quietRead]);

  const dataFrames = mux
    .messages()
    .flat()
    .filter((frame) => frame.frame === "data")
    .map((frame) => frame.data!.streamId ?? 0);
  const quietAt = dataFrames.indexOf(quiet.stream.id);
  const busyBefore = dataFrames.slice(0, quietAt).filter((id) => id === busy.stream.id).length;
  const busyTotal = dataFrames.filter((id) => id === busy.stream.id).length;
  // The quiet stream got the next turn, not the 129th.
  expect(busyTotal).toBe(128);
  expect(busyBefore).toBeLessThanOrEqual(1);
});

test("streams sending at once share the link turn by turn", async () => {
  using mux = await setup();
  const streams = await Promise.all([mux.open(), mux.open(), mux.open()]);
  const reads = streams.map(({ remote }) => consume(remote));
  for (const { stream } of streams) stream.end(Buffer.alloc(2 * 1024 * 1024, 2));
  await Promise.all(reads);
  // While all three have data, no stream sends two frames in a row.
  const order = mux
    .messages()
    .flat()
    .filter((frame) => frame.frame === "data")
    .map((frame) => frame.data!.streamId ?? 0);
  const sent = new Map<number, number>();
  for (const [i, id] of order.entries()) {
    sent.set(id, (sent.get(id) ?? 0) + 1);
    const counts = streams.map(({ stream }) => sent.get(stream.id) ?? 0);
    // Round-robin keeps every stream within one frame of the others until one finishes.
    if (counts.every((count) => count < 32)) expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
    if (i > 0 && counts.every((count) => count < 32)) expect(order[i - 1]).not.toBe(id);
  }
});

test("small frames of many streams written in one tick leave in one message", async () => {
  using mux = await setup();
  const streams = await Promise.all(Array.from({ length: 10 }, () => mux.open()));
  const before = mux.gatewayLink.sent.length;
  for (const { stream } of streams) stream.write(`hello from ${stream.id}`);
  await until(() => streams.every(({ remote }) => remote.flow.receivedBytes > 0));
  const after = mux.messages().slice(before);
  expect(after).toHaveLength(1);
  expect(after[0]!.map((frame) => frame.frame)).toEqual(Array(10).fill("data"));
});

test("while the link holds linkHighWaterMark unsent bytes, nothing more is pulled from the streams", async () => {
  const linkHighWaterMark = 256 * 1024;
  using mux = await setup({ linkHighWaterMark });
  const streams = await Promise.all([mux.open(), mux.open(), mux.open(), mux.open()]);
  const reads = streams.map(({ remote }) => consume(remote));
  mux.gatewayLink.hold = true; // the "OS" takes nothing
  const writes = streams.map(({ stream }) => produce(stream, 4 * 1024 * 1024));
  await sleep(100);
  // At most one message past the mark went out; the writers are waiting.
  expect(mux.gatewayLink.bufferedAmount).toBeGreaterThanOrEqual(linkHighWaterMark);
  const oneMessage = MUX_DEFAULTS.maxMessageBytes + MUX_DEFAULTS.maxDataPayload + 1024;
  expect(mux.gatewayLink.bufferedAmount).toBeLessThan(linkHighWaterMark + oneMessage);
  const sentWhileHeld = streams.reduce((sum, { stream }) => sum + stream.flow.sentBytes, 0);
  await sleep(100);
  expect(streams.reduce((sum, { stream }) => sum + stream.flow.sentBytes, 0)).toBe(sentWhileHeld);
  expect(streams.every(({ stream }) => stream.writableNeedDrain)).toBe(true);

  mux.gatewayLink.release();
  await Promise.all(writes);
  for (const read of await Promise.all(reads)) expect(read.bytes).toBe(4 * 1024 * 1024);
});

test("the mux works over any FrameLink: half-close and close in memory", async () => {
  using mux = await setup();
  const { stream, remote } = await mux.open();
  remote.end("answer");
  expect((await consume(stream)).bytes).toBe(6);
  const closed = once(mux.connector, "close");
  mux.gateway.close("bye");
  expect((await closed)[0]).toBe("link closed (1000 bye)");
});

test("small payloads that shared a message are copied out, so a slow reader does not pin whole messages", async () => {
  using mux = await setup();
  const streams = await Promise.all(Array.from({ length: 10 }, () => mux.open()));
  const before = mux.gatewayLink.sent.length;
  const chunks = new Map<number, Buffer>();
  for (const { remote } of streams) remote.once("data", (chunk: Buffer) => chunks.set(remote.id, chunk));
  for (const { stream } of streams) stream.write(Buffer.alloc(6_000, stream.id));
  await until(() => chunks.size === 10);
  const message = mux.gatewayLink.sent.slice(before);
  expect(message).toHaveLength(1); // all ten in one ~60 KB message
  for (const chunk of chunks.values()) {
    expect(chunk.length).toBe(6_000);
    // Not a view into the received message (the memory link delivers exactly what it recorded in `sent`)...
    expect(chunk.buffer).not.toBe(message[0]!.buffer);
    // ...but its own copy: a small one comes from Buffer's shared pool, whose size is Node's to choose
    // (8 KiB up to Node 22, 64 KiB from Node 24), so the bound allows the pool's size.
    expect(chunk.buffer.byteLength).toBeLessThanOrEqual(Math.max(2 * 6_000 + 4_096, Buffer.poolSize));
  }
});

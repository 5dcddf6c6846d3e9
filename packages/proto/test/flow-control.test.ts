// Per-stream credit over a real WebSocket pair: a stalled reader holds back only its own writer,
// and only up to its window.
import { createHash } from "node:crypto";
import { once } from "node:events";

import { expect, test } from "vitest";

import { MUX_DEFAULTS, type TunnelStream } from "../src/index.js";
import { chunkOf, consume, muxPair, produce, sleep, until } from "./helpers.js";

const ignore = (): void => {};
const WINDOW = MUX_DEFAULTS.initialWindow;
const FRAME = MUX_DEFAULTS.maxDataPayload;
const MiB = 1024 * 1024;

async function openPair(pair: Awaited<ReturnType<typeof muxPair>>, accepted: TunnelStream[]) {
  const { stream } = await pair.gateway.open({ protocol: "tcp" });
  stream.on("error", ignore);
  await until(() => accepted.some((remote) => remote.id === stream.id));
  return { stream, remote: accepted.find((remote) => remote.id === stream.id)! };
}

/** Writes into `stream` until a write has waited `stallMs` for 'drain'. */
async function writeUntilStalled(stream: TunnelStream, stallMs = 300) {
  let written = 0;
  let sawBackpressure = false;
  for (let i = 0; ; i++) {
    const chunk = chunkOf(i, FRAME);
    written += chunk.length;
    if (stream.write(chunk)) continue;
    sawBackpressure = true;
    const drained = once(stream, "drain");
    if (!(await Promise.race([drained.then(() => true), sleep(stallMs).then(() => false)]))) {
      return { written, sawBackpressure, nextChunk: i + 1, drained };
    }
  }
}

test("a stalled reader does not slow another stream on the same link", async () => {
  const accepted: TunnelStream[] = [];
  await using pair = await muxPair({ onOpen: (_open, reply) => void accepted.push(reply.accept().on("error", ignore)) });

  const timed = async (size: number) => {
    const { stream, remote } = await openPair(pair, accepted);
    const started = performance.now();
    const [sent, got] = await Promise.all([produce(stream, size), consume(remote)]);
    expect(got).toEqual({ bytes: size, sha256: sent });
    remote.end();
    return size / ((performance.now() - started) / 1000);
  };
  const stalled = await openPair(pair, accepted);
  // Best of two each, alternating, so a busy moment on a shared machine does not decide it.
  const alone = [await timed(16 * MiB)];
  const { sawBackpressure } = await writeUntilStalled(stalled.stream);
  expect(sawBackpressure).toBe(true);
  const beside = [await timed(16 * MiB)];
  alone.push(await timed(16 * MiB));
  beside.push(await timed(16 * MiB));

  // Still stalled, and still holding exactly one window: the other streams did not go through it.
  expect(stalled.stream.flow.sentBytes).toBe(WINDOW);
  expect(stalled.remote.flow.unreadBytes).toBe(WINDOW);
  // Generous, but a head-of-line block would be orders of magnitude off.
  expect(Math.max(...beside)).toBeGreaterThan(Math.max(...alone) * 0.25);
});

test("1 GiB pushed into a stalled stream holds at most a window plus a frame, then arrives intact", async () => {
  const accepted: TunnelStream[] = [];
  await using pair = await muxPair({ onOpen: (_open, reply) => void accepted.push(reply.accept().on("error", ignore)) });
  const { stream, remote } = await openPair(pair, accepted);
  const total = 1024 * MiB;

  // Phase 1: nobody reads at the connector.
  const stall = await writeUntilStalled(stream);
  expect(stall.sawBackpressure).toBe(true);
  expect(stall.written).toBeLessThanOrEqual(WINDOW + 2 * FRAME);
  const sender = stream.flow;
  const receiver = remote.flow;
  expect(sender.sentBytes).toBe(WINDOW); // exactly the credit granted, not a byte more
  expect(sender.sendCredit).toBe(0);
  expect(sender.queuedBytes).toBeLessThanOrEqual(FRAME);
  expect(stream.writableLength).toBeLessThanOrEqual(FRAME);
  expect(receiver.receivedBytes).toBe(WINDOW);
  expect(receiver.unreadBytes).toBe(WINDOW);
  expect(receiver.receiveAllowance).toBe(0);
  // Everything the tunnel holds for this stream, at both ends.
  expect(sender.queuedBytes + receiver.unreadBytes).toBeLessThanOrEqual(WINDOW + FRAME);

  // Phase 2: the reader resumes; the producer goes on to 1 GiB.
  const sentHash = createHash("sha256");
  for (let i = 0; i < stall.nextChunk; i++) sentHash.update(chunkOf(i, FRAME));
  let maxUnread = 0;
  remote.on("data", () => (maxUnread = Math.max(maxUnread, remote.readableLength)));
  const received = consume(remote);
  await stall.drained;
  let written = stall.written;
  for (let i = stall.nextChunk; written < total; i++) {
    const chunk = chunkOf(i, Math.min(FRAME, total - written));
    sentHash.update(chunk);
    written += chunk.length;
    if (!stream.write(chunk)) await once(stream, "drain");
  }
  stream.end();
  const got = await received;
  expect(got.bytes).toBe(total);
  expect(got.sha256).toBe(sentHash.digest("hex"));
  expect(maxUnread).toBeLessThanOrEqual(WINDOW);
}, 120_000);

test("credit follows the consumer: the writer is never more than a window ahead of what was read", async () => {
  const accepted: TunnelStream[] = [];
  await using pair = await muxPair({ onOpen: (_open, reply) => void accepted.push(reply.accept().on("error", ignore)) });
  const { stream, remote } = await openPair(pair, accepted);
  const writing = produce(stream, 4 * MiB, { chunkSize: 10_000 });
  let read = 0;
  while (read < 4 * MiB) {
    await sleep(2);
    const chunk = remote.read(Math.min(50_000, 4 * MiB - read)) as Buffer | null;
    if (chunk) read += chunk.length;
    expect(stream.flow.sentBytes - read).toBeLessThanOrEqual(WINDOW);
    expect(remote.readableLength).toBeLessThanOrEqual(WINDOW);
  }
  await writing;
}, 60_000);

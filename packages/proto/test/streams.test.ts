// Streams over a real WebSocket pair: data both ways, half-close, reset, refused and timed-out opens, drain.
import { once } from "node:events";

import { describe, expect, test } from "vitest";

import { TunnelError, type TunnelStream } from "../src/index.js";
import { consume, errorOf, muxPair, produce, sleep, until } from "./helpers.js";

const ignore = (): void => {};

/**
 * Connector behaviour for most tests: accept, and hand the stream to the test. Streams left open
 * when a test ends error with LINK_CLOSED as the link goes; tests that care listen for errors themselves.
 */
function acceptor() {
  const accepted: TunnelStream[] = [];
  return {
    accepted,
    onOpen: (_open: unknown, reply: { accept(): TunnelStream }) => void accepted.push(reply.accept().on("error", ignore)),
    async next(index: number) {
      await until(() => accepted.length > index, 5_000, `stream ${index} to be accepted`);
      return accepted[index]!;
    },
  };
}

describe("data", () => {
  test("bytes round-trip on one stream, both directions at once, intact", async () => {
    const connector = acceptor();
    await using pair = await muxPair({ onOpen: connector.onOpen });
    const { stream, opened } = await pair.gateway.open({ connection: "app", protocol: "tcp" });
    stream.on("error", ignore);
    expect(opened.streamId).toBe(stream.id);
    const remote = await connector.next(0);
    expect(remote.id).toBe(stream.id);
    expect(remote.open.connection).toBe("app");

    const size = 8 * 1024 * 1024 + 17; // not a multiple of anything
    const [down, up, gotDown, gotUp] = await Promise.all([
      produce(stream, size),
      produce(remote, size / 2 + 3, { chunkSize: 1000 }),
      consume(remote),
      consume(stream),
    ]);
    expect(gotDown).toEqual({ bytes: size, sha256: down });
    expect(gotUp.sha256).toBe(up);
    await until(() => pair.gateway.streamCount === 0 && pair.connector.streamCount === 0);
  });

  test("100 concurrent streams each deliver their own bytes", async () => {
    const connector = acceptor();
    await using pair = await muxPair({ onOpen: connector.onOpen });
    const opened = await Promise.all(Array.from({ length: 100 }, () => pair.gateway.open({ protocol: "tcp" })));
    expect(new Set(opened.map(({ stream }) => stream.id)).size).toBe(100);
    await until(() => connector.accepted.length === 100);
    const byId = new Map(connector.accepted.map((stream) => [stream.id, stream]));
    const results = await Promise.all(
      opened.map(async ({ stream }, i) => {
        const remote = byId.get(stream.id)!;
        const size = 100_000 + i * 1_009;
        const [sent, got] = await Promise.all([produce(stream, size, { chunkSize: 4096 + i }), consume(remote)]);
        remote.end();
        return { sent, got, size };
      }),
    );
    for (const { sent, got, size } of results) expect(got).toEqual({ bytes: size, sha256: sent });
    await until(() => pair.gateway.streamCount === 0 && pair.connector.streamCount === 0);
  });

  test("the StreamOpened params and handshake reach open()", async () => {
    await using pair = await muxPair({
      onOpen: (open, reply) => {
        expect(open.target?.host).toBe("db.internal");
        expect(open.credential?.passwordRef).toBe("env:APP_RO_PASSWORD");
        reply.accept({ params: { server_version: "16.4" }, handshake: Uint8Array.of(1, 2, 3) }).on("error", ignore);
      },
    });
    const { stream, opened } = await pair.gateway.open({
      protocol: "postgres",
      target: { host: "db.internal", port: 5432 },
      credential: { user: "app_ro", passwordRef: "env:APP_RO_PASSWORD" },
    });
    stream.on("error", ignore);
    expect(opened.params).toEqual({ server_version: "16.4" });
    expect([...opened.handshake]).toEqual([1, 2, 3]);
  });
});

describe("half-close", () => {
  test("gateway ends first: the connector reads to the end, then answers and ends", async () => {
    const connector = acceptor();
    await using pair = await muxPair({ onOpen: connector.onOpen });
    const { stream } = await pair.gateway.open({ protocol: "tcp" });
    stream.on("error", ignore);
    const remote = await connector.next(0);

    stream.end("request");
    const request = await consume(remote); // 'end' arrives while the connector can still write
    expect(request.bytes).toBe(7);
    expect(remote.writable).toBe(true);
    remote.end("response after the request ended");
    const chunks: Buffer[] = [];
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    await once(stream, "end");
    expect(Buffer.concat(chunks).toString()).toBe("response after the request ended");
    await until(() => stream.closed && remote.closed, 5_000, "both streams to close");
    expect(pair.gateway.streamCount).toBe(0);
    expect(pair.connector.streamCount).toBe(0);
  });

  test("connector ends first: the gateway can still send", async () => {
    const connector = acceptor();
    await using pair = await muxPair({ onOpen: connector.onOpen });
    const { stream } = await pair.gateway.open({ protocol: "tcp" });
    stream.on("error", ignore);
    const remote = await connector.next(0);
    remote.end("bye");
    expect((await consume(stream)).bytes).toBe(3);
    expect(pair.gateway.streamCount).toBe(1); // one direction still open
    const got = consume(remote);
    stream.end("still here");
    expect((await got).bytes).toBe(10);
    await until(() => pair.gateway.streamCount === 0 && pair.connector.streamCount === 0);
  });
});

describe("reset", () => {
  test("destroy() resets the stream at the peer with STREAM_RESET", async () => {
    const connector = acceptor();
    await using pair = await muxPair({ onOpen: connector.onOpen });
    const { stream } = await pair.gateway.open({ protocol: "tcp" });
    stream.on("error", ignore);
    const remote = await connector.next(0);
    const failed = errorOf(remote);
    stream.destroy();
    const err = (await failed) as TunnelError;
    expect(err).toBeInstanceOf(TunnelError);
    expect(err.code).toBe("STREAM_RESET");
    expect(err.streamId).toBe(stream.id);
    await until(() => pair.connector.streamCount === 0);
  });

  test("destroy(err) carries the error message to the peer", async () => {
    const connector = acceptor();
    await using pair = await muxPair({ onOpen: connector.onOpen });
    const { stream } = await pair.gateway.open({ protocol: "tcp" });
    stream.on("error", ignore);
    const remote = await connector.next(0);
    const failed = errorOf(stream);
    remote.destroy(new Error("upstream refused the query"));
    const err = (await failed) as TunnelError;
    expect(err.code).toBe("STREAM_RESET");
    expect(err.message).toBe("upstream refused the query");
    // The link is fine: another stream still works.
    const again = await pair.gateway.open({ protocol: "tcp" });
    const echo = await connector.next(1);
    echo.pipe(echo);
    again.stream.end("ping");
    expect((await consume(again.stream)).bytes).toBe(4);
  });

  test("a huge error message is cut short rather than making a frame the peer would refuse", async () => {
    const connector = acceptor();
    await using pair = await muxPair({ onOpen: connector.onOpen, connector: { maxFrameBytes: 4_096, maxDataPayload: 1_024 } });
    const { stream } = await pair.gateway.open({ protocol: "tcp" });
    stream.on("error", ignore);
    const remote = await connector.next(0);
    const failed = errorOf(remote);
    stream.destroy(new Error("x".repeat(100_000)));
    const err = (await failed) as TunnelError;
    expect(err.code).toBe("STREAM_RESET");
    expect(err.message.length).toBe(1_024);
    expect(pair.connector.closed).toBe(false);
  });

  test("data in flight for a stream the reader just reset is dropped, not a protocol error", async () => {
    const connector = acceptor();
    await using pair = await muxPair({ onOpen: connector.onOpen });
    const { stream } = await pair.gateway.open({ protocol: "tcp" });
    stream.on("error", ignore);
    const remote = await connector.next(0);
    const writing = produce(stream, 1024 * 1024, { end: false }).catch(() => undefined);
    await until(() => remote.flow.receivedBytes > 0);
    remote.destroy();
    await writing;
    await sleep(50);
    expect(pair.gateway.closed).toBe(false);
    expect(pair.connector.closed).toBe(false);
  });
});

describe("open", () => {
  test.each(["TARGET_NOT_ALLOWED", "TARGET_UNREACHABLE", "AUTH_FAILED", "DRAINING"] as const)(
    "a reject(%s) arrives as a TunnelError with that code and message",
    async (code) => {
      await using pair = await muxPair({ onOpen: (_open, reply) => reply.reject(code, `no: ${code}`) });
      const err = await pair.gateway.open({ protocol: "tcp" }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(TunnelError);
      expect((err as TunnelError).code).toBe(code);
      expect((err as TunnelError).message).toBe(`no: ${code}`);
      expect(pair.gateway.streamCount).toBe(0);
    },
  );

  test("an OpenStream too big for a frame is refused locally, and the link stays up", async () => {
    await using pair = await muxPair({ gateway: { maxFrameBytes: 4_096, maxDataPayload: 1_024 } });
    const err = (await pair.gateway.open({ params: { big: "x".repeat(5_000) } }).catch((e: unknown) => e)) as TunnelError;
    expect(err.code).toBe("INTERNAL");
    expect(err.message).toMatch(/exceeds maxFrameBytes/);
    expect(pair.gateway.closed).toBe(false);
    expect(pair.gateway.streamCount).toBe(0);
  });

  test("a throwing open handler is answered INTERNAL, and the link stays up", async () => {
    let calls = 0;
    await using pair = await muxPair({
      onOpen: (_open, reply) => {
        if (calls++ === 0) throw new Error("bug in the dialer");
        reply.accept().on("error", ignore);
      },
    });
    const err = (await pair.gateway.open({ protocol: "tcp" }).catch((e: unknown) => e)) as TunnelError;
    expect(err.code).toBe("INTERNAL");
    const { stream } = await pair.gateway.open({ protocol: "tcp" });
    stream.on("error", ignore);
    expect(stream.id).toBe(3);
  });

  test("no answer within openTimeoutMs is OPEN_TIMEOUT, and a late accept gets a reset stream", async () => {
    const replies: Parameters<NonNullable<Parameters<typeof muxPair>[0]>["onOpen"] & {}>[1][] = [];
    await using pair = await muxPair({
      gateway: { openTimeoutMs: 100 },
      onOpen: (_open, reply) => void replies.push(reply),
    });
    const started = Date.now();
    const err = (await pair.gateway.open({ protocol: "tcp" }).catch((e: unknown) => e)) as TunnelError;
    expect(err.code).toBe("OPEN_TIMEOUT");
    expect(Date.now() - started).toBeGreaterThanOrEqual(95);
    await sleep(50); // the RESET reaches the connector
    const late = replies[0]!.accept();
    const lateErr = (await errorOf(late)) as TunnelError;
    expect(lateErr.code).toBe("STREAM_RESET");
    expect(pair.gateway.streamCount).toBe(0);
    expect(pair.connector.streamCount).toBe(0);
    expect(() => replies[0]!.reject("INTERNAL", "twice")).toThrow(TunnelError);
  });

  test("drain: the gateway hears it, stops opening, and open streams carry on", async () => {
    const connector = acceptor();
    await using pair = await muxPair({ onOpen: connector.onOpen });
    const { stream } = await pair.gateway.open({ protocol: "tcp" });
    stream.on("error", ignore);
    const remote = await connector.next(0);
    const drained = once(pair.gateway, "drain");
    pair.connector.drain();
    await drained;
    expect(pair.gateway.draining).toBe(true);
    const err = (await pair.gateway.open({ protocol: "tcp" }).catch((e: unknown) => e)) as TunnelError;
    expect(err.code).toBe("DRAINING");
    remote.pipe(remote);
    stream.end("still open");
    expect((await consume(stream)).bytes).toBe(10);
  });
});

import { randomBytes } from "node:crypto";
import { once } from "node:events";
import { TunnelError } from "@gatehouse/proto";
import { afterEach, describe, expect, it } from "vitest";
import { startConnector, type Connector } from "../src/index.js";
import { Cleanup, delay, EchoServer, FakeGateway, frameMasks, LogCapture, readAll, tcpOpen, testSettings } from "./helpers.js";

const TOKEN = "connector-token-1";
const cleanup = new Cleanup();
afterEach(() => cleanup.run());

async function setup(options: { token?: string; allow?: (echo: EchoServer) => string; env?: NodeJS.ProcessEnv } = {}) {
  const gateway = await FakeGateway.start(TOKEN);
  cleanup.add(() => gateway.close());
  const echo = await EchoServer.start();
  cleanup.add(() => echo.close());
  const logs = new LogCapture();
  const settings = testSettings(gateway, options.allow?.(echo) ?? `127.0.0.1:${echo.port}`, {
    ...(options.token === undefined ? {} : { token: options.token }),
    ...(options.env === undefined ? {} : { env: options.env }),
  });
  const connector = startConnector(settings, { logger: logs.logger });
  cleanup.add(() => connector.stop());
  return { gateway, echo, logs, connector };
}

async function openFailure(promise: Promise<unknown>): Promise<TunnelError> {
  const err = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TunnelError);
  return err as TunnelError;
}

async function connected(connector: Connector): Promise<void> {
  if (!connector.connected) await once(connector, "connected");
}

describe("connector against a gateway", () => {
  it("dials with its token and name, and relays bytes both ways through a stream with half-close", async () => {
    const { gateway, echo, logs, connector } = await setup();
    const link = await gateway.link();
    expect(link.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(link.headers["gatehouse-connector"]).toBe("dc1");
    await connected(connector);

    const { stream } = await link.mux.open(tcpOpen({ host: "127.0.0.1", port: echo.port }, { sessionId: "sess-42" }));
    // More than the initial window, so flow control has to hand out credit along the way.
    const payload = randomBytes(3 * 1024 * 1024 + 17);
    const echoed = readAll(stream);
    stream.end(payload);
    // The echo server only ends its side after ours ended: receiving the end proves the half-close went both ways.
    expect((await echoed).equals(payload)).toBe(true);

    const [closed] = await logs.waitFor((l) => l.msg === "stream closed");
    expect(closed).toMatchObject({ sessionId: "sess-42", streamId: stream.id, toTarget: payload.length, fromTarget: payload.length });
    const [opened] = logs.find((l) => l.msg === "stream opened");
    expect(opened).toMatchObject({ sessionId: "sess-42", connector: "dc1", target: `127.0.0.1:${echo.port}`, protocol: "tcp" });
    expect(connector.streamCount).toBe(0);
  });

  it("masks its frames with random keys over plain ws://, as RFC 6455 asks", async () => {
    const { gateway, echo } = await setup();
    const link = await gateway.link();
    const { stream } = await link.mux.open(tcpOpen({ host: "127.0.0.1", port: echo.port }));
    const echoed = readAll(stream);
    stream.end("in the clear");
    expect((await echoed).toString()).toBe("in the clear");
    const masks = frameMasks(Buffer.concat(link.received));
    expect(masks.length).toBeGreaterThanOrEqual(2);
    expect(new Set(masks.map((mask) => mask.toString("hex"))).size).toBe(masks.length);
  });

  it("relays several streams at once without mixing them up", async () => {
    const { gateway, echo, connector } = await setup();
    const link = await gateway.link();
    await connected(connector);
    const results = await Promise.all(
      Array.from({ length: 8 }, async (_, i) => {
        const { stream } = await link.mux.open(tcpOpen({ host: "127.0.0.1", port: echo.port }, { sessionId: `s${i}` }));
        const payload = randomBytes(100_000 + i);
        const echoed = readAll(stream);
        stream.end(payload);
        return (await echoed).equals(payload);
      }),
    );
    expect(results).toEqual(new Array(8).fill(true));
  });

  it("refuses a target off the allow-list with TARGET_NOT_ALLOWED, without connecting to it", async () => {
    const { gateway, echo, logs } = await setup({ allow: () => "127.0.0.1:1" });
    const link = await gateway.link();
    const err = await openFailure(link.mux.open(tcpOpen({ host: "127.0.0.1", port: echo.port }, { sessionId: "sess-7" })));
    expect(err.code).toBe("TARGET_NOT_ALLOWED");
    expect(err.message).toContain(`127.0.0.1:${echo.port}`);
    expect(err.message).toContain(`"dc1"`);
    expect(echo.sockets).toHaveLength(0);
    expect(logs.find((l) => l.msg === "stream refused")[0]).toMatchObject({ sessionId: "sess-7", code: "TARGET_NOT_ALLOWED" });
  });

  it("fails the open with CREDENTIAL_UNAVAILABLE when the reference cannot be resolved", async () => {
    const { gateway, echo } = await setup({ env: { APP_PW: "secret-value" } });
    const link = await gateway.link();
    const err = await openFailure(
      link.mux.open(tcpOpen({ host: "127.0.0.1", port: echo.port }, { passwordRef: "env:APP_PASSWORD" })),
    );
    expect(err.code).toBe("CREDENTIAL_UNAVAILABLE");
    expect(err.message).toContain("env:APP_PASSWORD");
    expect(echo.sockets).toHaveLength(0);
    // The same open with a reference that resolves goes through.
    const { stream } = await link.mux.open(tcpOpen({ host: "127.0.0.1", port: echo.port }, { passwordRef: "env:APP_PW" }));
    stream.destroy();
  });

  it("refuses an unknown protocol and reports an unreachable target with the OS reason", async () => {
    const { gateway, echo } = await setup({ allow: (e) => `127.0.0.1:${e.port},127.0.0.1:1` });
    const link = await gateway.link();
    const unsupported = await openFailure(
      link.mux.open(tcpOpen({ host: "127.0.0.1", port: echo.port }, { protocol: "gopher" })),
    );
    expect(unsupported.code).toBe("PROTOCOL_UNSUPPORTED");
    expect(unsupported.message).toContain('"gopher"');
    const unreachable = await openFailure(link.mux.open(tcpOpen({ host: "127.0.0.1", port: 1 })));
    expect(unreachable.code).toBe("TARGET_UNREACHABLE");
    expect(unreachable.message).toContain("ECONNREFUSED");
  });

  it("tears down the target connection when the gateway resets the stream, and the stream when the target dies", async () => {
    const { gateway, echo, connector } = await setup();
    const link = await gateway.link();
    await connected(connector);

    const first = await link.mux.open(tcpOpen({ host: "127.0.0.1", port: echo.port }));
    while (echo.sockets.length < 1) await delay(5);
    const targetClosed = once(echo.sockets[0]!, "close");
    first.stream.destroy();
    await targetClosed;

    const second = await link.mux.open(tcpOpen({ host: "127.0.0.1", port: echo.port }));
    second.stream.on("error", () => {});
    while (echo.sockets.length < 2) await delay(5);
    const failed = once(connector, "stream-close");
    echo.sockets[1]!.resetAndDestroy();
    const [info] = await failed;
    expect(info.error?.message).toMatch(/ECONNRESET/);
    // events.once() would reject on the 'error' that precedes 'close', so listen by hand.
    await new Promise((r) => second.stream.once("close", r));
    const err = second.stream.errored;
    expect(err).toBeInstanceOf(TunnelError);
    expect((err as TunnelError).code).toBe("STREAM_RESET");
    expect(err?.message).toContain(`connection to target 127.0.0.1:${echo.port} failed`);
  });

  it("reconnects after the gateway cuts the WebSocket, and the streams open at the cut fail on both sides", async () => {
    const { gateway, echo, connector } = await setup();
    const link = await gateway.link();
    await connected(connector);
    const { stream } = await link.mux.open(tcpOpen({ host: "127.0.0.1", port: echo.port }));
    stream.write("hello");
    await once(stream, "data");
    const gatewayError = new Promise<unknown>((r) => stream.once("error", r));
    const connectorSide = once(connector, "stream-close");
    const targetClosed = once(echo.sockets[0]!, "close");
    const disconnected = once(connector, "disconnected");

    link.ws.terminate();

    expect(((await gatewayError) as TunnelError).code).toBe("LINK_CLOSED");
    const [info] = await connectorSide;
    expect((info.error as TunnelError).code).toBe("LINK_CLOSED");
    await targetClosed;
    await disconnected;
    expect(connector.connected).toBe(false);

    const second = await gateway.link(2);
    await connected(connector);
    const again = await second.mux.open(tcpOpen({ host: "127.0.0.1", port: echo.port }));
    const echoed = readAll(again.stream);
    again.stream.end("after the cut");
    expect((await echoed).toString()).toBe("after the cut");
  });

  it("drops a link whose gateway stopped answering (dead heartbeat) and dials again", async () => {
    const gateway = await FakeGateway.start(TOKEN);
    cleanup.add(() => gateway.close());
    const logs = new LogCapture();
    const connector = startConnector(testSettings(gateway, "127.0.0.1:1"), {
      logger: logs.logger,
      mux: { pingIntervalMs: 50, deadAfterMs: 300 },
    });
    cleanup.add(() => connector.stop());
    const first = await gateway.link();
    // The gateway's socket stops being read: no pongs, no frames, but the TCP connection stays up.
    first.ws.pause();
    const started = performance.now();
    await gateway.link(2);
    expect(performance.now() - started).toBeGreaterThanOrEqual(250);
    const [lost] = await logs.waitFor((l) => l.msg === "disconnected from the gateway");
    expect(String(lost!.reason)).toMatch(/tunnel closed/);
  });

  it("logs a 401 at the upgrade as a refused token and keeps retrying with backoff", async () => {
    const { gateway, logs, connector } = await setup({ token: "wrong-token" });
    const refused = await logs.waitFor((l) => l.msg === "gateway refused the connector token", 3);
    expect(refused[0]).toMatchObject({ status: 401, level: 50 });
    expect(typeof refused[0]!.retryInMs).toBe("number");
    expect(JSON.stringify(logs.lines)).not.toContain("wrong-token");
    expect(gateway.refusals).toBeGreaterThanOrEqual(3);
    expect(connector.connected).toBe(false);
    expect(gateway.links).toHaveLength(0);
  });

  it("drains: sends Drain, refuses new streams with DRAINING, lets an open one finish, then closes", async () => {
    const { gateway, echo, connector } = await setup();
    const link = await gateway.link();
    await connected(connector);
    const { stream } = await link.mux.open(tcpOpen({ host: "127.0.0.1", port: echo.port }));

    const peerDrained = once(link.mux, "drain");
    let drainDone = false;
    const drained = connector.drain(10_000).then(() => (drainDone = true));
    await peerDrained;
    expect(link.mux.draining).toBe(true);
    expect((await openFailure(link.mux.open(tcpOpen({ host: "127.0.0.1", port: echo.port })))).code).toBe("DRAINING");
    expect(connector.draining).toBe(true);

    // The open stream still works while the drain waits for it.
    const echoed = readAll(stream);
    stream.write("still ");
    await delay(50);
    expect(drainDone).toBe(false);
    stream.end("here");
    expect((await echoed).toString()).toBe("still here");
    await drained;
    expect(connector.connected).toBe(false);
    expect(connector.streamCount).toBe(0);
    // Stopped, not reconnecting.
    await delay(200);
    expect(gateway.links).toHaveLength(1);
  });

  it("refuses with DRAINING an open that crossed the Drain on the wire", async () => {
    const { gateway, echo, connector } = await setup();
    const link = await gateway.link();
    await connected(connector);
    const { stream } = await link.mux.open(tcpOpen({ host: "127.0.0.1", port: echo.port }));
    const drained = connector.drain(10_000);
    // drain() sends Drain at once, but the gateway has not read it yet: this open goes out and the connector's
    // side refuses it (the gateway never refuses locally before it has seen Drain).
    expect(link.mux.draining).toBe(false);
    const late = link.mux.open(tcpOpen({ host: "127.0.0.1", port: echo.port }, { sessionId: "late" }));
    const err = await openFailure(late);
    expect(err.code).toBe("DRAINING");
    expect(echo.sockets).toHaveLength(1);
    stream.end();
    await readAll(stream);
    await drained;
  });

  it("closes streams still open when the drain timeout passes", async () => {
    const { gateway, echo, connector } = await setup();
    const link = await gateway.link();
    await connected(connector);
    const { stream } = await link.mux.open(tcpOpen({ host: "127.0.0.1", port: echo.port }));
    const gatewayError = new Promise<unknown>((r) => stream.once("error", r));
    const started = performance.now();
    await connector.drain(150);
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
    expect(((await gatewayError) as TunnelError).code).toBe("LINK_CLOSED");
  });

  it("holds back the target when the gateway does not read (flow control reaches the target socket)", async () => {
    const total = 32 * 1024 * 1024;
    let written = 0;
    let writerDone = false;
    const gateway = await FakeGateway.start(TOKEN);
    cleanup.add(() => gateway.close());
    // A target that pours bytes as fast as its socket takes them.
    const firehose = await EchoServer.start((socket) => {
      const chunk = Buffer.alloc(64 * 1024, 7);
      const pump = (): void => {
        while (written < total) {
          written += chunk.length;
          if (!socket.write(chunk)) {
            socket.once("drain", pump);
            return;
          }
        }
        writerDone = true;
        socket.end();
      };
      pump();
    });
    cleanup.add(() => firehose.close());
    const connector = startConnector(testSettings(gateway, `127.0.0.1:${firehose.port}`), { logger: new LogCapture().logger });
    cleanup.add(() => connector.stop());
    const link = await gateway.link();
    const { stream } = await link.mux.open(tcpOpen({ host: "127.0.0.1", port: firehose.port }));
    stream.pause();
    await delay(500);
    // Nothing reads at the gateway: the connector must stop reading the target, so the target's writes stall
    // far short of the total (what got through sits in the tunnel window and the kernel socket buffers).
    expect(writerDone).toBe(false);
    expect(written).toBeLessThan(total / 2);
    const received = await readAll(stream);
    expect(received.length).toBe(total);
  });
});

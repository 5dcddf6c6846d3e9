// ChunkSource and nextHandshakeEvent over real sockets on port 0: one deadline for the whole
// handshake, the peer's close and failure in the caller's own errors, and nothing lost on detach.
import { once } from "node:events";
import { createServer, connect, type AddressInfo, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { ChunkSource, nextHandshakeEvent, type PureHandshake } from "./index.js";

class Gone extends Error {}
class TimedOut extends Error {}
const failures = { gone: (cause?: Error) => new Gone(cause?.message ?? "closed"), timedOut: () => new TimedOut("deadline") };

const servers: Server[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

/** A connected pair: [our side, the peer's side]. */
async function pair(): Promise<[Socket, Socket]> {
  const server = createServer();
  servers.push(server);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const accepted = once(server, "connection");
  const ours = connect((server.address() as AddressInfo).port, "127.0.0.1");
  const [peer] = (await accepted) as [Socket];
  await once(ours, "connect");
  sockets.push(ours, peer);
  return [ours, peer];
}

/** A toy pure handshake: one event per newline-terminated line. */
class Lines implements PureHandshake<string> {
  private text = "";
  push(chunk: Uint8Array): void {
    this.text += Buffer.from(chunk).toString();
  }
  next(): string | undefined {
    const end = this.text.indexOf("\n");
    if (end < 0) return undefined;
    const line = this.text.slice(0, end);
    this.text = this.text.slice(end + 1);
    return line;
  }
}

describe("ChunkSource", () => {
  it("hands out chunks in order, then what was read but not taken on detach", async () => {
    const [ours, peer] = await pair();
    const source = new ChunkSource(ours, failures);
    const deadline = AbortSignal.timeout(5_000);
    peer.write("one");
    expect((await source.next(deadline)).toString()).toBe("one");
    peer.write("two");
    await new Promise((r) => setTimeout(r, 50));
    expect(Buffer.concat(source.detach()).toString()).toBe("two");
  });

  it("the peer closing: the caller's `gone` error, also for every later read", async () => {
    const [ours, peer] = await pair();
    const source = new ChunkSource(ours, failures);
    peer.end();
    await expect(source.next(AbortSignal.timeout(5_000))).rejects.toBeInstanceOf(Gone);
    await expect(source.next(AbortSignal.timeout(5_000))).rejects.toBeInstanceOf(Gone);
  });

  it("one deadline for the whole handshake: a peer trickling bytes cannot stretch it", async () => {
    const [ours, peer] = await pair();
    const machine = new Lines();
    const source = new ChunkSource(ours, failures);
    const timer = setInterval(() => peer.write("x"), 20);
    const started = Date.now();
    await expect(nextHandshakeEvent(machine, source, AbortSignal.timeout(200))).rejects.toBeInstanceOf(TimedOut);
    clearInterval(timer);
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  it("nextHandshakeEvent reads only as much as the machine needs, across chunk boundaries", async () => {
    const [ours, peer] = await pair();
    const machine = new Lines();
    const source = new ChunkSource(ours, failures);
    const deadline = AbortSignal.timeout(5_000);
    peer.write("hel");
    setTimeout(() => peer.write("lo\nworld\n"), 30);
    expect(await nextHandshakeEvent(machine, source, deadline)).toBe("hello");
    expect(await nextHandshakeEvent(machine, source, deadline)).toBe("world");
  });
});

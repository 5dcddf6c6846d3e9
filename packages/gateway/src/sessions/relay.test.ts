import { createServer, connect, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { relay } from "./relay.js";

// Real sockets on loopback: a "client" pair and an "upstream" pair joined by relay().
async function socketPair(): Promise<[Socket, Socket, () => void]> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const accepted = new Promise<Socket>((r) => server.once("connection", r));
  const dialed = connect((server.address() as { port: number }).port, "127.0.0.1");
  const inner = await accepted;
  return [dialed, inner, () => server.close()];
}

const cleanups: Array<() => void> = [];
afterEach(() => cleanups.splice(0).forEach((c) => c()));

describe("relay", () => {
  it("copies both ways, counts bytes, and finishes when both sides close", async () => {
    const [clientFar, clientNear, c1] = await socketPair();
    const [upNear, upFar, c2] = await socketPair();
    cleanups.push(c1, c2);
    const done = relay(clientNear, upNear);
    upFar.on("data", (chunk: Buffer) => upFar.write(Buffer.from(chunk.toString().toUpperCase())));
    upFar.on("end", () => upFar.end());
    const echoed = new Promise<string>((resolve) => {
      let text = "";
      clientFar.on("data", (chunk: Buffer) => {
        text += chunk.toString();
        if (text.length === 5) {
          clientFar.end();
          resolve(text);
        }
      });
    });
    clientFar.write("hello");
    expect(await echoed).toBe("HELLO");
    const result = await done;
    expect(result).toMatchObject({ bytesUp: 5, bytesDown: 5, endedBy: "client" });
    expect(result.error).toBeUndefined();
  });

  it("stops at an inspector's violation, forwards nothing of that chunk, and sends the client its farewell", async () => {
    const [clientFar, clientNear, c1] = await socketPair();
    const [upNear, upFar, c2] = await socketPair();
    cleanups.push(c1, c2);
    let upstreamGot = "";
    upFar.on("data", (chunk: Buffer) => (upstreamGot += chunk.toString()));
    upFar.on("error", () => undefined);
    const done = relay(clientNear, upNear, {
      up: (chunk) => {
        if (chunk.includes("BAD")) throw new Error("malformed");
      },
      onViolation: (error) => Buffer.from(`bye: ${error.message}`),
    });
    let farewell = "";
    clientFar.on("data", (chunk: Buffer) => (farewell += chunk.toString()));
    const clientClosed = new Promise((r) => clientFar.on("close", r));
    clientFar.write("BAD bytes");
    const result = await done;
    await clientClosed;
    expect(result.violation).toBe("up");
    expect(result.error?.message).toBe("malformed");
    expect(farewell).toBe("bye: malformed");
    expect(upstreamGot).toBe("");
  });

  it("when the resource side fails, sends the client the farewell for that error, then closes it", async () => {
    const [clientFar, clientNear, c1] = await socketPair();
    const [upNear, , c2] = await socketPair();
    cleanups.push(c1, c2);
    const done = relay(clientNear, upNear, { onResourceError: (error) => Buffer.from(`lost: ${error.message}`) });
    let farewell = "";
    clientFar.on("data", (chunk: Buffer) => (farewell += chunk.toString()));
    const clientClosed = new Promise((r) => clientFar.on("close", r));
    upNear.destroy(new Error("link closed"));
    const result = await done;
    await clientClosed;
    expect(farewell).toBe("lost: link closed");
    expect(result).toMatchObject({ endedBy: "resource", error: { message: "link closed" } });
  });

  it("closes the client without a word when the farewell callback has none (or the client failed)", async () => {
    const [clientFar, clientNear, c1] = await socketPair();
    const [upNear, , c2] = await socketPair();
    cleanups.push(c1, c2);
    let asked = 0;
    const done = relay(clientNear, upNear, { onResourceError: () => (asked++, undefined) });
    let received = 0;
    clientFar.on("data", (chunk: Buffer) => (received += chunk.length));
    const clientClosed = new Promise((r) => clientFar.on("close", r));
    clientNear.destroy(new Error("client reset"));
    const result = await done;
    await clientClosed;
    expect(asked).toBe(0);
    expect(received).toBe(0);
    expect(result).toMatchObject({ endedBy: "client", error: { message: "client reset" } });
  });

  it("keeps memory bounded with a slow reader, delivers every byte in order, and passes the end on", async () => {
    const [clientFar, clientNear, c1] = await socketPair();
    const [upNear, upFar, c2] = await socketPair();
    cleanups.push(c1, c2);
    const done = relay(clientNear, upNear);
    // The resource answers the request with 16 MiB and ends.
    const payload = Buffer.alloc(16 * 1024 * 1024);
    for (let i = 0; i < payload.length; i += 4) payload.writeUInt32LE(i, i);
    upFar.once("data", () => upFar.end(payload));
    clientFar.pause();
    clientFar.write("request");
    // While the client reads nothing, the relay must stop reading the resource rather than buffer it all.
    await new Promise((r) => setTimeout(r, 300));
    expect(clientNear.writableLength + upNear.readableLength).toBeLessThan(payload.length / 2);
    const chunks: Buffer[] = [];
    clientFar.on("data", (chunk: Buffer) => chunks.push(chunk));
    clientFar.resume();
    await new Promise((r) => clientFar.once("end", r));
    clientFar.end();
    expect(Buffer.concat(chunks).equals(payload)).toBe(true);
    const result = await done;
    expect(result).toMatchObject({ bytesUp: 7, bytesDown: payload.length, endedBy: "resource" });
    expect(result.error).toBeUndefined();
  });

  it("holds a chunk while its inspector's promise is pending, keeps order, and passes the end on after it", async () => {
    const [clientFar, clientNear, c1] = await socketPair();
    const [upNear, upFar, c2] = await socketPair();
    cleanups.push(c1, c2);
    let upstreamGot = "";
    upFar.on("data", (chunk: Buffer) => (upstreamGot += chunk.toString()));
    const upstreamEnded = new Promise((r) => upFar.once("end", r));
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const done = relay(clientNear, upNear, {
      // The first chunk waits for the gate (as a command waits for its record to be durable).
      up: (chunk) => (chunk.toString().startsWith("first") ? gate : undefined),
    });
    clientFar.write("first;");
    await new Promise((r) => setTimeout(r, 50));
    clientFar.end("second;");
    await new Promise((r) => setTimeout(r, 100));
    expect(upstreamGot).toBe("");
    release();
    await upstreamEnded;
    expect(upstreamGot).toBe("first;second;");
    upFar.end();
    expect((await done).error).toBeUndefined();
  });

  it("behind a held chunk, keeps what follows in order, stops reading the sender past a bound, and runs each inspector in turn", async () => {
    const [clientFar, clientNear, c1] = await socketPair();
    const [upNear, upFar, c2] = await socketPair();
    cleanups.push(c1, c2);
    const got: Buffer[] = [];
    upFar.on("data", (chunk: Buffer) => got.push(chunk));
    const upstreamEnded = new Promise((r) => upFar.once("end", r));
    let release: () => void = () => undefined;
    const gate = new Promise<void>((r) => (release = r));
    const inspected: number[] = [];
    let held = false;
    const done = relay(clientNear, upNear, {
      // The first chunk waits (a command waiting for its record); every later one is seen only after it went on.
      up: (chunk) => {
        inspected.push(chunk.length);
        if (held) return undefined;
        held = true;
        return gate;
      },
    });
    clientFar.write("first;");
    await new Promise((r) => setTimeout(r, 50));
    // 8 MiB behind it, numbered so order shows.
    const payload = Buffer.alloc(8 * 1024 * 1024);
    for (let i = 0; i < payload.length; i += 4) payload.writeUInt32LE(i, i);
    clientFar.end(payload);
    await new Promise((r) => setTimeout(r, 300));
    expect(got).toEqual([]);
    expect(inspected).toEqual([6]);
    // Not all of it read into memory while the first chunk is held: the relay stopped reading the client.
    expect(clientNear.bytesRead).toBeLessThan(payload.length / 2);
    release();
    await upstreamEnded;
    const all = Buffer.concat(got);
    expect(all.subarray(0, 6).toString()).toBe("first;");
    expect(all.subarray(6).equals(payload)).toBe(true);
    expect(inspected.reduce((a, b) => a + b, 0)).toBe(6 + payload.length);
    upFar.end();
    expect((await done).error).toBeUndefined();
  });

  it("treats a rejected inspector promise as a violation: the chunk is not forwarded, the client gets its farewell", async () => {
    const [clientFar, clientNear, c1] = await socketPair();
    const [upNear, upFar, c2] = await socketPair();
    cleanups.push(c1, c2);
    let upstreamGot = "";
    upFar.on("data", (chunk: Buffer) => (upstreamGot += chunk.toString()));
    upFar.on("error", () => undefined);
    const done = relay(clientNear, upNear, {
      up: () => new Promise((_, reject) => setTimeout(() => reject(new Error("journal full")), 20)),
      onViolation: (error) => Buffer.from(`refused: ${error.message}`),
    });
    let farewell = "";
    clientFar.on("data", (chunk: Buffer) => (farewell += chunk.toString()));
    const clientClosed = new Promise((r) => clientFar.on("close", r));
    clientFar.write("select 1");
    const result = await done;
    await clientClosed;
    expect(result).toMatchObject({ violation: "up" });
    expect(farewell).toBe("refused: journal full");
    expect(upstreamGot).toBe("");
  });

  it("an inspector's rewrite: only `forward` goes on, `answer` goes back to the sender (sync and after a hold)", async () => {
    const [clientFar, clientNear, c1] = await socketPair();
    const [upNear, upFar, c2] = await socketPair();
    cleanups.push(c1, c2);
    let upstreamGot = "";
    upFar.on("data", (chunk: Buffer) => (upstreamGot += chunk.toString()));
    let clientGot = "";
    clientFar.on("data", (chunk: Buffer) => (clientGot += chunk.toString()));
    let n = 0;
    const done = relay(clientNear, upNear, {
      up: (chunk) => {
        const text = chunk.toString();
        const rewrite = { forward: Buffer.from(text.replace("NO", "")), answer: Buffer.from(text.includes("NO") ? "refused;" : "") };
        return ++n === 1 ? rewrite : Promise.resolve(rewrite);
      },
    });
    clientFar.write("aNO");
    await new Promise((resolve) => setTimeout(resolve, 50));
    clientFar.write("bNO");
    await new Promise((resolve) => setTimeout(resolve, 50));
    clientFar.write("c");
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(upstreamGot).toBe("abc");
    expect(clientGot).toBe("refused;refused;");
    clientFar.end();
    upFar.end();
    await done;
  });
});

import { once } from "node:events";
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { pino } from "pino";
import type { OpenStream } from "@gatehouse/proto";
import { ConnectorError } from "../../errors.js";
import { defaultDialers, dialTcp, formatTarget } from "../index.js";
import type { DialContext } from "../types.js";

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

async function listen(onSocket: (s: Socket) => void): Promise<number> {
  const server = createServer(onSocket);
  servers.push(server);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return (server.address() as AddressInfo).port;
}

const openFor = (host: string, port: number) => ({ protocol: "tcp", target: { host, port } }) as unknown as OpenStream;
const ctx = (over: Partial<DialContext> = {}): DialContext => ({
  password: null,
  logger: pino({ level: "silent" }),
  signal: new AbortController().signal,
  timeoutMs: 5000,
  ...over,
});

async function failure(p: Promise<unknown>): Promise<ConnectorError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ConnectorError);
  return err as ConnectorError;
}

describe("dialTcp", () => {
  it("connects to the target with noDelay and keepalive, and the bytes flow", async () => {
    const port = await listen((s) => s.pipe(s));
    const { socket, params, handshake } = await dialTcp(openFor("127.0.0.1", port), ctx());
    expect(params).toBeUndefined();
    expect(handshake).toBeUndefined();
    socket.write("ping");
    const [chunk] = (await once(socket, "data")) as [Buffer];
    expect(chunk.toString()).toBe("ping");
    socket.destroy();
  });

  it("maps a refused connection to TARGET_UNREACHABLE with the OS reason", async () => {
    const port = await listen(() => {});
    await new Promise((r) => servers.pop()?.close(r)); // the port is now free and refuses
    const err = await failure(dialTcp(openFor("127.0.0.1", port), ctx()));
    expect(err.code).toBe("TARGET_UNREACHABLE");
    expect(err.message).toBe(`cannot reach 127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port}`);
  });

  it("maps a DNS failure to TARGET_UNREACHABLE", async () => {
    const err = await failure(dialTcp(openFor("no-such-host.invalid", 5432), ctx()));
    expect(err.code).toBe("TARGET_UNREACHABLE");
    expect(err.message).toMatch(/^cannot reach no-such-host\.invalid:5432: getaddrinfo (ENOTFOUND|EAI_AGAIN)/);
  });

  it("gives up when the signal aborts", async () => {
    const aborted = new AbortController();
    aborted.abort();
    const err = await failure(dialTcp(openFor("127.0.0.1", 1), ctx({ signal: aborted.signal })));
    expect(err.message).toBe("dial to 127.0.0.1:1 cancelled");
  });
});

describe("dialer registry", () => {
  it("knows tcp, postgres, mysql, ssh and kubernetes by default and is open to more protocols", () => {
    const dialers = defaultDialers();
    expect([...dialers.keys()]).toEqual(["tcp", "postgres", "mysql", "ssh", "kubernetes"]);
    dialers.set("redis", dialTcp);
    expect(dialers.get("redis")).toBe(dialTcp);
  });

  it("formats IPv6 targets in brackets", () => {
    expect(formatTarget("::1", 5432)).toBe("[::1]:5432");
    expect(formatTarget("db", 5432)).toBe("db:5432");
  });
});

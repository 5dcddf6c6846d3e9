import { once } from "node:events";
import { afterEach, describe, expect, it } from "vitest";
import { parseConnectorSettings, startConnector, systemLookup, type Connector, type ResolvedAddress } from "../src/index.js";
import { Cleanup, delay, EchoServer, FakeGateway, LogCapture, readAll, tcpOpen } from "./helpers.js";

const TOKEN = "multi-gateway-token";
const cleanup = new Cleanup();
afterEach(() => cleanup.run());

function settings(gateways: string[], allow: string, extra: string[] = []) {
  const argv = [...gateways.flatMap((g) => ["--gateway", g]), "--name", "dc1", "--token", TOKEN, "--allow", allow, ...extra];
  return { ...parseConnectorSettings(argv, {}), backoff: { baseMs: 20, capMs: 100, resetAfterMs: 60_000 } };
}

async function until(check: () => boolean, what: string, ms = 5_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await delay(10);
  }
}

async function echoThrough(gateway: FakeGateway, linkNumber: number, echo: EchoServer, text: string): Promise<string> {
  const link = await gateway.link(linkNumber);
  const { stream } = await link.mux.open(tcpOpen({ host: "127.0.0.1", port: echo.port }));
  const echoed = readAll(stream);
  stream.end(text);
  return (await echoed).toString();
}

describe("a connector given several gateways", () => {
  it("holds a tunnel to each, serves streams from either, and keeps serving one when the other goes", async () => {
    const a = await FakeGateway.start(TOKEN);
    const b = await FakeGateway.start(TOKEN);
    cleanup.add(() => a.close());
    cleanup.add(() => b.close());
    const echo = await EchoServer.start();
    cleanup.add(() => echo.close());
    const logs = new LogCapture();
    const connector = startConnector(settings([a.url, b.url], `127.0.0.1:${echo.port}`), { logger: logs.logger });
    cleanup.add(() => connector.stop());

    await Promise.all([a.link(), b.link()]);
    await until(() => connector.links.every((l) => l.up) && connector.links.length === 2, "both links up");
    expect(connector.links.map((l) => l.gateway).sort()).toEqual([`${a.url}/v1/tunnel`, `${b.url}/v1/tunnel`].sort());
    expect(await echoThrough(a, 1, echo, "via a")).toBe("via a");
    expect(await echoThrough(b, 1, echo, "via b")).toBe("via b");
    // Each status line names the gateway its link is to.
    const connectedLines = logs.find((l) => l.msg === "connected to the gateway").map((l) => l.gateway);
    expect(connectedLines.sort()).toEqual([`${a.url}/v1/tunnel`, `${b.url}/v1/tunnel`].sort());
    const opened = logs.find((l) => l.msg === "stream opened").map((l) => l.gateway);
    expect(opened.sort()).toEqual([`${a.url}/v1/tunnel`, `${b.url}/v1/tunnel`].sort());

    // A goes away: only its tunnel is lost (and retried); B keeps serving.
    const lost = once(connector, "disconnected");
    await a.close();
    const [, which] = (await lost) as [string, string];
    expect(which).toBe(`${a.url}/v1/tunnel`);
    expect(connector.connected).toBe(true);
    expect(await echoThrough(b, 1, echo, "still b")).toBe("still b");
    await logs.waitFor((l) => String(l.msg).startsWith("cannot open the tunnel"));
    expect(logs.find((l) => String(l.msg).startsWith("cannot open the tunnel")).every((l) => l.gateway === `${a.url}/v1/tunnel`)).toBe(true);
  });

  it("drains every tunnel: Drain to each gateway, open streams on either finish, then it stops", async () => {
    const a = await FakeGateway.start(TOKEN);
    const b = await FakeGateway.start(TOKEN);
    cleanup.add(() => a.close());
    cleanup.add(() => b.close());
    const echo = await EchoServer.start();
    cleanup.add(() => echo.close());
    const connector = startConnector(settings([a.url, b.url], `127.0.0.1:${echo.port}`), { logger: new LogCapture().logger });
    cleanup.add(() => connector.stop());
    const [la, lb] = await Promise.all([a.link(), b.link()]);
    await until(() => connector.links.length === 2 && connector.links.every((l) => l.up), "links up");
    const streams = await Promise.all([la, lb].map(async (l) => (await l.mux.open(tcpOpen({ host: "127.0.0.1", port: echo.port }))).stream));
    const echoed = streams.map((s) => readAll(s));
    const drained = Promise.all([once(la.mux, "drain"), once(lb.mux, "drain")]);
    let done = false;
    const stopped = connector.drain(5_000).then(() => (done = true));
    await drained;
    expect(done).toBe(false);
    streams.forEach((s, i) => s.end(`stream ${i}`));
    expect((await Promise.all(echoed)).map(String)).toEqual(["stream 0", "stream 1"]);
    await stopped;
    expect(connector.connected).toBe(false);
  });
});

describe("a gateway name with several addresses", () => {
  it("gets a tunnel per address (Host still the name); a new address gets one, a vanished one is drained and closed", async () => {
    // Two gateways on one port, at two loopback addresses: what a headless Service's name resolves to.
    const a = await FakeGateway.start(TOKEN, { host: "127.0.0.1" });
    const b = await FakeGateway.start(TOKEN, { host: "127.0.0.2", port: a.port });
    cleanup.add(() => a.close());
    cleanup.add(() => b.close());
    const echo = await EchoServer.start();
    cleanup.add(() => echo.close());
    let answer: ResolvedAddress[] = [{ address: "127.0.0.1", family: 4 }];
    const asked: string[] = [];
    const lookup = async (name: string) => {
      asked.push(name);
      return answer;
    };
    const logs = new LogCapture();
    const url = `ws://localhost:${a.port}`;
    const connector: Connector = startConnector(settings([url], `127.0.0.1:${echo.port}`, ["--resolve-interval", "3600"]), { logger: logs.logger, lookup });
    cleanup.add(() => connector.stop());

    const first = await a.link();
    expect(first.headers.host).toBe(`localhost:${a.port}`);
    expect(asked).toEqual(["localhost"]);
    await until(() => connector.connected, "the link up");
    expect(connector.links).toEqual([{ gateway: `${url}/v1/tunnel`, address: "127.0.0.1", up: true, streams: 0, retiring: false }]);

    // The name now has a second address: a second tunnel, to B.
    answer = [{ address: "127.0.0.1", family: 4 }, { address: "127.0.0.2", family: 4 }];
    await connector.resolveGateways();
    const second = await b.link();
    expect(second.headers.host).toBe(`localhost:${a.port}`);
    expect(a.links).toHaveLength(1);
    expect(await echoThrough(b, 1, echo, "to b")).toBe("to b");
    await logs.waitFor((l) => l.msg === "gateway addresses changed");

    // A stream on A is open when A's address vanishes: A gets Drain, the stream finishes, then A's tunnel closes.
    const { stream } = await first.mux.open(tcpOpen({ host: "127.0.0.1", port: echo.port }));
    const echoed = readAll(stream);
    answer = [{ address: "127.0.0.2", family: 4 }];
    const drained = once(first.mux, "drain");
    await connector.resolveGateways();
    await drained;
    await until(() => connector.links.find((l) => l.address === "127.0.0.1")?.retiring === true, "A retiring");
    stream.end("last words");
    expect((await echoed).toString()).toBe("last words");
    await until(() => connector.links.length === 1, "A's tunnel closed");
    expect(connector.links[0]).toMatchObject({ address: "127.0.0.2", up: true });
    await logs.waitFor((l) => l.msg === "tunnel to a vanished gateway address closed");
    // No new tunnel to A after that.
    await delay(200);
    expect(a.links).toHaveLength(1);
  });

  it("an address that comes back while its old tunnel still drains gets a new tunnel", async () => {
    const a = await FakeGateway.start(TOKEN);
    cleanup.add(() => a.close());
    const echo = await EchoServer.start();
    cleanup.add(() => echo.close());
    let answer: ResolvedAddress[] = [{ address: "127.0.0.1", family: 4 }];
    const connector = startConnector(settings([`ws://localhost:${a.port}`], `127.0.0.1:${echo.port}`, ["--resolve-interval", "3600"]), { logger: new LogCapture().logger, lookup: async () => answer });
    cleanup.add(() => connector.stop());
    const first = await a.link();
    await until(() => connector.connected, "up");
    const { stream } = await first.mux.open(tcpOpen({ host: "127.0.0.1", port: echo.port }));
    const echoed = readAll(stream);
    answer = [];
    await connector.resolveGateways(); // an empty answer changes nothing
    expect(connector.links).toMatchObject([{ retiring: false }]);
    answer = [{ address: "127.0.0.2", family: 4 }];
    await connector.resolveGateways();
    answer = [{ address: "127.0.0.1", family: 4 }];
    await connector.resolveGateways();
    const second = await a.link(2);
    expect(second).not.toBe(first);
    stream.end("drained");
    expect((await echoed).toString()).toBe("drained");
    await until(() => connector.links.length === 1, "the old tunnel closed");
    expect(connector.links).toMatchObject([{ address: "127.0.0.1", retiring: false }]);
  });

  it("dials an IPv6 address of the name as well as an IPv4 one", async () => {
    const a = await FakeGateway.start(TOKEN, { host: "127.0.0.1" });
    const b = await FakeGateway.start(TOKEN, { host: "::1", port: a.port });
    cleanup.add(() => a.close());
    cleanup.add(() => b.close());
    const lookup = async () => [{ address: "127.0.0.1", family: 4 as const }, { address: "::1", family: 6 as const }];
    const connector = startConnector(settings([`ws://localhost:${a.port}`], "127.0.0.1:1"), { logger: new LogCapture().logger, lookup });
    cleanup.add(() => connector.stop());
    const [la, lb] = await Promise.all([a.link(), b.link()]);
    expect([la.headers.host, lb.headers.host]).toEqual([`localhost:${a.port}`, `localhost:${a.port}`]);
    await until(() => connector.links.every((l) => l.up), "both up");
    expect(connector.links.map((l) => l.address).sort()).toEqual(["127.0.0.1", "::1"]);
  });

  it("keeps its tunnels when a lookup fails, and dials the name itself until it first resolves", async () => {
    const a = await FakeGateway.start(TOKEN);
    cleanup.add(() => a.close());
    let fail = true;
    const lookup = async () => {
      if (fail) throw Object.assign(new Error("getaddrinfo EAI_AGAIN localhost"), { code: "EAI_AGAIN" });
      return [{ address: "127.0.0.1", family: 4 as const }];
    };
    const logs = new LogCapture();
    const connector = startConnector(settings([`ws://localhost:${a.port}`], "127.0.0.1:1", ["--resolve-interval", "3600"]), { logger: logs.logger, lookup });
    cleanup.add(() => connector.stop());
    // Unresolved: one tunnel that dials the name as given (the system resolver here knows localhost).
    await a.link();
    expect(connector.links).toMatchObject([{ address: null }]);
    fail = false;
    await connector.resolveGateways();
    await a.link(2);
    await until(() => connector.links.length === 1 && connector.links[0]!.address === "127.0.0.1", "the name tunnel replaced");
    await until(() => connector.connected, "the link up");
    fail = true;
    await connector.resolveGateways();
    expect(connector.links).toMatchObject([{ address: "127.0.0.1", up: true, retiring: false }]);
    expect(logs.find((l) => l.msg === "cannot resolve the gateway name; keeping the tunnels as they are").length).toBeGreaterThanOrEqual(2);
  });
});

// A real resolver: only where `localhost` has both an IPv4 and an IPv6 address (not in every container).
const localhost = await systemLookup("localhost").catch(() => []);
const dualStack = localhost.some((a) => a.family === 4) && localhost.some((a) => a.family === 6);
describe.skipIf(!dualStack)(`localhost resolving to ${localhost.map((a) => a.address).join(" and ") || "nothing"}`, () => {
  it("gets a tunnel to each address from the system resolver", async () => {
    const v4 = localhost.find((x) => x.family === 4)!.address;
    const v6 = localhost.find((x) => x.family === 6)!.address;
    const a = await FakeGateway.start(TOKEN, { host: v4 });
    const b = await FakeGateway.start(TOKEN, { host: v6, port: a.port });
    cleanup.add(() => a.close());
    cleanup.add(() => b.close());
    const connector = startConnector(settings([`ws://localhost:${a.port}`], "127.0.0.1:1"), { logger: new LogCapture().logger });
    cleanup.add(() => connector.stop());
    await Promise.all([a.link(), b.link()]);
    expect(connector.links.map((l) => l.address).sort()).toEqual([v4, v6].sort());
  });
});

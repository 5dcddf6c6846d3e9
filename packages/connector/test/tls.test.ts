import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { startConnector } from "../src/index.js";
import { Cleanup, EchoServer, FakeGateway, frameMasks, LogCapture, readAll, tcpOpen, testSettings } from "./helpers.js";

const TOKEN = "tls-token";
const cleanup = new Cleanup();
afterEach(() => cleanup.run());

let dir: string;
let tls: { key: string; cert: string };
beforeAll(() => {
  // A self-signed certificate for 127.0.0.1, as an operator would make for a test gateway.
  dir = mkdtempSync(join(tmpdir(), "gatehouse-tls-"));
  execFileSync("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
    "-subj", "/CN=gatehouse test gateway", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
    "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"),
  ], { stdio: "ignore" });
  tls = { key: readFileSync(join(dir, "key.pem"), "utf8"), cert: readFileSync(join(dir, "cert.pem"), "utf8") };
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("wss:// to a self-signed gateway", () => {
  it("refuses the certificate without --ca and says how to trust it", async () => {
    const gateway = await FakeGateway.start(TOKEN, { tls });
    cleanup.add(() => gateway.close());
    const logs = new LogCapture();
    const connector = startConnector(testSettings(gateway, "127.0.0.1:1"), { logger: logs.logger });
    cleanup.add(() => connector.stop());
    const [failed] = await logs.waitFor((l) => typeof l.msg === "string" && l.msg.startsWith("cannot open the tunnel"));
    expect(failed!.msg).toMatch(/self-signed certificate.*--ca \/ GATEHOUSE_GATEWAY_CA/);
    expect(gateway.links).toHaveLength(0);
  });

  it("connects and relays with the gateway's certificate given as --ca", async () => {
    const gateway = await FakeGateway.start(TOKEN, { tls });
    cleanup.add(() => gateway.close());
    const echo = await EchoServer.start();
    cleanup.add(() => echo.close());
    const settings = testSettings(gateway, `127.0.0.1:${echo.port}`, { argv: ["--ca", join(dir, "cert.pem")] });
    expect(settings.gatewayUrl.protocol).toBe("wss:");
    const connector = startConnector(settings, { logger: new LogCapture().logger });
    cleanup.add(() => connector.stop());
    const link = await gateway.link();
    const { stream } = await link.mux.open(tcpOpen({ host: "127.0.0.1", port: echo.port }));
    const echoed = readAll(stream);
    stream.end("over tls");
    expect((await echoed).toString()).toBe("over tls");
    // Inside TLS masking protects nothing: the connector sends all-zero keys, which spares both ends the XOR.
    const masks = frameMasks(Buffer.concat(link.received));
    expect(masks.length).toBeGreaterThanOrEqual(2);
    for (const mask of masks) expect(mask.toString("hex")).toBe("00000000");
  });

  it("checks the certificate against the gateway's name when it dials an address the name resolved to", async () => {
    const gateway = await FakeGateway.start(TOKEN, { tls });
    cleanup.add(() => gateway.close());
    const base = testSettings(gateway, "127.0.0.1:1", { argv: ["--ca", join(dir, "cert.pem")] });
    const byName = new URL(base.gatewayUrl.href.replace("127.0.0.1", "localhost"));
    const asked: string[] = [];
    const lookup = async (name: string) => (asked.push(name), [{ address: "127.0.0.1", family: 4 as const }]);
    const connector = startConnector({ ...base, gatewayUrl: byName, gatewayUrls: [byName] }, { logger: new LogCapture().logger, lookup });
    cleanup.add(() => connector.stop());
    const link = await gateway.link();
    expect(link.headers.host).toBe(`localhost:${gateway.port}`);
    expect(asked).toEqual(["localhost"]);
  });
});

import { spawn, type ChildProcess } from "node:child_process";
import { EventEmitter, once } from "node:events";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { Writable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { CONNECTOR_HELP, runConnectorCli } from "../src/index.js";
import { Cleanup, EchoServer, FakeGateway, LogCapture, readAll, tcpOpen } from "./helpers.js";

const TOKEN = "cli-token";
const cleanup = new Cleanup();
afterEach(() => cleanup.run());

function sink(): { stream: Writable; text: () => string } {
  let text = "";
  return {
    stream: new Writable({
      write(chunk: Buffer, _enc, cb) {
        text += chunk.toString("utf8");
        cb();
      },
    }),
    text: () => text,
  };
}

describe("runConnectorCli", () => {
  it("prints every option with --help and exits 0", async () => {
    const out = sink();
    const err = sink();
    const code = await runConnectorCli(["--help"], {}, { stdout: out.stream, stderr: err.stream, signals: new EventEmitter() });
    expect(code).toBe(0);
    expect(out.text()).toBe(CONNECTOR_HELP);
    for (const flag of ["--gateway", "--name", "--token", "--token-file", "--allow", "--ca", "--drain-timeout", "--dial-timeout", "--log-level", "--config"]) {
      expect(out.text()).toContain(flag);
    }
    for (const variable of ["GATEHOUSE_GATEWAY_URL", "GATEHOUSE_CONNECTOR_NAME", "GATEHOUSE_CONNECTOR_TOKEN", "GATEHOUSE_CONNECTOR_TOKEN_FILE", "GATEHOUSE_ALLOW", "GATEHOUSE_GATEWAY_CA", "GATEHOUSE_DRAIN_TIMEOUT", "GATEHOUSE_DIAL_TIMEOUT", "GATEHOUSE_LOG_LEVEL", "GATEHOUSE_CONNECTOR_CONFIG"]) {
      expect(out.text()).toContain(variable);
    }
  });

  it("lists the problems and exits 2 on invalid settings", async () => {
    const out = sink();
    const err = sink();
    const code = await runConnectorCli(
      ["--gateway", "ws://gw.example.com"],
      { GATEHOUSE_CONNECTOR_NAME: "dc1" },
      { stdout: out.stream, stderr: err.stream, signals: new EventEmitter() },
    );
    expect(code).toBe(2);
    expect(out.text()).toBe("");
    expect(err.text()).toContain("--gateway: ws:// is unencrypted and only allowed to a loopback host");
    expect(err.text()).toContain("connector token is required");
    expect(err.text()).toContain('--allow / GATEHOUSE_ALLOW / "allow" in the config file is required');
  });

  it("runs until SIGTERM, then drains and resolves 0; a second signal cuts the drain short", async () => {
    const gateway = await FakeGateway.start(TOKEN);
    cleanup.add(() => gateway.close());
    const echo = await EchoServer.start();
    cleanup.add(() => echo.close());
    const signals = new EventEmitter();
    const logs = new LogCapture();
    const env = {
      GATEHOUSE_GATEWAY_URL: gateway.url,
      GATEHOUSE_CONNECTOR_NAME: "dc1",
      GATEHOUSE_CONNECTOR_TOKEN: TOKEN,
      GATEHOUSE_ALLOW: `127.0.0.1:${echo.port}`,
    };
    let exitCode: number | null = null;
    const run = runConnectorCli([], env, { stdout: sink().stream, stderr: sink().stream, signals, logger: logs.logger }).then(
      (c) => (exitCode = c),
    );
    const link = await gateway.link();
    await logs.waitFor((l) => l.msg === "connected to the gateway");
    const { stream } = await link.mux.open(tcpOpen({ host: "127.0.0.1", port: echo.port }));
    stream.on("error", () => {});

    const drainSeen = once(link.mux, "drain");
    signals.emit("SIGTERM", "SIGTERM");
    await drainSeen;
    await new Promise((r) => setTimeout(r, 50));
    expect(exitCode).toBeNull();
    signals.emit("SIGINT", "SIGINT");
    expect(await run).toBe(0);
    expect(logs.find((l) => l.msg === "second signal; closing the open streams now")).toHaveLength(1);
    expect(signals.listenerCount("SIGTERM") + signals.listenerCount("SIGINT")).toBe(0);
  });
});

describe("gatehouse connector as a process", () => {
  it("drains on a real SIGTERM, lets the open stream finish, and exits 0 on its own", async () => {
    const gateway = await FakeGateway.start(TOKEN);
    cleanup.add(() => gateway.close());
    const echo = await EchoServer.start();
    cleanup.add(() => echo.close());
    const tsx = createRequire(import.meta.url).resolve("tsx");
    const child: ChildProcess = spawn(process.execPath, ["--import", tsx, fileURLToPath(new URL("./fixtures/run-cli.ts", import.meta.url))], {
      env: {
        ...process.env,
        GATEHOUSE_GATEWAY_URL: gateway.url,
        GATEHOUSE_CONNECTOR_NAME: "dc1",
        GATEHOUSE_CONNECTOR_TOKEN: TOKEN,
        GATEHOUSE_ALLOW: `127.0.0.1:${echo.port}`,
        GATEHOUSE_DRAIN_TIMEOUT: "20",
      },
      stdio: ["ignore", "pipe", "inherit"],
    });
    cleanup.add(() => child.exitCode === null && child.kill("SIGKILL"));
    let stdout = "";
    child.stdout?.setEncoding("utf8").on("data", (t: string) => (stdout += t));
    const exited = once(child, "exit") as Promise<[number | null, NodeJS.Signals | null]>;

    const link = await gateway.link();
    const { stream } = await link.mux.open(tcpOpen({ host: "127.0.0.1", port: echo.port }, { sessionId: "proc-1" }));
    const drainSeen = once(link.mux, "drain");
    child.kill("SIGTERM");
    await drainSeen;
    const echoed = readAll(stream);
    stream.end("finished during the drain");
    expect((await echoed).toString()).toBe("finished during the drain");

    const started = performance.now();
    const [code, signal] = await exited;
    // It left on its own soon after the last stream, well before the 20 s drain timeout: nothing kept it alive.
    expect(performance.now() - started).toBeLessThan(5000);
    expect({ code, signal }).toEqual({ code: 0, signal: null });
    const lines = stdout.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.map((l) => l.msg)).toEqual(
      expect.arrayContaining(["connector starting", "connected to the gateway", "signal received; draining", "stream closed", "connector stopped"]),
    );
    expect(stdout).not.toContain(TOKEN);
  });
});

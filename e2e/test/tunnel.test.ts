import { createHash, randomBytes } from "node:crypto";
import { connect } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEchoServer } from "../lib/echo-server.js";
import { newToken, runCli, startConnectorProcess, startGatewayProcess, type Proc, type RunningGateway } from "../lib/processes.js";

// The road every protocol travels, with real processes: `gatehouse gateway`,
// `gatehouse connector`, a real TCP target, and the record read back with
// `gatehouse sessions` from the gateway's directory.

interface SessionJson {
  id: string;
  connection: string;
  endReason: string | null;
  endedUs: number | null;
  eventCount: number;
  clientAddress: string | null;
}
interface EventJson {
  seq: number;
  kind: string;
  outcome: string | null;
  details: Record<string, unknown> | null;
}

let gateway: RunningGateway;
let connector: Proc;
let echo: Awaited<ReturnType<typeof startEchoServer>>;
let offList: Awaited<ReturnType<typeof startEchoServer>>;
const credentials = newToken();
const dc2 = newToken();

beforeAll(async () => {
  echo = await startEchoServer();
  offList = await startEchoServer();
  gateway = await startGatewayProcess({
    tunnel: { pingIntervalMs: 1000, deadAfterMs: 3000 },
    connectors: [
      { name: "dc1", tokenSha256: credentials.sha256 },
      { name: "dc2", tokenSha256: dc2.sha256 },
    ],
    connections: [
      { name: "echo", protocol: "tcp", connector: "dc1", listen: "127.0.0.1:0", target: { host: "127.0.0.1", port: echo.port } },
      { name: "echo-dc2", protocol: "tcp", connector: "dc2", listen: "127.0.0.1:0", target: { host: "127.0.0.1", port: echo.port } },
      { name: "off-list", protocol: "tcp", connector: "dc1", listen: "127.0.0.1:0", target: { host: "127.0.0.1", port: offList.port } },
    ],
  });
  connector = await startConnectorProcess({ gateway: gateway.apiUrl, name: "dc1", token: credentials.token, allow: `127.0.0.1:${echo.port}` });
  await gateway.proc.waitFor((l) => l.msg === "connector connected");
});

afterAll(async () => {
  await connector?.stop();
  await gateway?.proc.stop();
  await echo?.close();
  await offList?.close();
});

async function sessionsList(): Promise<SessionJson[]> {
  const out = await runCli(["sessions", "list", "--json"], { cwd: gateway.dir });
  expect(out.stderr).toBe("");
  expect(out.code).toBe(0);
  return JSON.parse(out.stdout) as SessionJson[];
}

async function sessionShow(id: string): Promise<{ session: SessionJson; events: EventJson[] }> {
  const out = await runCli(["sessions", "show", id, "--json"], { cwd: gateway.dir });
  expect(out.code).toBe(0);
  return JSON.parse(out.stdout) as { session: SessionJson; events: EventJson[] };
}

/** Polls the API (cheaper than a CLI process per try), then confirms through the CLI. */
async function waitForEndedSession(connection: string): Promise<SessionJson[]> {
  for (let i = 0; i < 100; i++) {
    const response = await fetch(`${gateway.apiUrl}/api/v1/sessions?connection=${connection}`, { headers: { Authorization: `Bearer ${gateway.adminToken}` } });
    const { sessions } = (await response.json()) as { sessions: SessionJson[] };
    if (sessions.some((s) => s.endedUs !== null)) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const ended = (await sessionsList()).filter((s) => s.connection === connection && s.endedUs !== null);
  if (ended.length === 0) throw new Error(`no ended session for ${connection}`);
  return ended;
}

describe("tunnel end to end", () => {
  it("relays bytes through gateway and connector and records the session", async () => {
    const payload = randomBytes(4 * 1024 * 1024);
    const socket = connect(gateway.tcp.echo!.port, "127.0.0.1");
    const received: Buffer[] = [];
    let receivedBytes = 0;
    const done = new Promise<void>((resolve, reject) => {
      socket.on("data", (chunk: Buffer) => {
        received.push(chunk);
        receivedBytes += chunk.length;
        if (receivedBytes >= payload.length) socket.end();
      });
      socket.on("close", () => resolve());
      socket.on("error", reject);
    });
    socket.write(payload);
    await done;
    const digest = (b: Buffer) => createHash("sha256").update(b).digest("hex");
    expect(receivedBytes).toBe(payload.length);
    expect(digest(Buffer.concat(received))).toBe(digest(payload));

    const [session] = await waitForEndedSession("echo");
    expect(session!.clientAddress).toBe("127.0.0.1");
    const { events } = await sessionShow(session!.id);
    expect(events.map((e) => [e.seq, e.kind, e.outcome])).toEqual([
      [1, "connect", "ok"],
      [2, "disconnect", "ok"],
    ]);
    expect(events[1]!.details).toMatchObject({ bytesUp: payload.length, bytesDown: payload.length });
  });

  it("refuses a target off the connector's allow-list and records why", async () => {
    const socket = connect(gateway.tcp["off-list"]!.port, "127.0.0.1");
    socket.on("error", () => undefined);
    await new Promise((r) => socket.once("close", r));
    const [session] = await waitForEndedSession("off-list");
    const { events } = await sessionShow(session!.id);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ kind: "connect", outcome: "error", details: { code: "target_refused", tunnelCode: "TARGET_NOT_ALLOWED" } });
    expect(String(events[0]!.details!.message)).toContain(`127.0.0.1:${offList.port}`);
  });

  it("shows the last session in a table a person can read", async () => {
    const out = await runCli(["sessions", "show", "--last"], { cwd: gateway.dir });
    expect(out.code).toBe(0);
    expect(out.stdout).toMatch(/^session\s+[0-9a-f-]{36}$/m);
    expect(out.stdout).toContain("connection  off-list (tcp via connector dc1)");
    expect(out.stdout).toMatch(/TARGET_NOT_ALLOWED/);
  });

  it("refuses a connector with the wrong token", async () => {
    const impostor = await startConnectorProcess({ gateway: gateway.apiUrl, name: "dc1", token: "not-the-token", allow: "*:*" });
    try {
      const refused = await gateway.proc.waitFor((l) => l.msg === "connector refused at tunnel upgrade" && l.reason === "wrong token");
      expect(refused.connector).toBe("dc1");
      await impostor.waitFor((l) => /refused the connector token/.test(l.msg));
    } finally {
      await impostor.stop();
    }
  });

  it("tells a connector whose name the gateway does not know so, not that its token was refused", async () => {
    const stranger = await startConnectorProcess({ gateway: gateway.apiUrl, name: "dc9", token: credentials.token, allow: "*:*" });
    try {
      const refused = await gateway.proc.waitFor((l) => l.msg === "connector refused at tunnel upgrade" && l.connector === "dc9");
      expect(refused.reason).toBe('unknown connector "dc9"');
      const logged = await stranger.waitFor((l) => /does not know this connector/.test(l.msg));
      expect(logged).toMatchObject({ level: 50, status: 403 });
      expect(logged.msg).toContain(`unknown connector "dc9": not in the gateway's connectors`);
      expect(stranger.lines.some((l) => /refused the connector token/.test(l.msg))).toBe(false);
    } finally {
      await stranger.stop();
    }
  });

  it("refuses new sessions through a draining connector saying it is draining, not that it is not connected", async () => {
    const draining = await startConnectorProcess({ gateway: gateway.apiUrl, name: "dc2", token: dc2.token, allow: `127.0.0.1:${echo.port}` });
    try {
      await gateway.proc.waitFor((l) => l.msg === "connector connected" && l.connector === "dc2");
      // An open session keeps the connector draining (rather than gone) after SIGTERM.
      const open = connect(gateway.tcp["echo-dc2"]!.port, "127.0.0.1");
      open.on("error", () => undefined);
      await new Promise<void>((res) => {
        open.once("data", () => res());
        open.write("ping");
      });
      draining.child.kill("SIGTERM");
      await gateway.proc.waitFor((l) => l.msg === "connector is draining; no new streams go to it" && l.connector === "dc2");
      const listed = (await (await fetch(`${gateway.apiUrl}/api/v1/connectors`, { headers: { Authorization: `Bearer ${gateway.adminToken}` } })).json()) as { connectors: Array<{ name: string; draining: boolean }> };
      expect(listed.connectors.find((c) => c.name === "dc2")).toMatchObject({ draining: true });

      const refused = connect(gateway.tcp["echo-dc2"]!.port, "127.0.0.1");
      refused.on("error", () => undefined);
      await new Promise((r) => refused.once("close", r));
      const sessions = await waitForEndedSession("echo-dc2");
      const { events } = await sessionShow(sessions[0]!.id);
      expect(events[0]).toMatchObject({ kind: "connect", outcome: "error", details: { code: "connector_unavailable" } });
      expect(String(events[0]!.details!.message)).toBe('connector "dc2" is draining (shutting down) and takes no new sessions');
      open.end();
      expect(await draining.exited).toBe(0);
    } finally {
      await draining.stop();
    }
  });

  it("rejects API calls without the admin token", async () => {
    const response = await fetch(`${gateway.apiUrl}/api/v1/sessions`);
    expect(response.status).toBe(401);
    expect(await response.json()).toMatchObject({ error: { code: "unauthorized" } });
    const health = await fetch(`${gateway.apiUrl}/readyz`);
    const ready = (await health.json()) as { checks: { listeners: Record<string, string> } };
    expect(ready).toMatchObject({ status: "ready", checks: { recording: "ok", store: "ok", config: "loaded" } });
    expect(Object.values(ready.checks.listeners)).toEqual(expect.arrayContaining(["listening"]));
    expect(Object.values(ready.checks.listeners).filter((state) => state !== "listening")).toEqual([]);
  });
});

// RecordedSession.endRelay: the one place a session's disconnect event and end reason are derived
// from how its relay ended, for every protocol's listener. Against the embedded store, end to end
// through the journal and shipper.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { TunnelError } from "@gatehouse/proto";
import { openStore, type Store } from "@gatehouse/store";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { configSchema } from "../config/schema.js";
import { GatewayError } from "../errors.js";
import { startRecording, type Recording } from "../evidence/recording.js";
import { createLogger } from "../logger.js";
import { EVENT_KINDS, isEventKind } from "./event-kinds.js";
import type { RelayEnd } from "./recorder.js";

let store: Store;
let recording: Recording;
let dir: string;

beforeAll(async () => {
  store = await openStore({ memory: true });
  dir = mkdtempSync(join(tmpdir(), "gatehouse-end-relay-"));
  let clockUs = 1_800_000_000_000_000;
  recording = await startRecording({
    dataDir: dir,
    store,
    settings: configSchema.parse({ recording: { mode: "strict" } }).recording,
    clock: () => (clockUs += 7),
    logger: createLogger("fatal"),
    shipper: { retryMinMs: 10, retryMaxMs: 50 },
  });
});

afterAll(async () => {
  await recording.close();
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const meta = { identity: { name: "agent" }, connection: "app", protocol: "tcp", connector: "dc1", clientAddress: "127.0.0.1", clientApplication: null };

async function ended(end: RelayEnd) {
  const session = await recording.recorder.open(meta);
  await session.endRelay(end);
  expect(await recording.shipper.drain(10_000)).toBe(true);
  const found = await store.sessions.get(session.id);
  return { endReason: found!.session.endReason, disconnect: found!.events.at(-1)! };
}

const clean = { bytesUp: 3, bytesDown: 5, endedBy: "client" as const, shutdown: false };

describe("endRelay", () => {
  it("records the disconnect (bytes, who ended it) and closes as <side>_closed", async () => {
    const { endReason, disconnect } = await ended(clean);
    expect(endReason).toBe("client_closed");
    expect(disconnect).toMatchObject({ kind: "disconnect", outcome: "ok", details: { bytesUp: 3, bytesDown: 5, endedBy: "client" } });
    expect((await ended({ ...clean, endedBy: "resource" })).endReason).toBe("resource_closed");
  });

  it("a stopping gateway ends it as gateway_shutdown, unless the client had said goodbye", async () => {
    const { endReason, disconnect } = await ended({ ...clean, endedBy: "resource", shutdown: true });
    expect(endReason).toBe("gateway_shutdown");
    expect(disconnect.details).toMatchObject({ endedBy: "gateway" });
    const goodbye = await ended({ ...clean, endedBy: "resource", shutdown: true, clientSaidGoodbye: true });
    expect(goodbye.endReason).toBe("client_closed");
    expect(goodbye.disconnect.details).toMatchObject({ endedBy: "client" });
  });

  it("names the error: recording unavailable, protocol violation, connector lost, anything else", async () => {
    const unavailable = new GatewayError("RECORDING_UNAVAILABLE", "journal full", { recording: { reason: "journal_full" } });
    expect((await ended({ ...clean, error: unavailable, violation: "up" })).endReason).toBe("recording_unavailable");
    expect((await ended({ ...clean, error: new Error("bad frame"), violation: "down" })).endReason).toBe("protocol_violation");
    const lost = await ended({ ...clean, endedBy: "resource", error: new TunnelError("LINK_CLOSED", "link closed") });
    expect(lost.endReason).toBe("connector_lost");
    expect(lost.disconnect).toMatchObject({ outcome: "error", details: { error: "link closed" } });
    expect((await ended({ ...clean, error: new Error("ECONNRESET") })).endReason).toBe("error");
  });
});

describe("event kinds", () => {
  it("is the closed vocabulary of docs/architecture.md, snake_case, without duplicates", () => {
    expect(new Set(EVENT_KINDS).size).toBe(EVENT_KINDS.length);
    for (const kind of EVENT_KINDS) expect(kind).toMatch(/^[a-z]+(_[a-z]+)*$/);
    expect(isEventKind("disconnect")).toBe(true);
    expect(isEventKind("COM_QUERY")).toBe(false);
  });
});

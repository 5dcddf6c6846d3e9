// The evidence routes of a whole gateway in-process (embedded store): the checkpoint chain as the
// API serves it, with the gateway's own head, and retention signed and applied by the gateway that
// holds the store. No connector or listener beyond the API is needed.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiClient } from "../src/cli/api-client.js";
import { validateConfig } from "../src/config/load.js";
import { readAdminToken } from "../src/data-dir.js";
import { readSigningKey, parsePublicKeys } from "../src/evidence/signing.js";
import { verifyCheckpoints } from "../src/evidence/verify-checkpoints.js";
import { startGateway, type Gateway } from "../src/gateway.js";
import { createLogger } from "../src/logger.js";

let dir: string;
let gateway: Gateway;
let api: ApiClient;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "gatehouse-evidence-api-"));
  const dataDir = join(dir, "data");
  gateway = await startGateway(validateConfig({ dataDir, listen: { api: "127.0.0.1:0" } }), { logger: createLogger("fatal") });
  api = new ApiClient({ url: gateway.apiUrl, token: readAdminToken(dataDir) });
});

afterAll(async () => {
  await gateway?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const post = async (path: string, body: unknown) => {
  const response = await fetch(`${gateway.apiUrl}${path}`, { method: "POST", headers: { Authorization: `Bearer ${readAdminToken(join(dir, "data"))}`, "Content-Type": "application/json" }, body: JSON.stringify(body) });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
};

describe("evidence API", () => {
  it("signs and applies retention on the embedded store, and serves the chain with its head", async () => {
    const old = Date.UTC(2020, 0, 10) * 1000;
    await gateway.store.record({
      sessions: [{ id: "old-session", identity: { name: "agent-2020" }, connection: "app", protocol: "postgres", startedUs: old }],
      events: [{ sessionId: "old-session", seq: 1, timeUs: old + 1, kind: "query", command: "select 'long ago'" }],
      closes: [{ id: "old-session", endedUs: old + 2, endReason: "client_closed" }],
    });
    const cutoffUs = Date.now() * 1000 - 365 * 86_400_000_000;
    const dry = await api.retention(cutoffUs, true);
    expect(dry.dropped.map((p) => p.name)).toEqual(["events_y2020m01"]);
    expect(dry).toMatchObject({ sessionsDeleted: 1 });
    expect(dry.checkpoint).toBeUndefined();
    expect(await gateway.store.sessions.get("old-session")).not.toBeNull();

    const done = await api.retention(cutoffUs, false);
    expect(done).toMatchObject({ sessionsDeleted: 1, checkpoint: { kind: "retention", sessionId: null, details: { cutoffUs, horizonUs: Date.UTC(2020, 1, 1) * 1000 } } });
    expect(await gateway.store.sessions.get("old-session")).toBeNull();

    const page = await api.checkpointPage(undefined, 1000);
    const key = readSigningKey(join(dir, "data"))!;
    expect(page.head).toEqual({ gateway: key.keyId, seq: done.checkpoint!.seq, hash: done.checkpoint!.hash });
    expect(page.checkpoints.map((c) => c.kind)).toEqual(["state", "retention"]);
    const report = verifyCheckpoints({ stored: page.checkpoints, heads: [page.head!], sessions: new Map(), complete: true, keys: parsePublicKeys(key.publicKeyPem, "test") });
    expect([...report.chainFailures, ...report.sessionFailures]).toEqual([]);
    expect((await api.checkpointPage({ gateway: key.keyId, seq: 1 }, 10)).checkpoints.map((c) => c.seq)).toEqual([2]);
  });

  it("refuses a retention cut that makes no sense, and a bad page position", async () => {
    const now = Date.now() * 1000;
    expect(await post("/api/v1/checkpoints/retention", { cutoffUs: now - 10, horizonUs: now })).toMatchObject({ status: 400, body: { error: { code: "bad_request" } } });
    expect(await post("/api/v1/checkpoints/retention", { cutoffUs: now + 86_400_000_000, horizonUs: now })).toMatchObject({ status: 400 });
    // Younger than recording.minRetentionDays (default 30): not signed, whoever asks.
    const tooRecent = await post("/api/v1/checkpoints/retention", { cutoffUs: now - 29 * 86_400_000_000, horizonUs: now - 40 * 86_400_000_000 });
    expect(tooRecent).toMatchObject({ status: 400, body: { error: { message: expect.stringContaining("recording.minRetentionDays (30)") } } });
    expect(await post("/api/v1/retention", { cutoffUs: now - 86_400_000_000, dryRun: true })).toMatchObject({ status: 400 });
    expect(await post("/api/v1/retention", { cutoffUs: "yesterday" })).toMatchObject({ status: 400, body: { error: { message: "cutoffUs: expected µs since the epoch" } } });
    const response = await fetch(`${gateway.apiUrl}/api/v1/checkpoints?after=nope`, { headers: { Authorization: `Bearer ${readAdminToken(join(dir, "data"))}` } });
    expect(response.status).toBe(400);
  });
});

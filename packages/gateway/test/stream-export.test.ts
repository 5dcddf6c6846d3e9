// The read side of recorded streams through a whole gateway in-process (embedded store): the API
// route, `gatehouse sessions export` writing a file `asciinema cat` plays, and `gatehouse verify`
// through the API catching an edited chunk.
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { sessionsCommand } from "../src/cli/sessions-command.js";
import { verifyCommand } from "../src/cli/verify-command.js";
import { configSchema } from "../src/config/schema.js";
import { validateConfig } from "../src/config/load.js";
import { readAdminToken } from "../src/data-dir.js";
import { startRecording, type Recording } from "../src/evidence/recording.js";
import { startGateway, type Gateway } from "../src/gateway.js";
import { createLogger } from "../src/logger.js";

let dir: string;
let gateway: Gateway;
let recording: Recording;
let sessionId: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "gatehouse-stream-export-"));
  gateway = await startGateway(validateConfig({ dataDir: join(dir, "data"), listen: { api: "127.0.0.1:0" } }), { logger: createLogger("fatal") });
  mkdirSync(join(dir, "recorder"));
  // A second recorder writing into the gateway's store, as its SSH listener will (keys in their own directory).
  recording = await startRecording({ dataDir: join(dir, "recorder"), store: gateway.store, settings: configSchema.parse({}).recording, clock: () => Date.now() * 1000, logger: createLogger("fatal") });
  const session = await recording.recorder.open({ identity: { name: "agent" }, connection: "web1", protocol: "ssh" });
  const stream = session.openStream({ kind: "shell", channel: 0, capBytes: 1 << 20, term: "xterm", cols: 100, rows: 30 });
  await stream.input(Buffer.from("uptime\r"));
  stream.output(Buffer.from("up 3 days, load average: 0.42\r\n"));
  await session.record({ kind: "shell", outcome: "ok", details: { stream: stream.end() } });
  await session.close("client_closed");
  expect(await recording.shipper.drain(10_000)).toBe(true);
  sessionId = session.id;
});

afterAll(async () => {
  await recording?.close();
  await gateway?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function cli(command: typeof sessionsCommand, argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = "";
  let err = "";
  stdout.on("data", (d: Buffer) => (out += d.toString()));
  stderr.on("data", (d: Buffer) => (err += d.toString()));
  const env = { GATEHOUSE_ADMIN_TOKEN: readAdminToken(join(dir, "data")) };
  const code = await command({ argv: [...argv, "--gateway", gateway.apiUrl], env, stdout, stderr });
  return { code, out, err };
}

describe("stream export", () => {
  it("writes asciicast that asciinema plays, and jsonl with every chunk", async () => {
    const file = join(dir, "session.cast");
    expect((await cli(sessionsCommand, ["export", sessionId, "--format", "asciicast", "--out", file])).code).toBe(0);
    const [header] = readFileSync(file, "utf8").split("\n");
    expect(JSON.parse(header!)).toMatchObject({ version: 2, width: 100, height: 30, env: { TERM: "xterm" } });
    const played = execFileSync("script", ["-qec", `asciinema cat ${file}`, "/dev/null"], { encoding: "utf8" });
    expect(played).toContain("load average: 0.42");

    const { out } = await cli(sessionsCommand, ["export", sessionId, "--format", "jsonl", "--stream", "1"]);
    const lines = out.trimEnd().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines[0]).toMatchObject({ format: "gatehouse-stream-v1", sessionId, streamId: 1, summary: { chunks: 3, bytesIn: 7 } });
    expect(lines.slice(1).map((l) => [l["direction"], Buffer.from(l["data"] as string, "base64").toString()])).toEqual([
      ["r", "100x30"],
      ["i", "uptime\r"],
      ["o", "up 3 days, load average: 0.42\r\n"],
    ]);
    await expect(cli(sessionsCommand, ["export", sessionId, "--stream", "7"])).rejects.toThrow(/404.*no stream 7/);
  });

  it("verify through the API passes, then names an edited chunk", async () => {
    const pem = join(dir, "recorder", "signing-key.pem");
    const publicKey = join(dir, "public.pem");
    const { createPublicKey } = await import("node:crypto");
    const { writeFileSync } = await import("node:fs");
    writeFileSync(publicKey, createPublicKey(readFileSync(pem)).export({ type: "spki", format: "pem" }));
    // The session is ok; the gateway's own checkpoint chain is under a key not given here, hence "1 ok" rather than exit 0.
    const clean = await cli(verifyCommand, [sessionId, "--public-key", publicKey]);
    expect(clean.out + clean.err).toContain("1 ok");
    await gateway.store.sql.query("update stream_chunks set data = convert_to('uptime; rm -rf /', 'UTF8') where session_id = $1 and seq = 2", [sessionId]);
    const { code, out } = await cli(verifyCommand, [sessionId, "--public-key", publicKey]);
    expect(code).toBe(1);
    expect(out).toContain(`FAIL  ${sessionId}  stream 1 chunk 2  edited`);
  });
});

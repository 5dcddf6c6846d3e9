// `gatehouse events search` and `gatehouse sessions list` with the search filters, against a whole
// gateway in-process (embedded store): the question "every DROP or TRUNCATE copilot-agent ran last
// week, and whether it succeeded" as one command, the table, --json, --all, and usage errors.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SessionEvent } from "@gatehouse/store";
import { eventsCommand } from "../src/cli/events-command.js";
import { sessionsCommand } from "../src/cli/sessions-command.js";
import { UsageError, type CommandContext } from "../src/cli/command.js";
import { validateConfig } from "../src/config/load.js";
import { startGateway, type Gateway } from "../src/gateway.js";
import { createLogger } from "../src/logger.js";

const SECOND = 1_000_000;
const NOW = Math.floor(Date.now() / 1000) * SECOND;
const DAY = 86_400 * SECOND;

let gateway: Gateway;
let dir: string;
let adminToken: string;

const ev = (sessionId: string, seq: number, ago: number, command: string, rest: Partial<SessionEvent> = {}): SessionEvent => ({ sessionId, seq, timeUs: NOW - ago, kind: "query", command, outcome: "ok", ...rest });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "gatehouse-events-cli-"));
  gateway = await startGateway(validateConfig({ dataDir: join(dir, "data"), listen: { api: "127.0.0.1:0" } }), { logger: createLogger("fatal"), onAdminTokenGenerated: (token) => (adminToken = token) });
  const session = (id: string, identity: string, ago: number) => ({ id, identity: { name: identity }, connection: "app", protocol: "postgres", startedUs: NOW - ago });
  await gateway.store.record({
    sessions: [session("last-month", "copilot-agent", 30 * DAY), session("s1", "copilot-agent", 3 * DAY), session("s2", "copilot-agent", 2 * DAY), session("other", "alice", DAY)],
    events: [
      ev("last-month", 1, 30 * DAY - SECOND, "DROP TABLE ancient"),
      ev("s1", 1, 3 * DAY - SECOND, "select count(*) from users"),
      ev("s1", 2, 3 * DAY - 2 * SECOND, "DROP TABLE users", { outcome: "error", details: { sqlstate: "42501", message: "must be owner of table users" } }),
      ev("s2", 1, 2 * DAY - SECOND, "TRUNCATE audit_log"),
      ev("s2", 2, 2 * DAY - 2 * SECOND, `drop table if exists ${"very_long_name_".repeat(20)}`),
      ev("other", 1, DAY - SECOND, "truncate alice_scratch"),
    ],
  });
});

afterAll(async () => {
  await gateway?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function run(command: (ctx: CommandContext) => Promise<number>, argv: string[], columns?: number): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const out = Object.assign(new Writable({ write: (chunk: Buffer, _encoding, done) => ((stdout += chunk.toString()), done()) }), columns === undefined ? {} : { columns });
  const err = new Writable({ write: (chunk: Buffer, _encoding, done) => ((stderr += chunk.toString()), done()) });
  const env = { GATEHOUSE_GATEWAY_URL: gateway.apiUrl, GATEHOUSE_ADMIN_TOKEN: adminToken };
  const code = await command({ argv, stdout: out, stderr: err, env });
  return { code, stdout, stderr };
}

const QUESTION = ["search", "--identity", "copilot-agent", "--since", "7d", "--text", "drop", "--text", "truncate"];

describe("gatehouse events search", () => {
  it("answers every DROP or TRUNCATE copilot-agent ran last week, and how each ended, in one command", async () => {
    const { code, stdout, stderr } = await run(eventsCommand, QUESTION, 120);
    expect(code).toBe(0);
    expect(stderr).toBe("");
    const lines = stdout.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^TIME \(UTC\)\s+IDENTITY\s+CONNECTION\s+KIND\s+OUTCOME\s+COMMAND$/);
    expect(lines).toHaveLength(4);
    expect(lines[1]).toMatch(/copilot-agent\s+app\s+query\s+ok\s+drop table if exists very_long_name_.*…$/);
    expect(lines[2]).toMatch(/copilot-agent\s+app\s+query\s+ok\s+TRUNCATE audit_log$/);
    expect(lines[3]).toMatch(/copilot-agent\s+app\s+query\s+error 42501\s+DROP TABLE users$/);
    // The long command is cut to the terminal's width.
    expect(Math.max(...lines.map((l) => l.length))).toBeLessThanOrEqual(120);
    expect(stdout).not.toContain("ancient"); // last month
    expect(stdout).not.toContain("alice_scratch"); // another identity
  });

  it("prints the API's JSON with --json", async () => {
    const { stdout } = await run(eventsCommand, [...QUESTION, "--json"]);
    const answer = JSON.parse(stdout) as { events: Array<{ sessionId: string; seq: number; identity: string; outcome: string }>; nextCursor: string | null };
    expect(answer.events.map((e) => [e.sessionId, e.seq, e.identity, e.outcome])).toEqual([
      ["s2", 2, "copilot-agent", "ok"],
      ["s2", 1, "copilot-agent", "ok"],
      ["s1", 2, "copilot-agent", "error"],
    ]);
    expect(answer.nextCursor).toBeNull();
  });

  it("pages: the next page's cursor on stderr, or every page with --all", async () => {
    const first = await run(eventsCommand, ["search", "--limit", "2", "--json"]);
    const page = JSON.parse(first.stdout) as { events: Array<{ sessionId: string; seq: number }>; nextCursor: string };
    expect(page.events.map((e) => `${e.sessionId}#${e.seq}`)).toEqual(["other#1", "s2#2"]);
    const table = await run(eventsCommand, ["search", "--limit", "2"]);
    expect(table.stderr).toContain(`--cursor ${page.nextCursor}`);
    const second = await run(eventsCommand, ["search", "--limit", "2", "--cursor", page.nextCursor, "--json"]);
    expect((JSON.parse(second.stdout) as typeof page).events.map((e) => `${e.sessionId}#${e.seq}`)).toEqual(["s2#1", "s1#2"]);
    const all = await run(eventsCommand, ["search", "--limit", "2", "--all", "--json"]);
    const everything = JSON.parse(all.stdout) as { events: Array<{ sessionId: string; seq: number }>; nextCursor: null };
    expect(everything.events.map((e) => `${e.sessionId}#${e.seq}`)).toEqual(["other#1", "s2#2", "s2#1", "s1#2", "s1#1", "last-month#1"]);
    expect(everything.nextCursor).toBeNull();
  });

  it("names the flag of a bad value before asking the gateway", async () => {
    await expect(run(eventsCommand, ["search", "--exit-status", "one"])).rejects.toThrow(new UsageError('--exit-status: expected an integer exit status such as 1, got "one"'));
    await expect(run(eventsCommand, ["search", "--outcome", "failed"])).rejects.toThrow(/^--outcome: expected one of ok, error, denied/);
    await expect(run(eventsCommand, ["search", "--kind", "select"])).rejects.toThrow(/^--kind: /);
    await expect(run(eventsCommand, ["search", "--all", "--cursor", "e.x"])).rejects.toThrow(/--all or --cursor/);
    await expect(run(eventsCommand, ["find"])).rejects.toThrow(/unknown events subcommand/);
    expect((await run(eventsCommand, ["search", "--help"])).stdout).toContain("--text drop --text truncate");
  });
});

describe("gatehouse sessions list with the search filters", () => {
  it("lists the sessions with a matching event", async () => {
    const { stdout } = await run(sessionsCommand, ["list", "--text", "truncate", "--json"]);
    expect((JSON.parse(stdout) as Array<{ id: string }>).map((s) => s.id)).toEqual(["other", "s2"]);
    const errors = await run(sessionsCommand, ["list", "--identity", "copilot-agent", "--sqlstate", "42501", "--json"]);
    expect((JSON.parse(errors.stdout) as Array<{ id: string }>).map((s) => s.id)).toEqual(["s1"]);
    await expect(run(sessionsCommand, ["list", "--http-status", "9000"])).rejects.toThrow(/^--http-status: /);
  });
});

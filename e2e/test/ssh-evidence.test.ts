import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it as vitestIt } from "vitest";
import { tempDir } from "../lib/processes.js";
import type { Recorded } from "../lib/postgres-stack.js";
import { runSsh, spawnSsh, ssh, SshTerminal } from "../lib/ssh-clients.js";
import { gatewaySpeaksSsh, NO_SSH_GATEWAY, remoteDir, startSshStack, type SshStack } from "../lib/ssh-stack.js";
import { eventually, queryStore, startStorePostgres, type StorePostgres } from "./evidence-support.js";

// The record of SSH sessions holds up as evidence, by the method of the
// Postgres and MySQL evidence tests: a shell's terminal stream exports as
// asciicast v2 that the real `asciinema` plays; `gatehouse verify` passes on
// SSH sessions (events and streams); and with the store down mid-session
// (strict recording: each command durable in the journal first), commands
// keep running over one multiplexed ssh connection and arrive once, in order,
// and verify when the store is back.

const speaksSsh = await gatewaySpeaksSsh();
// Without SSH in the gateway yet, every case here stays in place as a todo naming what it waits for.
const it = speaksSsh ? vitestIt : (name: string, _fn: unknown) => vitestIt.todo(`${name} [${NO_SSH_GATEWAY}]`);

let storePg: StorePostgres;
let stack: SshStack;
let storeUrl: string;

beforeAll(async () => {
  if (!speaksSsh) return;
  storePg = await startStorePostgres();
  const admin = await storePg.admin();
  await admin.query("create database gatehouse");
  await admin.end();
  storeUrl = storePg.url("gatehouse");
  stack = await startSshStack({ storeUrl, recording: { mode: "strict" } });
});

afterAll(async () => {
  await stack?.stop();
  storePg?.destroy();
});

/** The newest ended session on `shell` started since `sinceUs` with an event of `kind`. */
async function sessionSince(sinceUs: number, kind: string): Promise<Recorded> {
  return eventually(`an ended ssh session with a ${kind} event`, async () => {
    const sessions = await stack.waitForSessions((s) => s.connection === "shell" && s.startedUs >= sinceUs);
    return sessions.find((s) => s.events.some((e) => e.kind === kind));
  });
}

async function verifyAll(): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return stack.cli(["verify", "--all", "--store-url", storeUrl, "--public-key", await stack.publicKeyFile()]);
}

describe("SSH sessions as evidence", () => {
  it("a shell in a terminal: `gatehouse sessions export ID --format asciicast` plays with asciinema, showing what the terminal showed", async () => {
    const since = Date.now() * 1000;
    const terminal = new SshTerminal(stack.endpoint({ alias: "cast" }), { cols: 120, rows: 40 });
    try {
      await terminal.waitFor(/^\S*[$#]\s*$/m); // the prompt first
      terminal.type("echo cast-$((6*7))");
      await terminal.waitFor(/^(?:\S*[$#] )?cast-42\s*$/m);
      terminal.resize(100, 30);
      await new Promise((r) => setTimeout(r, 300));
      terminal.type("stty size");
      await terminal.waitFor(/^(?:\S*[$#] )?30 100\s*$/m);
      terminal.type("exit");
      expect(await terminal.waitForExit()).toBe(0);
    } finally {
      terminal.close();
    }
    const recorded = await sessionSince(since, "shell");
    const file = join(tempDir("gatehouse-e2e-cast-"), "session.cast");
    const exported = await stack.cli(["sessions", "export", recorded.session.id, "--format", "asciicast", "--out", file]);
    expect(exported.stderr).toBe("");
    expect(exported.code).toBe(0);
    const [header, ...lines] = readFileSync(file, "utf8").trimEnd().split("\n");
    expect(JSON.parse(header!)).toMatchObject({ version: 2, width: 120, height: 40 });
    const frames = lines.map((l) => JSON.parse(l) as [number, string, string]);
    // Time only moves forward; the output holds what the user saw; the resize is there.
    expect(frames.every(([t], i) => i === 0 || t >= frames[i - 1]![0])).toBe(true);
    expect(frames.filter(([, type]) => type === "o").map(([, , data]) => data).join("")).toContain("cast-42");
    expect(frames).toContainEqual([expect.any(Number), "r", "100x30"]);
    // The real player accepts it (asciinema cat wants a terminal: `script` gives it one).
    const played = spawnSync("script", ["-q", "-e", "-c", `asciinema cat ${file}`, "/dev/null"], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    expect(played.status).toBe(0);
    expect(played.stdout).toContain("cast-42");
    expect(played.stdout).toMatch(/30 100/);
  });

  it("gatehouse verify passes on SSH sessions (exec, shell, sftp)", async () => {
    const e = stack.endpoint({ alias: "verify" });
    expect((await ssh(e, "echo verify-me")).stdout).toBe("verify-me\n");
    const dir = remoteDir("gatehouse-e2e-verify-");
    const up = await runSsh("scp", ["-q", "/etc/hostname", `${e.alias}:${dir}/copied`], e);
    expect(up.code).toBe(0);
    await stack.sessionWith("verify-me");
    await stack.sessionWith(`${dir}/copied`);
    const verify = await verifyAll();
    expect(verify.stderr).toBe("");
    expect(verify.code).toBe(0);
    expect(verify.stdout).toMatch(/sessions? verified from the store: \d+ ok, 0 failed/);
  });

  it("the store goes away mid-session: 60 commands over one multiplexed connection keep running; afterwards all arrive once, in order, and verify", async () => {
    const e = stack.endpoint({ alias: "outage" });
    const control = join(tempDir("gatehouse-e2e-cm-"), "cm");
    const mux = ["-o", `ControlPath=${control}`];
    // One ssh connection (one gateway session) that later `ssh` runs reuse as channels.
    const master = spawnSsh("ssh", ["-N", "-o", "ControlMaster=yes", ...mux, e.alias], e);
    let masterErr = "";
    master.stderr!.setEncoding("utf8").on("data", (t: string) => (masterErr += t));
    try {
      await eventually("the control master", async () => (existsSync(control) ? true : master.exitCode !== null ? Promise.reject(new Error(masterErr)) : undefined), 20_000);
      const run = (command: string) => ssh(e, command, { args: ["-o", "ControlMaster=no", ...mux] });
      for (let i = 1; i <= 3; i++) expect((await run(`echo warmup-${i}`)).stdout).toBe(`warmup-${i}\n`);
      storePg.stop();
      const answers: string[] = [];
      for (let i = 1; i <= 60; i++) answers.push((await run(`echo outage-${i}`)).stdout);
      expect(answers).toEqual(Array.from({ length: 60 }, (_, i) => `outage-${i + 1}\n`));
      await stack.gateway.proc.waitFor((l) => l.msg === "the store refused a batch; the journal keeps it and shipping is retried");
      await runSsh("ssh", ["-O", "exit", ...mux, e.alias], e);
    } finally {
      master.kill("SIGTERM");
    }
    storePg.start();
    const session = await eventually(
      "the multiplexed session closed in the store",
      async () => {
        const rows = await queryStore<{ id: string; event_count: number; end_reason: string | null; protocol: string }>(
          storeUrl,
          "select s.id, s.event_count::int as event_count, s.end_reason, s.protocol from sessions s join events e on e.session_id = s.id where e.command = 'echo outage-1'",
        );
        return rows[0]?.end_reason ? rows[0] : undefined;
      },
      60_000,
    );
    expect(session.protocol).toBe("ssh");
    const events = await queryStore<{ seq: number; kind: string; command: string | null }>(storeUrl, "select seq::int as seq, kind, command from events where session_id = $1 order by seq, ts", [session.id]);
    expect(events.map((ev) => ev.seq)).toEqual(events.map((_, i) => i + 1)); // gap-free, no seq twice
    expect(events).toHaveLength(session.event_count);
    const execs = events.filter((ev) => ev.kind === "exec" && /^echo (warmup|outage)-\d+$/.test(ev.command ?? "")).map((ev) => ev.command);
    expect(execs).toEqual([...[1, 2, 3].map((i) => `echo warmup-${i}`), ...Array.from({ length: 60 }, (_, i) => `echo outage-${i + 1}`)]);
    await stack.gateway.proc.waitFor((l) => l.msg === "the store is back; shipping the journal again", 60_000);
    const verify = await verifyAll();
    expect(verify.stderr).toBe("");
    expect(verify.code).toBe(0);
  });
});

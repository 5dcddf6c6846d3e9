import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync, existsSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { connect } from "node:net";
import { join, relative } from "node:path";
import { afterAll, beforeAll, describe, expect, it as vitestIt } from "vitest";
import { freePort } from "../lib/postgres-server.js";
import { tempDir } from "../lib/processes.js";
import type { EventJson, Recorded } from "../lib/postgres-stack.js";
import { runSsh, spawnSsh, ssh, SshTerminal, type SshEndpoint } from "../lib/ssh-clients.js";
import { gatewaySpeaksSsh, IDENTITY, remoteDir, NO_SSH_GATEWAY, startSshResource, startSshStack, type SshStack } from "../lib/ssh-stack.js";

// The OpenSSH clients an SRE uses — ssh with a command, an interactive ssh -tt
// in a terminal, scp (SFTP and legacy -O), sftp -b, rsync -e ssh, ssh -L —
// run the same way against sshd directly and through gateway + connector: what
// the user sees must not differ, and through the gateway the record names who
// ran what, with its outcome. The sshd is the same machine, so "remote" paths
// are temporary directories here.

interface Path {
  name: string;
  /** The client's endpoint (through the gateway: agent@shell with the registered key). */
  endpoint: () => SshEndpoint;
  /** Through the gateway: the ended session with an event naming `marker`. */
  recorded?: (marker: string) => Promise<Recorded>;
  /** Through the gateway: the stack, to check its processes. */
  stack?: () => SshStack;
}

const speaksSsh = await gatewaySpeaksSsh();

let directStop: (() => Promise<void>) | undefined;
let directEndpoint: SshEndpoint;
let stack: SshStack | undefined;

const paths: Path[] = [
  { name: "directly", endpoint: () => directEndpoint },
  { name: "through the gateway", endpoint: () => stack!.endpoint({ alias: "gw" }), recorded: (marker) => stack!.sessionWith(marker), stack: () => stack! },
];

/** A shell prompt alone on its line (sh's "$ ", bash's "user@host:~$ "), as tmux shows it (trailing spaces cut). */
const PROMPT = /^\S*[$#]\s*$/m;

const sha256 = (data: Buffer) => createHash("sha256").update(data).digest("hex");

/** Every file under `dir` (relative path → sha256 of its contents), to compare trees. */
function tree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const full = join(d, entry.name);
      if (entry.isDirectory()) walk(full);
      else out[relative(dir, full)] = sha256(readFileSync(full));
    }
  };
  walk(dir);
  return out;
}

function kinds(recorded: Recorded, kind: string): EventJson[] {
  return recorded.events.filter((e) => e.kind === kind);
}

for (const path of paths) {
  describe(`OpenSSH clients ${path.name}`, () => {
    const gateway = path.recorded !== undefined;
    // Through a gateway without SSH yet: each case stays in place as a todo naming what it waits for.
    const it = gateway && !speaksSsh ? Object.assign((name: string, _fn: unknown) => vitestIt.todo(`${name} [${NO_SSH_GATEWAY}]`), { todo: vitestIt.todo }) : vitestIt;

    beforeAll(async () => {
      if (gateway && !speaksSsh) return;
      if (gateway) stack = await startSshStack();
      else {
        const resource = await startSshResource();
        directStop = resource.stop;
        directEndpoint = resource.direct();
      }
    });

    afterAll(async () => {
      if (gateway) await stack?.stop();
      else await directStop?.();
    });

    it("ssh HOST 'cmd': stdout, stderr and the exit code are the command's; through the gateway the record holds the command line and its exit status", async () => {
      const marker = `exec_${randomBytes(4).toString("hex")}`;
      const command = `echo out-${marker}; echo err-${marker} >&2; exit 3`;
      const out = await ssh(path.endpoint(), command);
      expect(out.stdout).toBe(`out-${marker}\n`);
      expect(out.stderr).toBe(`err-${marker}\n`);
      expect(out.code).toBe(3);

      // stdin reaches the command, and EOF ends it.
      const input = randomBytes(150_000).toString("base64");
      const counted = await ssh(path.endpoint(), `wc -c; echo stdin-${marker}`, { input });
      expect(counted.stdout).toBe(`${input.length}\nstdin-${marker}\n`);
      expect(counted.code).toBe(0);

      // A command killed by a signal: ssh exits 255, like OpenSSH does.
      const killed = await ssh(path.endpoint(), `echo killed-${marker}; kill -KILL $$`);
      expect(killed.stdout).toBe(`killed-${marker}\n`);
      expect(killed.code).toBe(255);

      if (!gateway) return;
      const recorded = await path.recorded!(`out-${marker}`);
      expect(recorded.session).toMatchObject({ identity: { name: IDENTITY }, connection: "shell", protocol: "ssh", connector: "dc1", clientAddress: "127.0.0.1" });
      expect(recorded.events.at(0)?.kind).toBe("connect");
      expect(recorded.events.at(-1)?.kind).toBe("disconnect");
      const exec = kinds(recorded, "exec").find((e) => e.command === command);
      expect(exec).toMatchObject({ outcome: "error", details: expect.objectContaining({ exitStatus: 3 }) });
      expect(exec!.durationUs).toBeGreaterThan(0);
      const stdin = kinds(await path.recorded!(`stdin-${marker}`), "exec").find((e) => e.command === `wc -c; echo stdin-${marker}`);
      expect(stdin).toMatchObject({ outcome: "ok", details: expect.objectContaining({ exitStatus: 0, bytesIn: input.length }) });
      const signalled = kinds(await path.recorded!(`killed-${marker}`), "exec").find((e) => e.command?.startsWith(`echo killed-${marker}`));
      expect(signalled).toMatchObject({ outcome: "error", details: expect.objectContaining({ exitSignal: expect.stringMatching(/KILL/) }) });
    });

    it("ssh -tt in a terminal (tmux): type a command and see its output, resize the window and stty size follows, exit with a status", async () => {
      const terminal = new SshTerminal(path.endpoint(), { cols: 120, rows: 40 });
      const marker = `shell_${randomBytes(4).toString("hex")}`;
      try {
        // The shell's prompt first (keys typed before it are echoed twice, once by the tty, once by the shell).
        await terminal.waitFor(PROMPT);
        terminal.type(`echo ${marker}-$((6*7))`);
        await terminal.waitFor(new RegExp(`^(?:\\S*[$#] )?${marker}-42\\s*$`, "m"));
        terminal.type("stty size");
        await terminal.waitFor(/^(?:\S*[$#] )?40 120\s*$/m);
        terminal.resize(100, 30);
        // The resize reaches the remote pty as a window-change; wait for the shell to be redrawn, then ask.
        await new Promise((r) => setTimeout(r, 300));
        terminal.type(`stty size; echo sized-${marker}`);
        await terminal.waitFor(new RegExp(`^(?:\\S*[$#] )?30 100\\s*\\n(?:\\S*[$#] )?sized-${marker}`, "m"));
        await terminal.waitFor(new RegExp(`sized-${marker}\\s*\\n\\S*[$#]\\s*$`, "m"));
        terminal.type("exit 7");
        expect(await terminal.waitForExit()).toBe(7);
      } finally {
        terminal.close();
      }
      if (!gateway) return;
      const recorded = await path.recorded!(marker);
      const shell = kinds(recorded, "shell");
      expect(shell).toHaveLength(1);
      expect(shell[0]!.details).toMatchObject({ exitStatus: 7 });
      expect(JSON.stringify(shell[0]!.details)).toMatch(/120/); // the pty's first size
      // The typed lines, best effort: plain typing is the case the heuristic must get.
      const typed = kinds(recorded, "shell_input").map((e) => e.command);
      expect(typed).toContain(`echo ${marker}-$((6*7))`);
      expect(typed).toContain(`stty size; echo sized-${marker}`);
    });

    for (const legacy of [false, true]) {
      it(`scp${legacy ? " -O (the legacy scp protocol: an exec of scp -t / scp -f)" : " (SFTP, OpenSSH 9's default)"} both ways: the copies equal the original`, async () => {
        const local = tempDir("gatehouse-e2e-scp-local-");
        const remote = remoteDir("gatehouse-e2e-scp-remote-");
        const marker = `scp_${legacy ? "O" : "sftp"}_${randomBytes(4).toString("hex")}`;
        const original = randomBytes(3 * 1024 * 1024 + 17);
        writeFileSync(join(local, `${marker}.bin`), original);
        const flags = legacy ? ["-O", "-q"] : ["-q"];
        const up = await runSsh("scp", [...flags, join(local, `${marker}.bin`), `${path.endpoint().alias}:${remote}/`], path.endpoint());
        expect(up.stderr).toBe("");
        expect(up.code).toBe(0);
        expect(sha256(readFileSync(join(remote, `${marker}.bin`)))).toBe(sha256(original));
        const down = await runSsh("scp", [...flags, `${path.endpoint().alias}:${remote}/${marker}.bin`, join(local, "back.bin")], path.endpoint());
        expect(down.stderr).toBe("");
        expect(down.code).toBe(0);
        expect(sha256(readFileSync(join(local, "back.bin")))).toBe(sha256(original));
        if (!gateway) return;
        if (legacy) {
          // Two sessions (one per scp run), each an exec of the remote scp: -t (sink) up, -f (source) down.
          const execs = await eventuallyFound(async () => {
            const sessions = await stack!.waitForSessions((s) => s.connection === "shell");
            const found = sessions.flatMap((s) => kinds(s, "exec")).filter((e) => e.command?.includes(remote));
            return found.length >= 2 ? found : undefined;
          }, `the two scp -O execs naming ${remote}`);
          const upload = execs.find((e) => scpMode(e.command) === "t");
          expect(upload).toMatchObject({ outcome: "ok", details: expect.objectContaining({ exitStatus: 0 }) });
          expect(upload!.details?.bytesIn).toBeGreaterThanOrEqual(original.length);
          const download = execs.find((e) => scpMode(e.command) === "f");
          expect(download).toMatchObject({ outcome: "ok", command: expect.stringContaining(`${remote}/${marker}.bin`) });
          expect(download!.details?.bytesOut).toBeGreaterThanOrEqual(original.length);
        } else {
          const recorded = await path.recorded!(`${remote}/${marker}.bin`);
          expect(kinds(recorded, "subsystem").map((e) => e.command)).toContain("sftp");
          const opened = kinds(recorded, "sftp").filter((e) => e.command?.startsWith(`open ${remote}/${marker}.bin`));
          expect(opened.length).toBeGreaterThanOrEqual(1);
          // File contents are not stored; the bytes on the handle are counted.
          const closed = kinds(recorded, "sftp").find((e) => e.command?.startsWith(`close ${remote}/${marker}.bin`));
          expect(JSON.stringify(closed?.details)).toContain(String(original.length));
        }
      });
    }

    it("sftp -b: put, get, mkdir, rename, rm do what they say; through the gateway each operation is an sftp event", async () => {
      const local = tempDir("gatehouse-e2e-sftp-local-");
      const remote = remoteDir("gatehouse-e2e-sftp-remote-");
      const marker = `sftp_${randomBytes(4).toString("hex")}`;
      const content = randomBytes(200_000);
      writeFileSync(join(local, "put.bin"), content);
      const batch = join(local, "batch");
      writeFileSync(
        batch,
        [`mkdir ${remote}/${marker}`, `put ${join(local, "put.bin")} ${remote}/${marker}/a.bin`, `rename ${remote}/${marker}/a.bin ${remote}/${marker}/b.bin`, `get ${remote}/${marker}/b.bin ${join(local, "got.bin")}`, `put ${join(local, "put.bin")} ${remote}/${marker}/c.bin`, `rm ${remote}/${marker}/c.bin`, ""].join("\n"),
      );
      const out = await runSsh("sftp", ["-q", "-b", batch, path.endpoint().alias], path.endpoint());
      expect(out.stderr).toBe("");
      expect(out.code).toBe(0);
      expect(readdirSync(join(remote, marker))).toEqual(["b.bin"]);
      expect(sha256(readFileSync(join(local, "got.bin")))).toBe(sha256(content));
      // A failing command stops a batch with exit 1, as sftp(1) says.
      writeFileSync(batch, `rm ${remote}/${marker}/no-such-file\nmkdir ${remote}/${marker}/never\n`);
      const failed = await runSsh("sftp", ["-q", "-b", batch, path.endpoint().alias], path.endpoint());
      expect(failed.code).toBe(1);
      expect(existsSync(join(remote, marker, "never"))).toBe(false);
      if (!gateway) return;
      const recorded = await path.recorded!(`mkdir ${remote}/${marker}`);
      const ops = kinds(recorded, "sftp").map((e) => e.command ?? "");
      expect(ops).toContain(`mkdir ${remote}/${marker}`);
      expect(ops.some((c) => c.startsWith(`open ${remote}/${marker}/a.bin`) && /write/.test(c))).toBe(true);
      expect(ops).toContain(`rename ${remote}/${marker}/a.bin ${remote}/${marker}/b.bin`);
      expect(ops.some((c) => c.startsWith(`open ${remote}/${marker}/b.bin`) && /read/.test(c))).toBe(true);
      expect(ops).toContain(`remove ${remote}/${marker}/c.bin`);
      const refused = await path.recorded!(`remove ${remote}/${marker}/no-such-file`);
      expect(kinds(refused, "sftp").find((e) => e.command === `remove ${remote}/${marker}/no-such-file`)).toMatchObject({ outcome: "error" });
    });

    it("rsync -e ssh: a tree copied there and back is equal", async () => {
      const source = tempDir("gatehouse-e2e-rsync-src-");
      const remote = remoteDir("gatehouse-e2e-rsync-remote-");
      const back = tempDir("gatehouse-e2e-rsync-back-");
      for (let i = 0; i < 20; i++) {
        mkdirSync(join(source, `dir${i % 4}`), { recursive: true });
        writeFileSync(join(source, `dir${i % 4}`, `file${i}.bin`), randomBytes(1000 * (i + 1)));
      }
      writeFileSync(join(source, "empty"), "");
      // Into a directory of the login user's own (rsync -a sets the top directory's permissions too).
      const up = await runSsh("rsync", ["-a", `${source}/`, `${path.endpoint().alias}:${remote}/tree/`], path.endpoint());
      expect(up.stderr).toBe("");
      expect(up.code).toBe(0);
      expect(tree(join(remote, "tree"))).toEqual(tree(source));
      const down = await runSsh("rsync", ["-a", `${path.endpoint().alias}:${remote}/tree/`, `${back}/`], path.endpoint());
      expect(down.code).toBe(0);
      expect(tree(back)).toEqual(tree(source));
      expect(statSync(join(back, "empty")).size).toBe(0);
      if (!gateway) return;
      const recorded = await path.recorded!(remote);
      expect(kinds(recorded, "exec").some((e) => /^rsync --server/.test(e.command ?? "") && e.outcome === "ok")).toBe(true);
    });

    it("ssh -L to a local HTTP server: a request through the forward gets its answer; through the gateway a port_forward event names the destination", async () => {
      const marker = `fwd_${randomBytes(4).toString("hex")}`;
      const http: Server = createServer((req, res) => res.end(`hello ${marker} ${req.url}`));
      await new Promise<void>((r) => http.listen(0, "127.0.0.1", r));
      const httpPort = (http.address() as { port: number }).port;
      const localPort = await freePort();
      const forward = spawnSsh("ssh", ["-N", "-o", "ExitOnForwardFailure=yes", "-L", `127.0.0.1:${localPort}:127.0.0.1:${httpPort}`, path.endpoint().alias], path.endpoint());
      let stderr = "";
      forward.stderr!.setEncoding("utf8").on("data", (t: string) => (stderr += t));
      try {
        await waitForPort(localPort, () => `ssh -L exited (${forward.exitCode}): ${stderr}`, () => forward.exitCode !== null);
        const response = await fetch(`http://127.0.0.1:${localPort}/path-${marker}`);
        expect(response.status).toBe(200);
        expect(await response.text()).toBe(`hello ${marker} /path-${marker}`);
      } finally {
        forward.kill("SIGTERM");
        await new Promise((r) => forward.once("exit", r));
        await new Promise((r) => http.close(r));
      }
      if (!gateway) return;
      const recorded = await eventuallyFound(async () => {
        const sessions = await stack!.waitForSessions((s) => s.connection === "shell");
        return sessions.find((s) => kinds(s, "port_forward").some((e) => JSON.stringify(e).includes(String(httpPort))));
      }, `a session with a port_forward to ${httpPort}`);
      expect(recorded).toBeDefined();
      const forwarded = kinds(recorded!, "port_forward")[0]!;
      expect(forwarded.command ?? JSON.stringify(forwarded.details)).toContain(`127.0.0.1:${httpPort}`);
      expect(forwarded.durationUs).toBeGreaterThan(0);
    });

    it("a 1 GiB transfer killed midway (the client is killed): nothing is left running, and the next ssh works", async () => {
      const size = 1024 * 1024 * 1024;
      const marker = `big_${randomBytes(4).toString("hex")}`;
      const command = `echo ${marker} >&2; head -c ${size} /dev/zero`;
      const client = spawnSsh("ssh", [path.endpoint().alias, command], path.endpoint());
      let received = 0;
      const enough = new Promise<void>((resolve, reject) => {
        client.stdout!.on("data", (chunk: Buffer) => {
          received += chunk.length;
          if (received >= 64 * 1024 * 1024) resolve();
        });
        client.once("exit", (code) => reject(new Error(`ssh exited (${code}) after ${received} bytes`)));
      });
      await enough;
      client.kill("SIGKILL");
      expect(received).toBeLessThan(size);
      // sshd's side of it ends: no `head -c 1073741824 /dev/zero` is left behind.
      await eventually(() => !runningCommands().some((c) => c.includes(`head -c ${size} /dev/zero`)), 20_000, () => `a head -c ${size} is still running:\n${runningCommands().filter((c) => c.includes("head -c")).join("\n")}`);
      const after = await ssh(path.endpoint(), `echo after-${marker}`);
      expect(after.stdout).toBe(`after-${marker}\n`);
      if (!gateway) return;
      const recorded = await path.recorded!(command);
      expect(recorded.session.endedUs).not.toBeNull();
      const exec = kinds(recorded, "exec").find((e) => e.command === command)!;
      expect(exec.details?.bytesOut).toBeGreaterThan(0);
      expect(exec.details?.bytesOut).toBeLessThan(size);
      expect(stack!.gateway.proc.child.exitCode).toBeNull();
      expect(stack!.connector.child.exitCode).toBeNull();
    });
  });
}

/** The command lines of every process on the machine (reading /proc via ps; nothing is signalled). */
function runningCommands(): string[] {
  return execFileSync("ps", ["-eo", "args="], { encoding: "utf8" }).split("\n");
}

async function eventuallyFound<T>(find: () => Promise<T | undefined>, what: string, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await find();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error(`not found: ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function eventually(check: () => boolean, timeoutMs: number, message: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(message());
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Resolves once something accepts connections on 127.0.0.1:`port`. */
async function waitForPort(port: number, why: () => string, gaveUp: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect({ host: "127.0.0.1", port }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.on("error", () => resolve(false));
    });
    if (open) return;
    if (gaveUp() || Date.now() > deadline) throw new Error(why());
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * "t" for a remote scp sink (an upload), "f" for a source (a download), from the flags before the
 * path: the path itself may hold "-t" (a temporary directory's random suffix starting with t).
 */
function scpMode(command: string | null): "t" | "f" | undefined {
  const flags: string[] = [];
  for (const word of (command ?? "").split(/\s+/).slice(1)) {
    if (word === "--" || !word.startsWith("-")) break;
    flags.push(word.slice(1));
  }
  if (!(command ?? "").startsWith("scp ")) return undefined;
  if (flags.some((f) => f.includes("t"))) return "t";
  if (flags.some((f) => f.includes("f"))) return "f";
  return undefined;
}

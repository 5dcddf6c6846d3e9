import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "./processes.js";
import type { RunResult } from "./postgres-stack.js";

// The OpenSSH clients (ssh, scp, sftp, rsync -e ssh) as a user runs them
// against an endpoint — the resource's sshd directly, or the gateway in front
// of it — each from an `ssh_config` file of its own (`-F`), so nothing on the
// machine (~/.ssh/config, known_hosts, an agent) changes what the test sees:
// strict host-key checking against a known_hosts file holding only the
// endpoint's key, one identity file or one password, never a prompt.

/** A place an ssh client can log in to, written out as one `Host` block. */
export interface SshEndpoint {
  label: "direct" | "gateway";
  /** The Host alias the clients are given (`ssh ALIAS`). */
  alias: string;
  host: string;
  port: number;
  /** The login name: the resource's user (direct), IDENTITY@CONNECTION (gateway). */
  user: string;
  /** A `[host]:port keytype base64` line: the only key the client accepts from the endpoint. */
  knownHostsLine: string;
  /** Log in with this private key (public-key authentication only)… */
  identityFile?: string;
  /** …or with this password (given by SSH_ASKPASS, password or keyboard-interactive), never both. */
  password?: string;
  /** The `ssh_config` file for this endpoint (written by `sshEndpoint`). */
  configFile: string;
}

// One directory for the clients' files: an empty HOME (ssh reads ~/.ssh on its own otherwise) and the askpass script.
const clientHome = tempDir("gatehouse-e2e-ssh-home-");
const askpass = join(clientHome, "askpass.sh");
// SSH_ASKPASS is run with the prompt as its argument; the answer is the password in the environment.
writeFileSync(askpass, `#!/bin/sh\nprintf '%s\\n' "$GATEHOUSE_E2E_SSH_PASSWORD"\n`);
chmodSync(askpass, 0o700);

/** Writes the endpoint's known_hosts and `ssh_config` files and returns the endpoint. */
export function sshEndpoint(e: Omit<SshEndpoint, "configFile">): SshEndpoint {
  if ((e.identityFile === undefined) === (e.password === undefined)) throw new Error("an ssh endpoint needs an identity file or a password (one of them)");
  const dir = tempDir(`gatehouse-e2e-ssh-${e.alias}-`);
  const knownHosts = join(dir, "known_hosts");
  writeFileSync(knownHosts, `${e.knownHostsLine}\n`);
  const configFile = join(dir, "ssh_config");
  const auth = e.identityFile
    ? [`IdentityFile ${e.identityFile}`, "IdentitiesOnly yes", "PreferredAuthentications publickey", "BatchMode yes"]
    : // BatchMode would turn off SSH_ASKPASS too; one prompt, and no keys from anywhere.
      ["PubkeyAuthentication no", "PreferredAuthentications password,keyboard-interactive", "NumberOfPasswordPrompts 1"];
  const lines = [
    `Host ${e.alias}`,
    `  HostName ${e.host}`,
    `  Port ${e.port}`,
    `  User ${e.user}`,
    `  UserKnownHostsFile ${knownHosts}`,
    "  GlobalKnownHostsFile /dev/null",
    "  StrictHostKeyChecking yes",
    "  CheckHostIP no",
    "  UpdateHostKeys no",
    "  IdentityAgent none",
    "  ForwardAgent no",
    "  ForwardX11 no",
    "  ConnectTimeout 20",
    "  ServerAliveInterval 5",
    "  LogLevel ERROR",
    ...auth.map((l) => `  ${l}`),
  ];
  writeFileSync(configFile, `${lines.join("\n")}\n`);
  return { ...e, configFile };
}

/** The environment every client runs in: the empty HOME, no agent, the askpass for password endpoints. */
export function sshEnv(e: SshEndpoint): Record<string, string> {
  return {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: clientHome,
    LANG: "C.UTF-8",
    ...(e.password === undefined ? {} : { SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: "force", GATEHOUSE_E2E_SSH_PASSWORD: e.password, DISPLAY: ":0" }),
  };
}

/** `ssh -F CONFIG` with these options, for rsync's `-e` and anything else that takes an ssh command line. */
export function sshCommandLine(e: SshEndpoint): string {
  return `ssh -F ${shellQuote(e.configFile)}`;
}

export function spawnSsh(command: "ssh" | "scp" | "sftp" | "rsync", args: string[], e: SshEndpoint, stdio: "pipe" | "ignore-out" = "pipe"): ChildProcess {
  const config = command === "rsync" ? ["-e", sshCommandLine(e)] : ["-F", e.configFile];
  return spawn(command, [...config, ...args], { stdio: ["pipe", stdio === "pipe" ? "pipe" : "ignore", "pipe"], env: sshEnv(e) });
}

/** Runs one of the clients to completion (SIGKILLed after `timeoutMs`). */
export function runSsh(command: "ssh" | "scp" | "sftp" | "rsync", args: string[], e: SshEndpoint, options: { input?: string | Buffer; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawnSsh(command, args, e);
    let stdout = "";
    let stderr = "";
    child.stdout!.setEncoding("utf8").on("data", (t: string) => (stdout += t));
    child.stderr!.setEncoding("utf8").on("data", (t: string) => (stderr += t));
    const timer = setTimeout(() => child.kill("SIGKILL"), options.timeoutMs ?? 60_000);
    child.once("error", reject);
    child.once("close", (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    child.stdin!.on("error", () => undefined);
    child.stdin!.end(options.input ?? "");
  });
}

/** `ssh ALIAS COMMAND`. */
export function ssh(e: SshEndpoint, command: string, options: { input?: string | Buffer; args?: string[]; timeoutMs?: number } = {}): Promise<RunResult> {
  return runSsh("ssh", [...(options.args ?? []), e.alias, command], e, options);
}

/**
 * An interactive `ssh -tt` in a detached tmux pane on a tmux server of its own (`-L`), so the
 * remote shell gets a real terminal: typed keys, its size, and resizes (SIGWINCH → window-change).
 */
export class SshTerminal {
  private readonly socket = `gatehouse-e2e-ssh-${randomBytes(4).toString("hex")}`;
  private readonly statusFile: string;

  constructor(readonly endpoint: SshEndpoint, size: { cols: number; rows: number } = { cols: 120, rows: 40 }) {
    const env = sshEnv(endpoint);
    // ssh's exit status goes to a file: tmux's own #{pane_dead_status} was sometimes empty for a dead pane.
    this.statusFile = join(tempDir("gatehouse-e2e-ssh-tty-"), "status");
    const ssh = ["ssh", "-tt", "-F", endpoint.configFile, endpoint.alias].map(shellQuote).join(" ");
    const command = `${ssh}; echo $? > ${shellQuote(this.statusFile)}`;
    // The pane's environment is the tmux server's, which starts with ours; -e sets it on the session too.
    // remain-on-exit: once ssh exits, its last words (and its exit status) stay for the test to read.
    const started = this.tmux(
      ["new-session", "-d", "-s", "e2e", "-x", String(size.cols), "-y", String(size.rows), ...Object.entries(env).flatMap(([k, v]) => ["-e", `${k}=${v}`]), command, ";", "set-option", "-t", "e2e", "remain-on-exit", "on"],
      env,
    );
    if (started.status !== 0) throw new Error(`tmux new-session failed: ${started.stderr}`);
  }

  private tmux(args: string[], env: Record<string, string> = sshEnv(this.endpoint)) {
    return spawnSync("tmux", ["-L", this.socket, "-f", "/dev/null", ...args], { encoding: "utf8", env });
  }

  /** Types `text` (literally) and presses Enter. */
  type(text: string): void {
    // A trailing ";" would be tmux's own command separator: it goes as a key code.
    const body = text.endsWith(";") ? text.slice(0, -1) : text;
    if (body) this.tmux(["send-keys", "-t", "e2e", "-l", body]);
    if (body !== text) this.tmux(["send-keys", "-t", "e2e", "-H", "3b"]);
    this.tmux(["send-keys", "-t", "e2e", "Enter"]);
  }

  /** Resizes the tmux window: the pane's terminal changes size, as when a user drags a window. */
  resize(cols: number, rows: number): void {
    const out = this.tmux(["resize-window", "-t", "e2e", "-x", String(cols), "-y", String(rows)]);
    if (out.status !== 0) throw new Error(`tmux resize-window failed: ${out.stderr}`);
  }

  screen(): string {
    return this.tmux(["capture-pane", "-p", "-t", "e2e", "-S", "-200"]).stdout;
  }

  /** The exit status of ssh once it has exited, else null. */
  exitStatus(): number | null {
    if (!existsSync(this.statusFile)) return null;
    const text = readFileSync(this.statusFile, "utf8").trim();
    return text === "" ? null : Number(text);
  }

  /** Polls the screen until `pattern` shows (throws with the screen after `timeoutMs`). */
  async waitFor(pattern: RegExp, timeoutMs = 20_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const screen = this.screen();
      if (pattern.test(screen)) return screen;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern} on the ssh screen:\n${screen}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Polls until ssh has exited; its exit status. */
  async waitForExit(timeoutMs = 20_000): Promise<number> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const status = this.exitStatus();
      if (status !== null) return status;
      if (Date.now() > deadline) throw new Error(`ssh did not exit; the screen:\n${this.screen()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  close(): void {
    this.tmux(["kill-server"]);
  }
}

export function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

// Real processes, started the way a user starts them: the built `gatehouse`
// CLI with a config file, and a connector with GATEHOUSE_* variables.

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
export const CLI = join(REPO_ROOT, "packages/cli/dist/main.js");

/**
 * Extra node flags for the gateway and connector processes (space-separated),
 * e.g. GATEHOUSE_NODE_FLAGS="--cpu-prof --cpu-prof-dir=/tmp/prof" to profile
 * them under a benchmark. Unset: none.
 */
const NODE_FLAGS = (process.env.GATEHOUSE_NODE_FLAGS ?? "").split(/\s+/).filter(Boolean);

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

/** A child process whose stdout JSON log lines are collected and can be awaited. */
export class Proc {
  readonly lines: LogLine[] = [];
  stderr = "";
  private readonly waiters: Array<{ match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }> = [];
  readonly exited: Promise<number | null>;

  constructor(readonly child: ChildProcess, readonly name: string) {
    let buffered = "";
    child.stdout!.setEncoding("utf8").on("data", (text: string) => {
      buffered += text;
      let nl: number;
      while ((nl = buffered.indexOf("\n")) >= 0) {
        const raw = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        let line: LogLine;
        try {
          line = JSON.parse(raw) as LogLine;
        } catch {
          line = { level: 30, msg: raw };
        }
        this.lines.push(line);
        for (const w of [...this.waiters]) {
          if (w.match(line)) {
            this.waiters.splice(this.waiters.indexOf(w), 1);
            w.resolve(line);
          }
        }
      }
    });
    child.stderr!.setEncoding("utf8").on("data", (text: string) => (this.stderr += text));
    this.exited = new Promise((res) => child.once("exit", (code) => res(code)));
  }

  /** Resolves with the first log line (past or future) that matches. */
  waitFor(match: (line: LogLine) => boolean, timeoutMs = 20_000): Promise<LogLine> {
    const seen = this.lines.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`${this.name}: timed out waiting for a log line; stderr:\n${this.stderr}\nlast lines:\n${this.lines.slice(-10).map((l) => JSON.stringify(l)).join("\n")}`)), timeoutMs);
      this.waiters.push({ match, resolve: (l) => (clearTimeout(timer), res(l)) });
      void this.exited.then((code) => {
        clearTimeout(timer);
        rej(new Error(`${this.name} exited (${code}) before the awaited log line; stderr:\n${this.stderr}`));
      });
    });
  }

  async stop(signal: NodeJS.Signals = "SIGTERM", timeoutMs = 10_000): Promise<number | null> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.child.exitCode;
    this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill("SIGKILL"), timeoutMs);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }
}

/**
 * Installs the `gatehouse` command the way the README says (scripts/install.sh)
 * into PREFIX/bin of a fresh directory, and returns that bin directory, to put
 * first on a test's PATH.
 */
export function installGatehouse(prefix = tempDir("gatehouse-prefix-")): string {
  execFileSync("bash", [join(REPO_ROOT, "scripts/install.sh"), prefix], { stdio: ["ignore", "ignore", "pipe"] });
  return join(prefix, "bin");
}

export function tempDir(prefix = "gatehouse-e2e-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export function newToken(): { token: string; sha256: string } {
  const token = randomBytes(24).toString("base64url");
  return { token, sha256: createHash("sha256").update(token).digest("hex") };
}

export interface RunningGateway {
  proc: Proc;
  dir: string;
  apiUrl: string;
  adminToken: string;
  tcp: Record<string, { host: string; port: number }>;
}

/**
 * Writes `config` (YAML is a superset of JSON) into a fresh directory and runs `gatehouse gateway` there.
 * `startTimeoutMs`: how long to wait for "gateway started" (a fresh embedded store takes a while on a busy machine).
 */
export async function startGatewayProcess(config: Record<string, unknown>, dir = tempDir(), startTimeoutMs = 90_000, args: string[] = []): Promise<RunningGateway> {
  const file = join(dir, "gatehouse.yaml");
  writeFileSync(file, JSON.stringify({ listen: { api: "127.0.0.1:0" }, ...config }, null, 2));
  const child = spawn(process.execPath, [...NODE_FLAGS, CLI, "gateway", "--config", file, "--log-level", "debug", ...args], { cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
  const proc = new Proc(child, "gateway");
  const started = await proc.waitFor((l) => l.msg === "gateway started", startTimeoutMs);
  const adminToken = readFileSync(join(dir, "data", "admin-token"), "utf8").trim();
  return { proc, dir, apiUrl: started.apiUrl as string, adminToken, tcp: started.tcp as RunningGateway["tcp"] };
}

export async function startConnectorProcess(env: { gateway: string; name: string; token: string; allow: string; extra?: Record<string, string> }): Promise<Proc> {
  const child = spawn(process.execPath, [...NODE_FLAGS, CLI, "connector"], {
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      ...process.env,
      GATEHOUSE_GATEWAY_URL: env.gateway,
      GATEHOUSE_CONNECTOR_NAME: env.name,
      GATEHOUSE_CONNECTOR_TOKEN: env.token,
      GATEHOUSE_ALLOW: env.allow,
      GATEHOUSE_LOG_LEVEL: "debug",
      ...env.extra,
    },
  });
  return new Proc(child, `connector ${env.name}`);
}

/** Runs the CLI to completion. */
export function runCli(args: string[], options: { cwd: string; env?: Record<string, string> }): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res) => {
    const child = spawn(process.execPath, [CLI, ...args], { cwd: options.cwd, env: { ...process.env, ...options.env }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (t: string) => (stdout += t));
    child.stderr.setEncoding("utf8").on("data", (t: string) => (stderr += t));
    child.once("exit", (code) => res({ code, stdout, stderr }));
  });
}

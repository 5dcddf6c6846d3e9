import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { clientEnv, cliArgs, runClient, type MysqlEndpoint } from "./mysql-stack.js";
import type { RunResult } from "./postgres-stack.js";

// The MySQL command-line clients as a user runs them against an endpoint
// (direct or through the gateway): mariadb, mariadb-dump, mysqlslap, and an
// interactive mariadb in a tmux pane for what only a terminal does (Ctrl-C).

/** `mariadb` in batch mode (tab-separated, no column names) with `args` after the connection options. */
export function mariadb(e: MysqlEndpoint, args: string[], options: { input?: string; tls?: boolean; timeoutMs?: number } = {}): Promise<RunResult> {
  return runClient("mariadb", [...cliArgs(e, { tls: options.tls ?? false }), "--batch", "--skip-column-names", ...args], {
    env: clientEnv(e),
    ...(options.input === undefined ? {} : { input: options.input }),
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
  });
}

/** `mariadb-dump` of the endpoint's database (the connection, through the gateway). */
export function mariadbDump(e: MysqlEndpoint, args: string[] = []): Promise<RunResult> {
  return runClient("mariadb-dump", [...cliArgs(e, { database: false }), ...args, e.database], { env: clientEnv(e), timeoutMs: 120_000 });
}

/**
 * A dump with what differs between two dumps of the same data masked: the client's version
 * banner, the host/database line (the gateway's address and the connection name instead of the
 * server's), the server version line, and the completion date.
 */
export function maskDump(dump: string): string {
  return dump
    .replace(/^-- MariaDB dump .*$/m, "-- MariaDB dump (masked)")
    .replace(/^-- Host: .*$/m, "-- Host: (masked)")
    .replace(/^-- Server version\t.*$/m, "-- Server version (masked)")
    .replace(/^-- Dump completed on .*$/m, "-- Dump completed on (masked)");
}

export interface SlapResult extends RunResult {
  /** "Average number of seconds to run all queries". */
  averageSeconds: number;
  clients: number;
  queriesPerClient: number;
}

/** mysqlslap running `query` `queries` times over `concurrency` clients, `iterations` times, in the endpoint's database. */
export async function mysqlslap(e: MysqlEndpoint, o: { query: string; concurrency: number; queries: number; iterations?: number }): Promise<SlapResult> {
  const out = await runClient(
    "mysqlslap",
    [...cliArgs(e, { database: false }), `--create-schema=${e.database}`, `--query=${o.query}`, `--concurrency=${o.concurrency}`, `--number-of-queries=${o.queries}`, `--iterations=${o.iterations ?? 1}`],
    { env: clientEnv(e), timeoutMs: 120_000 },
  );
  const number = (label: string) => Number(new RegExp(`${label}: ([\\d.]+)`).exec(out.stdout)?.[1]);
  return { ...out, averageSeconds: number("Average number of seconds to run all queries"), clients: number("Number of clients running queries"), queriesPerClient: number("Average number of queries per client") };
}

/**
 * An interactive `mariadb` in a detached tmux pane on a server of its own (`-L`), so keys
 * (Ctrl-C included) reach it as from a terminal. `screen()` is what the pane shows.
 */
export class MariadbTerminal {
  private readonly socket = `gatehouse-e2e-${randomBytes(4).toString("hex")}`;

  constructor(readonly endpoint: MysqlEndpoint, options: { tls?: boolean } = {}) {
    const env = clientEnv(endpoint);
    const command = ["mariadb", ...cliArgs(endpoint, { tls: options.tls ?? false })].map(shellQuote).join(" ");
    // The pane's environment is the tmux server's, which starts with ours; -e sets it on the session too.
    // remain-on-exit: if the client exits, its last words stay on the screen for the failure message.
    const started = this.tmux(
      ["new-session", "-d", "-s", "e2e", "-x", "200", "-y", "50", ...Object.entries(env).flatMap(([k, v]) => ["-e", `${k}=${v}`]), command, ";", "set-option", "-t", "e2e", "remain-on-exit", "on"],
      env,
    );
    if (started.status !== 0) throw new Error(`tmux new-session failed: ${started.stderr}`);
  }

  private tmux(args: string[], env: Record<string, string> = clientEnv(this.endpoint)) {
    return spawnSync("tmux", ["-L", this.socket, "-f", "/dev/null", ...args], { encoding: "utf8", env });
  }

  /** Types `text` and presses Enter. */
  type(text: string): void {
    // tmux takes an argument ending in ";" as its own command separator: the semicolon goes as a key code.
    const body = text.endsWith(";") ? text.slice(0, -1) : text;
    if (body) this.tmux(["send-keys", "-t", "e2e", "-l", body]);
    if (body !== text) this.tmux(["send-keys", "-t", "e2e", "-H", "3b"]);
    this.tmux(["send-keys", "-t", "e2e", "Enter"]);
  }

  /** Presses Ctrl-C. */
  interrupt(): void {
    this.tmux(["send-keys", "-t", "e2e", "C-c"]);
  }

  screen(): string {
    return this.tmux(["capture-pane", "-p", "-t", "e2e", "-S", "-200"]).stdout;
  }

  /** Polls the screen until `pattern` shows (throws with the screen after `timeoutMs`). */
  async waitFor(pattern: RegExp, timeoutMs = 20_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const screen = this.screen();
      if (pattern.test(screen)) return screen;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern} on the mariadb screen:\n${screen}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  close(): void {
    this.tmux(["kill-server"]);
  }
}

function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

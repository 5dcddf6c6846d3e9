import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { repoPath } from "./repo.js";

// Runs the built `gatehouse` command (packages/cli/dist/main.js, what the Docker image puts on PATH),
// so a command line in a deployment file is checked against the real dispatcher and the real flag
// parsers rather than against a list kept in a test.

const CLI = repoPath("packages", "cli", "dist", "main.js");

export interface CliRun {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function runGatehouse(args: readonly string[], env: Record<string, string> = {}): CliRun {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "pnpm build" first`);
  // A clean environment: the machine's GATEHOUSE_* variables must not change what is checked.
  const run = spawnSync(process.execPath, [CLI, ...args], {
    encoding: "utf8",
    timeout: 30_000,
    env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "/tmp", ...env },
  });
  return { status: run.status, stdout: run.stdout, stderr: run.stderr };
}

/**
 * Whether `gatehouse ARGS…` names a real subcommand with flags it accepts: the same line with `--help`
 * added must print that subcommand's usage and exit 0 (an unknown command, subcommand or flag exits 2).
 * Returns the problem, or null.
 */
export function commandLineProblem(args: readonly string[]): string | null {
  if (args.length === 0) return "no subcommand (the image's entrypoint is `gatehouse`, which then only prints its help)";
  const run = runGatehouse([...args, "--help"]);
  if (run.status === 0 && /^Usage:/m.test(run.stdout) && run.stdout.includes(`gatehouse ${args[0]}`)) return null;
  const why = (run.stderr || run.stdout).trim().split("\n")[0] ?? "";
  return `\`gatehouse ${args.join(" ")}\` is not a valid command line (exit ${String(run.status)}: ${why})`;
}

/**
 * Real legacy scp traffic without sshd: `scp -O -S fake-ssh.sh` runs the "remote" `scp -t/-f`
 * locally through stdio-tap.mjs, which logs both directions in the order they passed.
 */
import { execFile } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import type { CapturedChunk } from "./sftp-capture.js";
import { readTapLog } from "./sftp-capture.js";

const run = promisify(execFile);
const FAKE_SSH = fileURLToPath(new URL("./fake-ssh.sh", import.meta.url));

export function scpAvailable(): boolean {
  return existsSync("/usr/bin/scp");
}

export interface ScpCapture {
  readonly chunks: CapturedChunk[];
  /** The command line scp ran "remotely" (`scp -t /dir`). */
  readonly command: string;
  readonly exitCode: number;
  readonly stderr: string;
}

/** Runs `scp -O -S fake-ssh.sh ARGS` in `cwd`; remote paths are written `localhost:/path`. */
export async function captureScp(cwd: string, args: readonly string[], name = "scp"): Promise<ScpCapture> {
  const log = join(cwd, `${name}.log`);
  writeFileSync(log, "");
  let exitCode = 0;
  let stderr = "";
  try {
    ({ stderr } = await run("scp", ["-O", "-S", FAKE_SSH, ...args], { cwd, env: { ...process.env, TAP_LOG: log, TAP_NODE: process.execPath } }));
  } catch (error) {
    const failed = error as { code?: number; stderr?: string };
    exitCode = failed.code ?? 1;
    stderr = failed.stderr ?? "";
  }
  return { chunks: readTapLog(readFileSync(log)), command: readFileSync(`${log}.cmd`, "utf8"), exitCode, stderr };
}

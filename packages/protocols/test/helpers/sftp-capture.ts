/**
 * Real SFTP traffic without sshd: `sftp -D` runs the server itself over stdio; our tap
 * (stdio-tap.mjs) sits between them, relays to the real /usr/lib/openssh/sftp-server and logs
 * every chunk of both directions in the order it passed.
 */
import { execFile } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const run = promisify(execFile);
const TAP = fileURLToPath(new URL("./stdio-tap.mjs", import.meta.url));
export const SFTP_SERVER = "/usr/lib/openssh/sftp-server";

export function sftpAvailable(): boolean {
  return existsSync(SFTP_SERVER) && existsSync("/usr/bin/sftp");
}

export interface CapturedChunk {
  readonly from: "client" | "server";
  readonly bytes: Uint8Array;
}

export interface SftpCapture {
  readonly chunks: CapturedChunk[];
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `sftp -b` with `batch` (lines) in `cwd`, through the tap; returns what passed. */
export async function captureSftpBatch(cwd: string, batch: readonly string[], extraArgs: readonly string[] = []): Promise<SftpCapture> {
  const log = join(cwd, "tap.log");
  const batchFile = join(cwd, "batch.txt");
  writeFileSync(log, "");
  writeFileSync(batchFile, batch.join("\n") + "\n");
  const { stdout, stderr } = await run("sftp", ["-b", batchFile, ...extraArgs, "-D", `${process.execPath} ${TAP} ${log} ${SFTP_SERVER}`], { cwd });
  return { chunks: readTapLog(readFileSync(log)), stdout, stderr };
}

export function readTapLog(raw: Uint8Array): CapturedChunk[] {
  const out: CapturedChunk[] = [];
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  for (let pos = 0; pos < raw.byteLength; ) {
    const from = raw[pos] === 0x63 ? "client" : "server";
    const length = view.getUint32(pos + 1);
    out.push({ from, bytes: raw.subarray(pos + 5, pos + 5 + length) });
    pos += 5 + length;
  }
  return out;
}

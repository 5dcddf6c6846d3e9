import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { GatewayError } from "./errors.js";

// The data directory holds what a gateway generates for itself (admin token,
// runtime state for the CLI, the embedded store) so that a second start, or
// the CLI run from the same directory, finds it again.

export const ADMIN_TOKEN_FILE = "admin-token";
export const STATE_FILE = "gateway.json";

/** Written at start so `gatehouse sessions …` run from the same directory finds the API. */
export interface GatewayState {
  pid: number;
  apiUrl: string;
  startedAt: string;
}

export function ensureDataDir(dir: string): string {
  const absolute = resolve(dir);
  try {
    mkdirSync(absolute, { recursive: true, mode: 0o700 });
  } catch (cause) {
    throw new GatewayError("DATA_DIR_UNUSABLE", `cannot create data directory ${absolute}: ${(cause as Error).message}`, { cause });
  }
  return absolute;
}

export function sha256Hex(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** Compares a presented secret with a configured SHA-256 in constant time. */
export function matchesSha256(presented: string, expectedHex: string): boolean {
  const actual = createHash("sha256").update(presented).digest();
  const expected = Buffer.from(expectedHex, "hex");
  return expected.length === actual.length && timingSafeEqual(actual, expected);
}

/**
 * The admin token's SHA-256: the configured one, else one generated into the
 * data directory at first start. `generated` is set only the first time, so
 * the caller prints the token once.
 */
export function adminTokenHash(dataDir: string, configured: string | undefined): { sha256: string; generated?: string } {
  if (configured) return { sha256: configured.toLowerCase() };
  const path = join(dataDir, ADMIN_TOKEN_FILE);
  const existing = readOptional(path);
  if (existing) return { sha256: sha256Hex(existing) };
  const token = `gha_${randomBytes(24).toString("base64url")}`;
  writeFileSync(path, `${token}\n`, { mode: 0o600, flag: "wx" });
  return { sha256: sha256Hex(token), generated: token };
}

export function readAdminToken(dataDir: string): string | undefined {
  return readOptional(join(resolve(dataDir), ADMIN_TOKEN_FILE));
}

export function writeState(dataDir: string, state: GatewayState): void {
  writeFileSync(join(dataDir, STATE_FILE), `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
}

export function readState(dataDir: string): GatewayState | undefined {
  const text = readOptional(join(resolve(dataDir), STATE_FILE));
  return text ? (JSON.parse(text) as GatewayState) : undefined;
}

export function removeState(dataDir: string, pid: number): void {
  // Only remove our own state: a newer gateway may already own the directory.
  if (readState(dataDir)?.pid === pid) rmSync(join(dataDir, STATE_FILE), { force: true });
}

function readOptional(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8").trim() || undefined;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw error;
  }
}

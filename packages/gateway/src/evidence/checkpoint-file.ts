import type { Checkpoint } from "@gatehouse/store";
import { GatewayError } from "../errors.js";
import { HASH_PATTERN } from "./chain.js";

// The export of the gateways' checkpoint chains (`gatehouse checkpoints export`), kept where the
// store's owner cannot write. JSON lines: a header, then one checkpoint per line in (gateway, seq)
// order, exactly as signed. Nothing in the file is trusted as such: `verify --checkpoints FILE`
// checks every line's hash, signature and link, so the file verifies itself.

export const CHECKPOINT_FILE_FORMAT = "gatehouse-checkpoints-v1";

export function formatCheckpointFile(checkpoints: readonly Checkpoint[], exportedUs: number): string {
  const sorted = [...checkpoints].sort((a, b) => (a.gateway === b.gateway ? a.seq - b.seq : a.gateway < b.gateway ? -1 : 1));
  const lines = [JSON.stringify({ format: CHECKPOINT_FILE_FORMAT, exportedUs, checkpoints: sorted.length })];
  for (const c of sorted) {
    lines.push(JSON.stringify({ gateway: c.gateway, seq: c.seq, timeUs: c.timeUs, kind: c.kind, sessionId: c.sessionId, details: c.details, prevHash: c.prevHash, hash: c.hash, signature: c.signature }));
  }
  return `${lines.join("\n")}\n`;
}

/** The checkpoints in an export; CHECKPOINTS_UNREADABLE (naming the line) when it is not one. */
export function parseCheckpointFile(text: string, source: string): Checkpoint[] {
  const lines = text.split("\n").filter((line) => line.trim() !== "");
  const bad = (line: number, why: string) => new GatewayError("CHECKPOINTS_UNREADABLE", `${source}:${line}: ${why}`);
  const header = parseLine(lines[0] ?? "");
  if (header?.["format"] !== CHECKPOINT_FILE_FORMAT) throw bad(1, `not a checkpoint export (expected a first line with "format": "${CHECKPOINT_FILE_FORMAT}")`);
  return lines.slice(1).map((line, i) => {
    const c = parseLine(line);
    if (c === undefined) throw bad(i + 2, "not a JSON object");
    const details = c["details"];
    const sessionId = c["sessionId"];
    if (
      typeof c["gateway"] !== "string" ||
      !Number.isSafeInteger(c["seq"]) ||
      (c["seq"] as number) < 1 ||
      !Number.isSafeInteger(c["timeUs"]) ||
      typeof c["kind"] !== "string" ||
      !(sessionId === null || typeof sessionId === "string") ||
      !(details === null || (typeof details === "object" && !Array.isArray(details))) ||
      typeof c["prevHash"] !== "string" ||
      !HASH_PATTERN.test(c["prevHash"]) ||
      typeof c["hash"] !== "string" ||
      !HASH_PATTERN.test(c["hash"]) ||
      typeof c["signature"] !== "string"
    ) {
      throw bad(i + 2, "not a checkpoint (gateway, seq, timeUs, kind, sessionId, details, prevHash, hash, signature)");
    }
    return {
      gateway: c["gateway"],
      seq: c["seq"] as number,
      timeUs: c["timeUs"] as number,
      kind: c["kind"],
      sessionId: sessionId as string | null,
      details: details as Record<string, unknown> | null,
      prevHash: c["prevHash"],
      hash: c["hash"],
      signature: c["signature"],
    };
  });
}

function parseLine(line: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(line);
    return typeof value === "object" && value !== null && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

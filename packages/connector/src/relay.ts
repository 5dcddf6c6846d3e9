import type { Duplex } from "node:stream";
import { relay as relayBoth } from "@gatehouse/protocols/drive";
import { ConnectorError } from "./errors.js";

export interface RelayResult {
  /** Bytes the target sent (relayed to the gateway). */
  readonly fromTarget: number;
  /** Bytes the gateway sent (relayed to the target). */
  readonly toTarget: number;
  /** What ended the relay early, or null when both directions ended cleanly. */
  readonly error: Error | null;
  /** Which side failed first. */
  readonly failedSide: "target" | "tunnel" | null;
}

/**
 * Relays bytes between a tunnel stream and the target's socket until both sides are closed, with
 * the relay the gateway uses too (`@gatehouse/protocols/drive`): backpressure (on the tunnel side
 * that is the peer's flow-control window, so a slow client slows the target down), half-closes
 * passed on, both sides torn down when either fails. A target failure reaches the gateway as the
 * stream's error message; a tunnel failure (link lost, peer reset) closes the target connection.
 */
export async function relay(stream: Duplex, socket: Duplex, target: string): Promise<RelayResult> {
  const result = await relayBoth(stream, socket, {
    clientErrorFor: (err) => new ConnectorError("TARGET_UNREACHABLE", `connection to target ${target} failed: ${err.message}`, { cause: err }),
  });
  return {
    fromTarget: result.bytesDown,
    toTarget: result.bytesUp,
    error: result.error ?? null,
    failedSide: result.error ? (result.endedBy === "resource" ? "target" : "tunnel") : null,
  };
}

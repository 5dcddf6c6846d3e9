import { finished, type Duplex } from "node:stream";
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
 * Relays bytes between a tunnel stream and the target's socket until both directions are done.
 *
 * - Backpressure: `pipe` stops reading a side while the other's write buffer is full; on the tunnel side that
 *   is the peer's flow-control window, so a slow client slows the target down instead of growing buffers here.
 * - Half-close: the end of one direction (tunnel Close END, or the target's FIN) ends only the other side's
 *   writable half; the opposite direction keeps flowing. The socket must allow half-open for that (TCP sockets
 *   from the dialers do).
 * - Errors: a failure on either side (including a close before its end) tears both down. A target failure
 *   reaches the gateway as the stream's error message; a tunnel failure (link lost, peer reset) closes the
 *   target connection.
 */
export function relay(stream: Duplex, socket: Duplex, target: string): Promise<RelayResult> {
  return new Promise((resolve) => {
    let fromTarget = 0;
    let toTarget = 0;
    let error: Error | null = null;
    let failedSide: "target" | "tunnel" | null = null;
    let pending = 2;

    const fail = (side: "target" | "tunnel", err: Error): void => {
      if (failedSide !== null) return;
      failedSide = side;
      error = err;
      if (side === "target") {
        stream.destroy(
          new ConnectorError("TARGET_UNREACHABLE", `connection to target ${target} failed: ${err.message}`, { cause: err }),
        );
        socket.destroy();
      } else {
        socket.destroy();
        stream.destroy();
      }
    };
    const done = (): void => {
      if (--pending === 0) resolve({ fromTarget, toTarget, error, failedSide });
    };

    socket.on("data", (chunk: Buffer) => (fromTarget += chunk.length));
    stream.on("data", (chunk: Buffer) => (toTarget += chunk.length));
    // finished() reports an error, or a premature close (closed before both halves ended), once per stream and
    // keeps an error listener attached so a late error cannot crash the process.
    finished(socket, (err) => {
      if (err) fail("target", err);
      done();
    });
    finished(stream, (err) => {
      if (err) fail("tunnel", err);
      done();
    });
    stream.pipe(socket);
    socket.pipe(stream);
  });
}

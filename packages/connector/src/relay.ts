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
 * - Backpressure: a side is paused while the other's write buffer is full; on the tunnel side that is the peer's
 *   flow-control window, so a slow client slows the target down instead of growing buffers here.
 * - Chunks go straight from one side's 'data' event to the other's write(), with no pipe() in between: a
 *   database round trip crosses this relay twice, and every stream layer costs each chunk CPU time.
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
    forward(socket, stream, (n) => (fromTarget += n));
    forward(stream, socket, (n) => (toTarget += n));
  });
}

/** Copies `from` into `to` with backpressure and passes its end on; errors are the caller's (see relay). */
function forward(from: Duplex, to: Duplex, count: (bytes: number) => void): void {
  const resume = (): void => void from.resume();
  from.on("data", (chunk: Buffer) => {
    count(chunk.length);
    // Once `to` is finished or torn down nobody reads these bytes (writing would only raise an error).
    if (to.destroyed || to.writableEnded) return;
    if (!to.write(chunk)) {
      from.pause();
      to.once("drain", resume);
    }
  });
  from.once("end", () => {
    if (!to.destroyed && !to.writableEnded) to.end();
  });
  // A side handed over paused (the Postgres dialer stops reading after its handshake) would not flow on a
  // 'data' listener alone.
  from.resume();
}

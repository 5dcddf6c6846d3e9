import type { Duplex } from "node:stream";

/** How long a side may keep sending after the other side has closed. */
const LINGER_MS = 5_000;

export interface RelayResult {
  /** Bytes from the client to the resource. */
  bytesUp: number;
  /** Bytes from the resource to the client. */
  bytesDown: number;
  /** Who ended it, when not both sides cleanly. */
  error?: Error;
  endedBy: "client" | "resource";
}

/**
 * Copies bytes both ways between the client's socket and the tunnel stream
 * with backpressure (pipe pauses the faster side), passes half-closes on, and
 * tears both down when either errors. Resolves once both sides are closed.
 */
export function relay(client: Duplex, upstream: Duplex): Promise<RelayResult> {
  return new Promise((resolve) => {
    let bytesUp = 0;
    let bytesDown = 0;
    let error: Error | undefined;
    let endedBy: RelayResult["endedBy"] | undefined;
    let closed = 0;

    client.on("data", (chunk: Buffer) => (bytesUp += chunk.length));
    upstream.on("data", (chunk: Buffer) => (bytesDown += chunk.length));
    client.on("end", () => (endedBy ??= "client"));
    upstream.on("end", () => (endedBy ??= "resource"));
    client.pipe(upstream);
    upstream.pipe(client);

    const fail = (side: RelayResult["endedBy"]) => (err: Error) => {
      error ??= err;
      endedBy ??= side;
      client.destroy();
      upstream.destroy();
    };
    client.on("error", fail("client"));
    upstream.on("error", fail("resource"));

    const onClose = () => {
      if (++closed < 2) return;
      resolve({ bytesUp, bytesDown, error, endedBy: endedBy ?? "client" });
    };
    // Once one side is closed nobody will read what the other still sends:
    // end the other side, discard its remaining bytes so its own close can
    // complete, and cut it if it lingers.
    const finish = (other: Duplex) => () => {
      if (!other.destroyed) {
        if (!other.writableEnded) other.end();
        other.resume();
        setTimeout(() => other.destroy(), LINGER_MS).unref();
      }
      onClose();
    };
    client.once("close", finish(upstream));
    upstream.once("close", finish(client));
  });
}

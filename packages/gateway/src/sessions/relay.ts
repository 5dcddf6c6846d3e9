import { Transform, type Duplex, type Readable } from "node:stream";

/** How long a side may keep sending after the other side has closed. */
const LINGER_MS = 5_000;

/**
 * Sees every chunk of one direction before it is forwarded. Throwing stops
 * the relay (the chunk is not forwarded): a protocol violation ends the session.
 */
export type Inspector = (chunk: Buffer) => void;

export interface RelayOptions {
  /** Client → resource. */
  up?: Inspector;
  /** Resource → client. */
  down?: Inspector;
  /** An inspector threw: bytes to send the client before it is closed (the protocol's own error). */
  onViolation?: (error: Error, direction: "up" | "down") => Uint8Array | undefined;
}

export interface RelayResult {
  /** Bytes from the client to the resource. */
  bytesUp: number;
  /** Bytes from the resource to the client. */
  bytesDown: number;
  /** Why it ended, when not both sides cleanly. */
  error?: Error;
  /** The error was an inspector's verdict on the bytes (a protocol violation). */
  violation?: "up" | "down";
  endedBy: "client" | "resource";
}

/**
 * Copies bytes both ways between the client's socket and the tunnel stream
 * with backpressure (pipe pauses the faster side), passes half-closes on,
 * and tears both down when either errors. Resolves once both sides are closed.
 */
export function relay(client: Duplex, upstream: Duplex, options: RelayOptions = {}): Promise<RelayResult> {
  return new Promise((resolve) => {
    let bytesUp = 0;
    let bytesDown = 0;
    let error: Error | undefined;
    let violation: RelayResult["violation"];
    let endedBy: RelayResult["endedBy"] | undefined;
    let closed = 0;

    client.on("data", (chunk: Buffer) => (bytesUp += chunk.length));
    upstream.on("data", (chunk: Buffer) => (bytesDown += chunk.length));
    client.on("end", () => (endedBy ??= "client"));
    upstream.on("end", () => (endedBy ??= "resource"));

    const fail = (side: RelayResult["endedBy"]) => (err: Error) => {
      error ??= err;
      endedBy ??= side;
      client.destroy();
      upstream.destroy();
    };
    const inspect = (source: Readable, inspector: Inspector | undefined, direction: "up" | "down"): Readable => {
      if (!inspector) return source;
      const tap = new Transform({
        transform(chunk: Buffer, _encoding, callback) {
          try {
            inspector(chunk);
          } catch (err) {
            callback(err as Error);
            return;
          }
          callback(null, chunk);
        },
      });
      tap.on("error", (err: Error) => {
        if (error) return;
        error = err;
        violation = direction;
        endedBy = direction === "up" ? "client" : "resource";
        upstream.destroy();
        const farewell = options.onViolation?.(err, direction);
        if (farewell && !client.destroyed) client.end(farewell);
        else client.destroy();
        setTimeout(() => client.destroy(), LINGER_MS).unref();
      });
      return source.pipe(tap);
    };
    inspect(client, options.up, "up").pipe(upstream);
    inspect(upstream, options.down, "down").pipe(client);
    client.on("error", fail("client"));
    upstream.on("error", fail("resource"));

    const onClose = () => {
      if (++closed < 2) return;
      resolve({ bytesUp, bytesDown, error, violation, endedBy: endedBy ?? "client" });
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

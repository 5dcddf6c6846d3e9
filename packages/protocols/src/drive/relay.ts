import type { Duplex } from "node:stream";

/** How long a side may keep sending after the other side has closed. */
const LINGER_MS = 5_000;

/**
 * Sees every chunk of one direction before it is forwarded. Throwing stops
 * the relay (the chunk is not forwarded): a protocol violation ends the session.
 * Returning a promise holds the chunk, and everything after it, until the
 * promise resolves (write-ahead recording: a command goes on only once its
 * record is durable); a rejection is handled like a throw.
 */
export type Inspector = (chunk: Buffer) => void | Rewrite | Promise<void | Rewrite>;

/**
 * An inspector's answer to a chunk it handles itself (MySQL: a refused command): `forward` goes on
 * instead of the chunk (nothing when empty), `answer` goes back to the side the chunk came from
 * (the protocol's error for the refused part).
 */
export interface Rewrite {
  readonly forward: Uint8Array;
  readonly answer?: Uint8Array;
}

export interface RelayOptions {
  /** Client → resource. */
  up?: Inspector;
  /** Resource → client. */
  down?: Inspector;
  /** An inspector threw: bytes to send the client before it is closed (the protocol's own error). */
  onViolation?: (error: Error, direction: "up" | "down") => Uint8Array | undefined;
  /**
   * The resource side failed (e.g. the connector was lost): bytes to send the client before it
   * is closed, so it learns why in its own protocol rather than from a bare disconnect.
   */
  onResourceError?: (error: Error) => Uint8Array | undefined;
  /**
   * The resource side failed and there is no farewell to send: the error to destroy the client
   * side with. The connector's client side is a tunnel stream, which carries it to the gateway.
   */
  clientErrorFor?: (error: Error) => Error | undefined;
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
 * The one relay of gateway and connector. At the gateway the client is the agent's socket and
 * the upstream the tunnel stream; at the connector the client is the tunnel stream and the
 * upstream the target's socket.
 *
 * Copies bytes both ways between the client's socket and the tunnel stream
 * with backpressure (a side is paused while the other's write buffer is
 * full), passes half-closes on, and tears both down when either errors.
 * Resolves once both sides are closed.
 *
 * Chunks go straight from one side's 'data' to the other's write, with the
 * inspector called in between: no pipe() or Transform in the path, since
 * every stream layer costs each chunk a few microseconds and a command's
 * round trip crosses this relay twice.
 */
export function relay(client: Duplex, upstream: Duplex, options: RelayOptions = {}): Promise<RelayResult> {
  return new Promise((resolve) => {
    let bytesUp = 0;
    let bytesDown = 0;
    let error: Error | undefined;
    let violation: RelayResult["violation"];
    let endedBy: RelayResult["endedBy"] | undefined;
    let closed = 0;

    const fail = (side: RelayResult["endedBy"]) => (err: Error) => {
      const first = !error;
      error ??= err;
      endedBy ??= side;
      upstream.destroy();
      const farewell = first && side === "resource" ? options.onResourceError?.(err) : undefined;
      if (farewell && !client.destroyed && !client.writableEnded) {
        client.end(farewell);
        setTimeout(() => client.destroy(), LINGER_MS).unref();
      } else client.destroy(first && side === "resource" ? options.clientErrorFor?.(err) : undefined);
    };
    /** An inspector threw: the chunk is not forwarded, the resource side goes, the client gets the protocol's farewell. */
    const violate = (err: Error, direction: "up" | "down") => {
      error = err;
      violation = direction;
      endedBy = direction === "up" ? "client" : "resource";
      upstream.destroy();
      const farewell = options.onViolation?.(err, direction);
      if (farewell && !client.destroyed) client.end(farewell);
      else client.destroy();
      setTimeout(() => client.destroy(), LINGER_MS).unref();
    };
    const forward = (from: Duplex, to: Duplex, inspector: Inspector | undefined, direction: "up" | "down") => {
      const resume = () => from.resume();
      let held: Promise<void> | undefined;
      from.on("data", (chunk: Buffer) => {
        if (direction === "up") bytesUp += chunk.length;
        else bytesDown += chunk.length;
        // After a violation, or once the other side is closed or ended, nobody reads these bytes.
        if (error || to.destroyed || to.writableEnded) return;
        /** Writes what goes on for this chunk; false when `to` wants a pause. */
        const deliver = (rewrite: void | Rewrite): boolean => {
          if (!rewrite) return to.write(chunk);
          if (rewrite.answer && rewrite.answer.byteLength > 0 && !from.destroyed && !from.writableEnded) from.write(rewrite.answer);
          return rewrite.forward.byteLength === 0 || to.write(rewrite.forward);
        };
        if (inspector) {
          let verdict: void | Rewrite | Promise<void | Rewrite>;
          try {
            verdict = inspector(chunk);
          } catch (err) {
            violate(err as Error, direction);
            return;
          }
          if (isPromise(verdict)) {
            // Paused, no later chunk can overtake this one while it waits.
            from.pause();
            held = verdict.then(
              (rewrite) => {
                held = undefined;
                if (error || to.destroyed || to.writableEnded) return;
                if (deliver(rewrite)) from.resume();
                else to.once("drain", resume);
              },
              (err: unknown) => {
                held = undefined;
                if (!error) violate(err as Error, direction);
              },
            );
            return;
          }
          if (!deliver(verdict)) {
            from.pause();
            to.once("drain", resume);
          }
          return;
        }
        if (!to.write(chunk)) {
          from.pause();
          to.once("drain", resume);
        }
      });
      from.once("end", () => {
        endedBy ??= direction === "up" ? "client" : "resource";
        const pass = () => {
          if (!error && !to.destroyed && !to.writableEnded) to.end();
        };
        // A chunk still held must be written before the end is passed on.
        if (held) void held.then(pass);
        else pass();
      });
      // A side handed over paused (a handshake stopped reading it) would not flow on a listener alone.
      from.resume();
    };
    forward(client, upstream, options.up, "up");
    forward(upstream, client, options.down, "down");
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

/** A held chunk (a promise, or any thenable) rather than a verdict given at once. */
function isPromise<T>(value: void | Rewrite | Promise<T>): value is Promise<T> {
  return typeof value === "object" && value !== null && typeof (value as { then?: unknown }).then === "function";
}

import type { Duplex } from "node:stream";
import { ChunkSource } from "@gatehouse/protocols/drive";
import { GatewayError } from "../errors.js";

/** How a client's handshake read fails, in codes listeners switch on (never message text). */
export const CLIENT_READ_FAILURES = {
  gone: (cause?: Error) =>
    cause === undefined
      ? new GatewayError("CLIENT_GONE", "the client closed the connection")
      : new GatewayError("CLIENT_GONE", `the client's connection failed: ${cause.message}`, { cause }),
  timedOut: () => new GatewayError("CLIENT_TIMEOUT", "the client did not finish its handshake in time"),
};

/** A ChunkSource (`@gatehouse/protocols/drive`) over a client's socket, failing with CLIENT_GONE / CLIENT_TIMEOUT. */
export function clientChunkSource(stream: Duplex): ChunkSource {
  return new ChunkSource(stream, CLIENT_READ_FAILURES);
}

/**
 * What the recorder and the relay tell the metrics, without depending on prom-client: the
 * recorder (and the benchmark) can run without metrics, and GatewayMetrics is the one
 * implementation.
 */
export interface SessionMetrics {
  /** Made once per protocol and cached; a session keeps the one of its protocol. */
  forProtocol(protocol: string): ProtocolMetrics;
  /** A client refused before it proved who it is (each one, also those a refusal burst records together). */
  authRefused(protocol: string, reason: string): void;
}

/** A command's outcome as recorded: ok, error, or null when it never finished (interrupted, refused midway). */
export type CommandOutcome = "ok" | "error" | null;

export interface ProtocolMetrics {
  sessionStarted(): void;
  sessionEnded(endReason: string): void;
  command(outcome: CommandOutcome): void;
  /** Seconds the gateway held a command before forwarding it (command-timing.ts). */
  addedLatency(seconds: number): void;
}

import type { RecordedSession } from "./recorder.js";

/**
 * The latency the gateway adds to a command, measured around the relay's `up` inspector: from the
 * moment the client chunk that completes a command's request reaches the inspector to the moment
 * the relay may hand that chunk to the tunnel stream toward the connector — the observer's parsing,
 * the write-ahead entry's journaling and, in strict mode, the wait for its fdatasync. Not counted:
 * the kernel and TLS before the chunk is read, the tunnel and the resource after it is written, and
 * chunks that complete no command (a long statement's earlier pieces, the server's replies).
 *
 * Cost per chunk: two `performance.now()` calls and a comparison; per command, one histogram
 * observation (bench/recording-path.mjs --metrics measures it). Without metrics the inspector is
 * returned as it is.
 */
export function timedInspector<T, R>(session: RecordedSession, inspect: (chunk: T) => R): (chunk: T) => R {
  const metrics = session.metrics;
  if (!metrics) return inspect;
  return (chunk: T): R => {
    const before = session.commandsStarted;
    const arrivedMs = performance.now();
    const verdict = inspect(chunk);
    if (session.commandsStarted === before) return verdict;
    if (!isPromise(verdict)) {
      metrics.addedLatency((performance.now() - arrivedMs) / 1000);
      return verdict;
    }
    // Observed once the wait is over and the relay goes on to write the chunk; a refusal (the
    // journal failed) rejects as before and is not a latency.
    return verdict.then((value) => {
      metrics.addedLatency((performance.now() - arrivedMs) / 1000);
      return value;
    }) as R;
  };
}

function isPromise(value: unknown): value is Promise<unknown> {
  return typeof value === "object" && value !== null && typeof (value as Promise<unknown>).then === "function";
}

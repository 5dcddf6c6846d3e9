import { Writable } from "node:stream";

/** A log destination (createLogger's second argument) that parses each JSON line into `logs`, for tests that read what was logged. */
export function jsonLogSink(logs: Array<Record<string, unknown>>): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString("utf8").split("\n").filter(Boolean)) logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
}

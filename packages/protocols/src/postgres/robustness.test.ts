/**
 * Random, truncated and re-chunked bytes into every parser: the only acceptable outcomes are a
 * result, "need more bytes", or a PostgresProtocolError — never another exception, a hang, or
 * unbounded buffering.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { backendMessage, frontendMessage } from "../../test/helpers/arbitraries.js";
import { concat, readMessages } from "../../test/helpers/frames.js";
import { RecordingSink } from "../../test/helpers/observer-harness.js";
import { decodeBackendMessage, encodeBackendMessage } from "./backend-messages.js";
import { ClientStartup } from "./client-startup.js";
import { PostgresProtocolError } from "./errors.js";
import { DEFAULT_AUTH_LIMITS, DEFAULT_BACKEND_LIMITS, MessageReader } from "./framing.js";
import { decodeFrontendMessage, decodeStartupPacket, encodeFrontendMessage, encodeStartupMessage } from "./frontend-messages.js";
import { PostgresObserver } from "./observer.js";
import { ServerConnection } from "./server-connection.js";

/** Run `fn`; a PostgresProtocolError counts as a clean refusal, anything else fails the property. */
function cleanly(fn: () => void): "ok" | "refused" {
  try {
    fn();
    return "ok";
  } catch (error) {
    if (error instanceof PostgresProtocolError) return "refused";
    throw error;
  }
}

/** Chunks of `bytes` cut at the given (sorted, deduplicated) offsets. */
function chunked(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.byteLength + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let last = 0;
  for (const p of points) {
    out.push(bytes.subarray(last, p));
    last = p;
  }
  out.push(bytes.subarray(last));
  return out;
}

/** A typed frame with a random body: exercises every decoder's bounds checks. */
const framed = (codes: string) =>
  fc.tuple(fc.constantFrom(...codes.split("")), fc.uint8Array({ maxLength: 64 })).map(([code, body]) => ({ code, body }));

const noise = fc.uint8Array({ minLength: 0, maxLength: 300 });
const runs = { numRuns: 300 };

describe("frontend parsing", () => {
  it("random bytes: messages or a clean refusal, bounded buffering", () => {
    fc.assert(
      fc.property(noise, fc.boolean(), (bytes, startup) => {
        const reader = new MessageReader(startup ? { startup: true } : {});
        cleanly(() => {
          reader.push(bytes);
          for (let f = reader.read(); f !== undefined; f = reader.read()) {
            if (f.kind !== "message") continue;
            if (startup) decodeStartupPacket(f.body);
            else decodeFrontendMessage(f.code, f.body);
          }
        });
        expect(reader.buffered).toBeLessThanOrEqual(bytes.byteLength);
      }),
      runs,
    );
  });

  it("any body under any type decodes or is refused cleanly", () => {
    fc.assert(
      fc.property(framed("QPBDESHCFdcfXp"), ({ code, body }) => {
        cleanly(() => decodeFrontendMessage(code, body));
      }),
      { numRuns: 2000 },
    );
  });

  it("valid pipelines give the same messages however they are chunked, and wait when truncated", () => {
    fc.assert(
      fc.property(fc.array(frontendMessage, { maxLength: 12 }), fc.array(fc.nat(), { maxLength: 6 }), fc.nat(), (messages, cuts, cut) => {
        const stream = concat(messages.map(encodeFrontendMessage));
        const whole = readMessages([stream]);
        expect(whole.map((m) => decodeFrontendMessage(m.code, m.body))).toEqual(messages);
        expect(readMessages(chunked(stream, cuts))).toEqual(whole);
        // Truncated: a prefix of the messages, and the reader waits for the rest.
        const reader = new MessageReader();
        reader.push(stream.subarray(0, cut % (stream.byteLength + 1)));
        let n = 0;
        while (reader.read() !== undefined) n++;
        expect(n).toBeLessThanOrEqual(messages.length);
      }),
      runs,
    );
  });
});

describe("backend parsing", () => {
  it("random bytes: messages or a clean refusal", () => {
    fc.assert(
      fc.property(noise, (bytes) => {
        const reader = new MessageReader({ limits: DEFAULT_BACKEND_LIMITS });
        cleanly(() => {
          reader.push(bytes);
          for (let f = reader.read(); f !== undefined; f = reader.read()) {
            if (f.kind === "message") decodeBackendMessage(f.code, f.body);
          }
        });
      }),
      runs,
    );
  });

  it("any body under any type decodes or is refused cleanly", () => {
    fc.assert(
      fc.property(framed("RSKZENTDCI123nstGHWdcAVv"), ({ code, body }) => {
        cleanly(() => decodeBackendMessage(code, body));
      }),
      { numRuns: 3000 },
    );
  });

  it("valid response streams round-trip however they are chunked", () => {
    fc.assert(
      fc.property(fc.array(backendMessage, { maxLength: 12 }), fc.array(fc.nat(), { maxLength: 6 }), (messages, cuts) => {
        const stream = concat(messages.map(encodeBackendMessage));
        const decoded = readMessages(chunked(stream, cuts), { limits: DEFAULT_BACKEND_LIMITS }).map((m) =>
          decodeBackendMessage(m.code, m.body),
        );
        expect(decoded).toEqual(messages.map((m) => decodeBackendMessage(String.fromCharCode(encodeBackendMessage(m)[0]!), encodeBackendMessage(m).subarray(5))));
      }),
      runs,
    );
  });
});

describe("handshakes", () => {
  it("ClientStartup: random bytes are refused cleanly or wait", () => {
    fc.assert(
      fc.property(noise, fc.array(fc.nat(), { maxLength: 4 }), (bytes, cuts) => {
        const gateway = new ClientStartup();
        cleanly(() => {
          for (const chunk of chunked(bytes, cuts)) {
            gateway.push(chunk);
            for (let e = gateway.next(); e !== undefined; e = gateway.next()) {
              if (e.type === "sslRequest") gateway.answerSsl(false);
              else if (e.type === "startup") gateway.requestPassword();
            }
          }
        });
      }),
      runs,
    );
  });

  it("ClientStartup: a valid 'p' stream with random bodies is refused cleanly", () => {
    fc.assert(
      fc.property(framed("p"), (frame) => {
        const gateway = new ClientStartup();
        gateway.push(encodeStartupMessage({ params: { user: "u" } }));
        const startup = gateway.next();
        expect(startup?.type).toBe("startup");
        gateway.requestScram({ verifier: undefined });
        const message = concat([new Uint8Array([0x70, 0, 0, 0, 0]), frame.body]);
        new DataView(message.buffer, message.byteOffset, message.byteLength).setInt32(1, frame.body.byteLength + 4);
        cleanly(() => {
          gateway.push(message);
          while (gateway.next() !== undefined);
        });
      }),
      runs,
    );
  });

  it("ServerConnection: random server bytes are refused cleanly or wait", () => {
    fc.assert(
      fc.property(noise, fc.constantFrom("disable", "prefer") as fc.Arbitrary<"disable" | "prefer">, (bytes, tls) => {
        const conn = new ServerConnection({ user: "u", password: "p", tls });
        conn.start();
        cleanly(() => {
          conn.push(bytes);
          for (let e = conn.next(); e !== undefined; e = conn.next()) {
            if (e.type === "upgradeTls") conn.tlsEstablished();
          }
        });
      }),
      runs,
    );
  });

  it("ServerConnection: valid messages in any order are handled or refused cleanly", () => {
    fc.assert(
      fc.property(fc.array(backendMessage, { maxLength: 8 }), (messages) => {
        const conn = new ServerConnection({ user: "u", password: "p", tls: "disable" });
        conn.start();
        cleanly(() => {
          conn.push(concat(messages.map(encodeBackendMessage)));
          while (conn.next() !== undefined);
        });
      }),
      runs,
    );
  });
});

describe("observer", () => {
  const streams = fc.array(fc.tuple(fc.boolean(), noise), { maxLength: 6 });

  it("random bytes in both directions: a clean refusal or nothing, never another exception", () => {
    fc.assert(
      fc.property(streams, (chunks) => {
        const observer = new PostgresObserver(new RecordingSink(), { now: () => 1 });
        cleanly(() => {
          for (const [front, bytes] of chunks) front ? observer.frontend(bytes) : observer.backend(bytes);
          observer.end();
        });
      }),
      runs,
    );
  });

  it("valid messages in any interleaving: handled or refused cleanly, state stays bounded", () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(frontendMessage.map((m) => [true, m] as const), backendMessage.map((m) => [false, m] as const)), { maxLength: 40 }),
        (script) => {
          const sink = new RecordingSink();
          const observer = new PostgresObserver(sink, { now: () => 1, maxPending: 16 });
          cleanly(() => {
            for (const [front, message] of script) {
              if (front) observer.frontend(encodeFrontendMessage(message as Parameters<typeof encodeFrontendMessage>[0]));
              else observer.backend(encodeBackendMessage(message as Parameters<typeof encodeBackendMessage>[0]));
              expect(observer.pendingCount).toBeLessThanOrEqual(16);
            }
            observer.end();
            // Every started command completes exactly once by the end.
            const completed = sink.completed.map((c) => c.command.id).sort((a, b) => a - b);
            expect(completed).toEqual(sink.started.map((c) => c.id));
          });
        },
      ),
      runs,
    );
  });

  it("the auth-phase 'p' type is refused after startup", () => {
    const reader = new MessageReader({ limits: DEFAULT_AUTH_LIMITS });
    reader.push(new Uint8Array([0x51, 0, 0, 0, 4]));
    expect(cleanly(() => reader.read())).toBe("refused");
  });
});

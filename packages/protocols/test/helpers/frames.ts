import type { MessageReaderOptions } from "../../src/postgres/framing.js";
import { DEFAULT_AUTH_LIMITS, DEFAULT_BACKEND_LIMITS, MessageReader } from "../../src/postgres/framing.js";

export interface Message {
  readonly code: string;
  readonly body: Uint8Array;
}

/** Every message in `bytes`, pushed in the given pieces (bodies copied so they outlive the chunks). */
export function readMessages(pieces: readonly Uint8Array[], options: MessageReaderOptions = {}): Message[] {
  const reader = new MessageReader(options);
  const out: Message[] = [];
  for (const piece of pieces) {
    reader.push(piece);
    for (let f = reader.read(); f !== undefined; f = reader.read()) {
      if (f.kind !== "message") throw new Error(`unexpected ${f.kind} frame`);
      out.push({ code: f.code, body: f.body.slice() });
    }
  }
  if (reader.buffered !== 0) throw new Error(`${reader.buffered} bytes left over`);
  return out;
}

/** The single message an encoder produced, split into type and body. */
export function onlyMessage(bytes: Uint8Array, direction: "frontend" | "auth" | "backend" | "startup" = "frontend"): Message {
  const options = {
    frontend: {},
    auth: { limits: DEFAULT_AUTH_LIMITS },
    backend: { limits: DEFAULT_BACKEND_LIMITS },
    startup: { startup: true },
  }[direction];
  const messages = readMessages([bytes], options);
  if (messages.length !== 1) throw new Error(`expected one message, got ${messages.length}`);
  return messages[0]!;
}

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const total = parts.reduce((n, p) => n + p.byteLength, 0);
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.byteLength;
  }
  return out;
}

/** `bytes` cut into two pieces at `at`. */
export function splitAt(bytes: Uint8Array, at: number): Uint8Array[] {
  return [bytes.slice(0, at), bytes.slice(at)];
}

export function utf8(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

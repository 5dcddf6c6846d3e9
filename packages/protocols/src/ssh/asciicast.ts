/**
 * asciicast v2 (https://docs.asciinema.org/manual/asciicast/v2/): a recorded terminal session as
 * newline-delimited JSON, which `asciinema play` replays. Line 1 is the header; every other line
 * is an event `[seconds since start, code, data]`:
 *   "o" output (what the terminal showed), "i" input (what was typed), "r" resize ("COLSxROWS").
 *
 * The terminal stream is recorded as byte chunks, cut wherever the network cut them, so a UTF-8
 * character can span two chunks: each direction has its own streaming decoder, and an event
 * carries only whole characters (the rest waits for the next chunk of that direction).
 * Pure: the caller passes each chunk's time.
 */

export interface AsciicastHeader {
  /** Terminal size when the recording starts (the pty request's). */
  readonly width: number;
  readonly height: number;
  /** When the recording starts, µs since the epoch; event times are relative to it. */
  readonly startUs: number;
  /** The client's TERM (asciinema picks its emulation from it). */
  readonly term?: string;
  readonly title?: string;
  /** The command, for an exec with a pty. */
  readonly command?: string;
}

export type AsciicastEventCode = "o" | "i" | "r";

export class AsciicastWriter {
  private readonly decoders = { o: new TextDecoder("utf-8"), i: new TextDecoder("utf-8") };
  private lastSeconds = 0;

  constructor(private readonly header: AsciicastHeader) {}

  /** The header line (with its newline). */
  headerLine(): string {
    const h = this.header;
    const json: Record<string, unknown> = {
      version: 2,
      width: h.width,
      height: h.height,
      timestamp: Math.floor(h.startUs / 1_000_000),
    };
    if (h.term !== undefined) json.env = { TERM: h.term };
    if (h.title !== undefined) json.title = h.title;
    if (h.command !== undefined) json.command = h.command;
    return `${JSON.stringify(json)}\n`;
  }

  /** What the terminal showed; "" when the chunk held only part of a character. */
  output(chunk: Uint8Array, timeUs: number): string {
    return this.text("o", chunk, timeUs);
  }

  /** What the client typed. */
  input(chunk: Uint8Array, timeUs: number): string {
    return this.text("i", chunk, timeUs);
  }

  /** The terminal was resized (a window-change request). */
  resize(cols: number, rows: number, timeUs: number): string {
    return this.event("r", `${cols}x${rows}`, timeUs);
  }

  /** The end of the stream: bytes of a character never completed come out as U+FFFD. */
  end(timeUs: number): string {
    let out = "";
    for (const code of ["o", "i"] as const) {
      const rest = this.decoders[code].decode();
      if (rest !== "") out += this.event(code, rest, timeUs);
    }
    return out;
  }

  private text(code: "o" | "i", chunk: Uint8Array, timeUs: number): string {
    const data = this.decoders[code].decode(chunk, { stream: true });
    return data === "" ? "" : this.event(code, data, timeUs);
  }

  private event(code: AsciicastEventCode, data: string, timeUs: number): string {
    // Players expect non-decreasing times; chunks of two directions may be stamped slightly out of order.
    const seconds = Math.max(this.lastSeconds, Math.max(0, timeUs - this.header.startUs) / 1_000_000);
    this.lastSeconds = seconds;
    return `${JSON.stringify([Number(seconds.toFixed(6)), code, data])}\n`;
  }
}

/** One time-stamped piece of a recorded terminal stream, as the export reads it back. */
export type TerminalChunk =
  | { readonly kind: "output" | "input"; readonly timeUs: number; readonly data: Uint8Array }
  | { readonly kind: "resize"; readonly timeUs: number; readonly cols: number; readonly rows: number };

/** A whole asciicast v2 file from a recorded stream. */
export function toAsciicast(header: AsciicastHeader, chunks: Iterable<TerminalChunk>, options: { includeInput?: boolean } = {}): string {
  const writer = new AsciicastWriter(header);
  let out = writer.headerLine();
  let lastUs = header.startUs;
  for (const chunk of chunks) {
    lastUs = chunk.timeUs;
    switch (chunk.kind) {
      case "output":
        out += writer.output(chunk.data, chunk.timeUs);
        break;
      case "input":
        if (options.includeInput !== false) out += writer.input(chunk.data, chunk.timeUs);
        break;
      case "resize":
        out += writer.resize(chunk.cols, chunk.rows, chunk.timeUs);
        break;
    }
  }
  return out + writer.end(lastUs);
}

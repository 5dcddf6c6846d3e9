/**
 * Framing: turns a byte stream into Postgres messages.
 *
 * Wire layout (https://www.postgresql.org/docs/current/protocol-overview.html#PROTOCOL-MESSAGE-CONCEPTS):
 *
 *   typed message:     Byte1 type | Int32 length (counts itself, not the type byte) | body
 *   startup packet:               Int32 length (counts itself)                      | body
 *
 * The startup packet (StartupMessage, SSLRequest, GSSENCRequest, CancelRequest) is the only
 * untyped message; a reader in startup mode expects it.
 *
 * `MessageReader` keeps the pushed chunks in a list and hands out *views* into them; it only
 * copies when one message's body spans chunks. The declared length is checked against a
 * per-type maximum right after the header is read, **before** any body byte is buffered. What
 * happens to a body is the caller's policy, decided per message from its type and length:
 *
 *   - `"buffer"` — wait for the whole body, return it (the default);
 *   - a number n — keep only the first n bytes (0 = none) and skip the rest as it arrives;
 *     the frame says `truncated`. The observer uses this to count DataRows and CopyData
 *     without holding them;
 *   - `"stream"` — return a `start` frame with the header, then `fragment` frames (views of
 *     the chunks as they arrive) until the body is complete. For relaying a 100 MB DataRow or
 *     a 200 MB COPY without holding it.
 *
 * The reader holds references to pushed chunks until they are consumed: don't reuse a chunk's
 * memory after pushing it.
 */
import { ChunkQueue, EMPTY } from "../shared/chunk-queue.js";
import { PostgresProtocolError, violation } from "./errors.js";
import { BackendCode, FrontendCode } from "./message-codes.js";

export type BodyPolicy = "buffer" | "stream" | number;

/** A whole message, or its first bytes when the policy kept only a prefix. */
export interface MessageFrame {
  readonly kind: "message";
  /** The type character; "" for a startup packet. */
  readonly code: string;
  /** Body length in bytes (the declared length minus the 4 length bytes). */
  readonly length: number;
  /** The body, or its first bytes when `truncated`. A view: valid as long as the pushed chunk is. */
  readonly body: Uint8Array;
  readonly truncated: boolean;
}

/** The header of a message whose body follows as `fragment` frames. */
export interface StreamStartFrame {
  readonly kind: "start";
  readonly code: string;
  readonly length: number;
}

/** A piece of a streamed body; `final` on the last one. */
export interface StreamFragmentFrame {
  readonly kind: "fragment";
  readonly code: string;
  readonly bytes: Uint8Array;
  readonly final: boolean;
}

export type Frame = MessageFrame | StreamStartFrame | StreamFragmentFrame;

/**
 * Largest declared length (including the 4 length bytes) Postgres accepts for its "large"
 * message types: MaxAllocSize - 1 (PQ_LARGE_MESSAGE_LIMIT). A DataRow or CopyData can't be
 * bigger either, since the server builds each message in one allocation.
 */
const LARGE_DECLARED = 0x3ffffffe;
/** PQ_SMALL_MESSAGE_LIMIT: the server's limit for fixed-size-ish frontend messages. */
const SMALL_FRONTEND_DECLARED = 10_000;
/** libpq refuses "short" backend message types above this (VALID_LONG_MESSAGE_TYPE). */
const SMALL_BACKEND_DECLARED = 30_000;
/** MAX_STARTUP_PACKET_LENGTH */
const STARTUP_DECLARED = 10_000;
/** PG_MAX_AUTH_TOKEN_LENGTH: a password or SASL message. */
const AUTH_DECLARED = 65_535;

/** Default maximum body length per frontend type; types not listed are not allowed. */
export const DEFAULT_FRONTEND_LIMITS: Readonly<Record<string, number>> = {
  [FrontendCode.Query]: LARGE_DECLARED - 4,
  [FrontendCode.Parse]: LARGE_DECLARED - 4,
  [FrontendCode.Bind]: LARGE_DECLARED - 4,
  [FrontendCode.FunctionCall]: LARGE_DECLARED - 4,
  [FrontendCode.CopyData]: LARGE_DECLARED - 4,
  [FrontendCode.Describe]: SMALL_FRONTEND_DECLARED - 4,
  [FrontendCode.Close]: SMALL_FRONTEND_DECLARED - 4,
  [FrontendCode.Execute]: SMALL_FRONTEND_DECLARED - 4,
  [FrontendCode.Flush]: SMALL_FRONTEND_DECLARED - 4,
  [FrontendCode.Sync]: SMALL_FRONTEND_DECLARED - 4,
  [FrontendCode.CopyDone]: SMALL_FRONTEND_DECLARED - 4,
  [FrontendCode.CopyFail]: SMALL_FRONTEND_DECLARED - 4,
  [FrontendCode.Terminate]: SMALL_FRONTEND_DECLARED - 4,
};

/** Frontend limits during authentication: only `p` (and a polite Terminate). */
export const DEFAULT_AUTH_LIMITS: Readonly<Record<string, number>> = {
  [FrontendCode.AuthenticationResponse]: AUTH_DECLARED - 4,
  [FrontendCode.Terminate]: SMALL_FRONTEND_DECLARED - 4,
};

const LONG_BACKEND = new Set<string>([
  BackendCode.RowDescription,
  BackendCode.DataRow,
  BackendCode.CopyData,
  BackendCode.FunctionCallResponse,
  BackendCode.ErrorResponse,
  BackendCode.NoticeResponse,
  BackendCode.NotificationResponse,
  // 65535 parameter type OIDs do not fit 30000 bytes.
  BackendCode.ParameterDescription,
]);

/** Default maximum body length per backend type. */
export const DEFAULT_BACKEND_LIMITS: Readonly<Record<string, number>> = Object.fromEntries(
  Object.values(BackendCode).map((code) => [
    code,
    (LONG_BACKEND.has(code) ? LARGE_DECLARED : SMALL_BACKEND_DECLARED) - 4,
  ]),
);

export const DEFAULT_MAX_STARTUP_LENGTH = STARTUP_DECLARED - 4;

export interface MessageReaderOptions {
  /**
   * Maximum body length per type character; a type without an entry is a protocol violation.
   * Default: `DEFAULT_FRONTEND_LIMITS`. Use `DEFAULT_BACKEND_LIMITS` for server messages.
   */
  readonly limits?: Readonly<Record<string, number>>;
  /** Start in startup mode (the next message is an untyped startup packet). Default false. */
  readonly startup?: boolean;
  /** Maximum body length of a startup packet. Default 9996 (the server's 10000-byte packet limit). */
  readonly maxStartupLength?: number;
  /** What to keep of each message; called once per message, after the length check. Default "buffer". */
  readonly policy?: (code: string, length: number) => BodyPolicy;
}

/** What `read()` is in the middle of. */
const State = {
  /** Between messages: the next bytes are a header. */
  Header: 0,
  /** Discarding the rest of a body the policy did not keep. */
  Skip: 1,
  /** Handing out a streamed body as fragments. */
  Stream: 2,
} as const;
type State = (typeof State)[keyof typeof State];

const bufferAll = (): BodyPolicy => "buffer";

export class MessageReader {
  private readonly limits: Int32Array;
  private readonly maxStartupLength: number;
  private readonly policy: (code: string, length: number) => BodyPolicy;
  private readonly queue = new ChunkQueue();
  private state: State = State.Header;
  /** Body bytes still to skip or stream. */
  private remaining = 0;
  private streamCode = "";
  /** A header we have validated but whose kept body has not fully arrived (nothing consumed yet). */
  private peekedCode = -1;
  private peekedLength = 0;
  private peekedKeep = 0;
  private peekedStream = false;
  /** The next message is an untyped startup packet. */
  startup: boolean;

  constructor(options: MessageReaderOptions = {}) {
    // -1 = type not allowed; indexed by the type byte.
    this.limits = new Int32Array(256).fill(-1);
    for (const [code, max] of Object.entries(options.limits ?? DEFAULT_FRONTEND_LIMITS)) {
      const typeByte = code.charCodeAt(0) & 0xff;
      // Type byte 0 never exists on the wire; peekedCode uses 0 to mean "startup packet".
      if (typeByte !== 0) this.limits[typeByte] = Math.max(0, Math.min(max, 0x7fffffff - 4));
    }
    this.startup = options.startup ?? false;
    this.maxStartupLength = options.maxStartupLength ?? DEFAULT_MAX_STARTUP_LENGTH;
    this.policy = options.policy ?? bufferAll;
  }

  /** Bytes pushed and not yet returned or skipped. */
  get buffered(): number {
    return this.queue.length;
  }

  /** Every byte pushed so far belongs to a message already returned or skipped whole: the stream is between messages. */
  get atMessageBoundary(): boolean {
    return this.state === State.Header && this.queue.length === 0;
  }

  push(chunk: Uint8Array): void {
    this.queue.push(chunk);
  }

  /** The next unread byte without consuming it (e.g. to spot a TLS ClientHello, 0x16). */
  peekByte(): number | undefined {
    if (this.queue.length === 0) return undefined;
    return this.queue.byteAt(0);
  }

  /**
   * Consume one raw byte outside any framing (the server's one-byte 'S'/'N' answer to an
   * SSLRequest). Only between messages.
   */
  readRawByte(): number | undefined {
    this.assertBetweenMessages("readRawByte");
    if (this.queue.length === 0) return undefined;
    const value = this.queue.byteAt(0);
    this.queue.discard(1);
    return value;
  }

  /**
   * Remove and return every unread byte, e.g. to hand the bytes that followed the startup
   * handshake to the relay, or a TLS ClientHello to the TLS layer. Only between messages.
   */
  takeBuffered(): Uint8Array[] {
    this.assertBetweenMessages("takeBuffered");
    this.peekedCode = -1;
    return this.queue.takeAll();
  }

  /** The next frame, or undefined when more bytes are needed. Throws `PostgresProtocolError`. */
  read(): Frame | undefined {
    if (this.state === State.Skip) {
      const n = Math.min(this.remaining, this.queue.length);
      this.queue.discard(n);
      this.remaining -= n;
      if (this.remaining > 0) return undefined;
      this.state = State.Header;
    } else if (this.state === State.Stream) {
      if (this.queue.length === 0) return undefined;
      const bytes = this.queue.takeView(this.remaining);
      this.remaining -= bytes.byteLength;
      const final = this.remaining === 0;
      if (final) this.state = State.Header;
      return { kind: "fragment", code: this.streamCode, bytes, final };
    }

    if (this.peekedCode < 0 && !this.peekHeader()) return undefined;
    const headerSize = this.peekedCode === 0 ? 4 : 5;
    const code = this.peekedCode === 0 ? "" : String.fromCharCode(this.peekedCode);
    const length = this.peekedLength;

    if (this.peekedStream) {
      this.queue.discard(headerSize);
      this.peekedCode = -1;
      this.state = State.Stream;
      this.remaining = length;
      this.streamCode = code;
      return { kind: "start", code, length };
    }

    const keep = this.peekedKeep;
    if (this.queue.length < headerSize + keep) return undefined;
    this.queue.discard(headerSize);
    this.peekedCode = -1;
    const body = keep === 0 ? EMPTY : this.queue.take(keep);
    if (keep < length) {
      this.state = State.Skip;
      this.remaining = length - keep;
    }
    return { kind: "message", code, length, body, truncated: keep < length };
  }

  /** Read and validate the next header without consuming it. False when it hasn't fully arrived. */
  private peekHeader(): boolean {
    const typed = !this.startup;
    const headerSize = typed ? 5 : 4;
    if (this.queue.length < headerSize) return false;
    const typeByte = typed ? this.queue.byteAt(0) : 0;
    const declared = this.queue.uint32BE(typed ? 1 : 0);

    if (!typed) {
      // The body must at least hold the Int32 request code / protocol version.
      if (declared < 8) {
        throw violation(`invalid length of startup packet: ${declared}`, { declared });
      }
      const length = declared - 4;
      if (length > this.maxStartupLength) {
        throw new PostgresProtocolError("MESSAGE_TOO_LARGE", `startup packet of ${length} bytes exceeds ${this.maxStartupLength}`, {
          clientMessage: "invalid length of startup packet",
          context: { length, max: this.maxStartupLength },
        });
      }
      this.peekedCode = 0;
      this.peekedLength = length;
      this.peekedKeep = length;
      this.peekedStream = false;
      return true;
    }

    const max = this.limits[typeByte]!;
    if (max < 0) {
      throw violation(`invalid message type 0x${typeByte.toString(16).padStart(2, "0")}`, { type: typeByte });
    }
    if (declared < 4) {
      throw violation(`invalid message length ${declared}`, { type: String.fromCharCode(typeByte), declared });
    }
    const length = declared - 4;
    if (length > max) {
      throw new PostgresProtocolError(
        "MESSAGE_TOO_LARGE",
        `message '${String.fromCharCode(typeByte)}' of ${length} bytes exceeds the limit of ${max}`,
        { context: { type: String.fromCharCode(typeByte), length, max } },
      );
    }
    const policy = this.policy(String.fromCharCode(typeByte), length);
    this.peekedCode = typeByte;
    this.peekedLength = length;
    this.peekedStream = policy === "stream" && length > 0;
    this.peekedKeep = typeof policy === "number" ? Math.max(0, Math.min(length, Math.floor(policy))) : length;
    return true;
  }

  private assertBetweenMessages(what: string): void {
    if (this.state !== State.Header || this.peekedCode >= 0) {
      throw new PostgresProtocolError("INVALID_STATE", `${what}() called in the middle of a message`);
    }
  }
}

/**
 * SFTP version 3 packets, as OpenSSH speaks them (draft-ietf-secsh-filexfer-02,
 * https://datatracker.ietf.org/doc/html/draft-ietf-secsh-filexfer-02, and OpenSSH's PROTOCOL
 * for the @openssh.com extensions): the message-code table, a bounds-checked field reader, the
 * ATTRS decoder and the splitter that cuts one direction's byte stream into packets.
 *
 * Every packet (§3):  uint32 length | byte type | byte[length-1] data
 * Requests after INIT carry a uint32 request id first; so do all replies after VERSION.
 *
 * The splitter never buffers file contents: for WRITE (client→server) and DATA (server→client) it
 * waits only for the fields before the payload and then counts the payload's bytes as they pass.
 */
import { ChunkQueue } from "../shared/chunk-queue.js";
import { SshProtocolError } from "./errors.js";

/** §3 message numbers (request ids from §4). */
export const SftpType = {
  INIT: 1,
  VERSION: 2,
  OPEN: 3,
  CLOSE: 4,
  READ: 5,
  WRITE: 6,
  LSTAT: 7,
  FSTAT: 8,
  SETSTAT: 9,
  FSETSTAT: 10,
  OPENDIR: 11,
  READDIR: 12,
  REMOVE: 13,
  MKDIR: 14,
  RMDIR: 15,
  REALPATH: 16,
  STAT: 17,
  RENAME: 18,
  READLINK: 19,
  SYMLINK: 20,
  STATUS: 101,
  HANDLE: 102,
  DATA: 103,
  NAME: 104,
  ATTRS: 105,
  EXTENDED: 200,
  EXTENDED_REPLY: 201,
} as const;
export type SftpType = (typeof SftpType)[keyof typeof SftpType];

/** Types a client may send (§3). */
export const CLIENT_TYPES: ReadonlySet<number> = new Set([
  SftpType.INIT, SftpType.OPEN, SftpType.CLOSE, SftpType.READ, SftpType.WRITE, SftpType.LSTAT, SftpType.FSTAT,
  SftpType.SETSTAT, SftpType.FSETSTAT, SftpType.OPENDIR, SftpType.READDIR, SftpType.REMOVE, SftpType.MKDIR,
  SftpType.RMDIR, SftpType.REALPATH, SftpType.STAT, SftpType.RENAME, SftpType.READLINK, SftpType.SYMLINK,
  SftpType.EXTENDED,
]);

/** Types a server may send (§3). */
export const SERVER_TYPES: ReadonlySet<number> = new Set([
  SftpType.VERSION, SftpType.STATUS, SftpType.HANDLE, SftpType.DATA, SftpType.NAME, SftpType.ATTRS, SftpType.EXTENDED_REPLY,
]);

/** §7 SSH_FXP_STATUS error codes. */
export const SFTP_STATUS_NAMES: Readonly<Record<number, string>> = {
  0: "OK",
  1: "EOF",
  2: "NO_SUCH_FILE",
  3: "PERMISSION_DENIED",
  4: "FAILURE",
  5: "BAD_MESSAGE",
  6: "NO_CONNECTION",
  7: "CONNECTION_LOST",
  8: "OP_UNSUPPORTED",
};
export const SFTP_OK = 0;
export const SFTP_EOF = 1;

/** §6.3 SSH_FXP_OPEN pflags, in the words an operator reads (open(2)'s). */
export const OPEN_FLAGS: readonly (readonly [number, string])[] = [
  [0x01, "read"],
  [0x02, "write"],
  [0x04, "append"],
  [0x08, "create"],
  [0x10, "truncate"],
  [0x20, "exclusive"],
];
export const OPEN_WRITE_FLAGS = 0x02 | 0x04 | 0x08 | 0x10;

/** §5 ATTRS flags. */
const ATTR_SIZE = 0x1;
const ATTR_UIDGID = 0x2;
const ATTR_PERMISSIONS = 0x4;
const ATTR_ACMODTIME = 0x8;
const ATTR_EXTENDED = 0x80000000;

/**
 * OpenSSH's SFTP_MAX_MSG_LENGTH is 256 KiB; the slack covers a peer that frames a full 256 KiB
 * payload plus its headers. Anything larger is refused before it is buffered.
 */
export const MAX_SFTP_PACKET = 256 * 1024 + 1024;

export function malformed(message: string, context?: Readonly<Record<string, unknown>>): SshProtocolError {
  return new SshProtocolError("SFTP_MALFORMED", message, context === undefined ? {} : { context });
}

const utf8 = new TextDecoder("utf-8", { fatal: false });

/** A bounds-checked reader over one packet's data (after the type byte). */
export class FieldReader {
  private pos = 0;
  private readonly view: DataView;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly what: string,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get remaining(): number {
    return this.bytes.byteLength - this.pos;
  }

  private need(n: number, field: string): void {
    if (this.remaining < n) throw malformed(`${this.what}: truncated at ${field}`, { need: n, remaining: this.remaining });
  }

  uint32(field: string): number {
    this.need(4, field);
    const value = this.view.getUint32(this.pos);
    this.pos += 4;
    return value;
  }

  /** uint64 as a number: exact below 2^53, which file offsets and sizes are in practice. */
  uint64(field: string): number {
    this.need(8, field);
    const value = this.view.getUint32(this.pos) * 2 ** 32 + this.view.getUint32(this.pos + 4);
    this.pos += 8;
    return value;
  }

  /** `string` (RFC 4251 §5): uint32 length, bytes. A view, not a copy. */
  bytesField(field: string): Uint8Array {
    const length = this.uint32(field);
    this.need(length, field);
    const out = this.bytes.subarray(this.pos, this.pos + length);
    this.pos += length;
    return out;
  }

  /** A path or message: UTF-8 (invalid bytes become U+FFFD, never an exception). */
  text(field: string): string {
    return utf8.decode(this.bytesField(field));
  }

  /** OpenSSH's sftp-server omits nothing, but v3 servers may end a STATUS before its message. */
  optionalText(field: string): string | undefined {
    return this.remaining === 0 ? undefined : this.text(field);
  }
}

/** §5 file attributes, the fields an audit record names. */
export interface SftpAttrs {
  readonly size?: number;
  readonly uid?: number;
  readonly gid?: number;
  /** st_mode, including the file type bits. */
  readonly permissions?: number;
  readonly atime?: number;
  readonly mtime?: number;
  readonly extended?: readonly string[];
}

export function decodeAttrs(reader: FieldReader): SftpAttrs {
  const flags = reader.uint32("attrs flags");
  const attrs: { -readonly [K in keyof SftpAttrs]: SftpAttrs[K] } = {};
  if (flags & ATTR_SIZE) attrs.size = reader.uint64("attrs size");
  if (flags & ATTR_UIDGID) {
    attrs.uid = reader.uint32("attrs uid");
    attrs.gid = reader.uint32("attrs gid");
  }
  if (flags & ATTR_PERMISSIONS) attrs.permissions = reader.uint32("attrs permissions");
  if (flags & ATTR_ACMODTIME) {
    attrs.atime = reader.uint32("attrs atime");
    attrs.mtime = reader.uint32("attrs mtime");
  }
  if (flags & ATTR_EXTENDED) {
    const count = reader.uint32("attrs extended count");
    const names: string[] = [];
    for (let i = 0; i < count; i++) {
      names.push(reader.text("attrs extended type"));
      reader.bytesField("attrs extended data");
    }
    attrs.extended = names;
  }
  return attrs;
}

/** What a setstat changes, as a person writes it: "mode 0644, uid 1000 gid 1000, size 0". */
export function describeAttrs(attrs: SftpAttrs): string {
  const parts: string[] = [];
  if (attrs.permissions !== undefined) parts.push(`mode ${formatMode(attrs.permissions)}`);
  if (attrs.uid !== undefined) parts.push(`uid ${attrs.uid} gid ${attrs.gid}`);
  if (attrs.size !== undefined) parts.push(`size ${attrs.size}`);
  if (attrs.mtime !== undefined) parts.push(`mtime ${new Date(attrs.mtime * 1000).toISOString()}`);
  if (attrs.extended !== undefined) parts.push(`extended ${attrs.extended.join(",")}`);
  return parts.join(", ");
}

/** Permission bits (and setuid/setgid/sticky) in octal, as chmod takes them. */
export function formatMode(permissions: number): string {
  return (permissions & 0o7777).toString(8).padStart(4, "0");
}

export function describeOpenFlags(pflags: number): string {
  const words = OPEN_FLAGS.filter(([bit]) => pflags & bit).map(([, word]) => word);
  return words.length === 0 ? "none" : words.join(",");
}

/** One packet as the splitter hands it out. */
export type SftpPacket =
  /** A packet held whole (at most MAX_SFTP_PACKET): `data` is everything after the type byte. */
  | { readonly streamed: false; readonly type: number; readonly data: Uint8Array }
  /**
   * WRITE or DATA: `head` holds the fields before the payload (id, [handle, offset]), and
   * `payloadLength` is the payload's declared length; its bytes are skipped, never held.
   */
  | { readonly streamed: true; readonly type: number; readonly head: Uint8Array; readonly payloadLength: number };

/**
 * Cuts one direction into packets. `streamedType` is the one type whose payload is skipped:
 * WRITE for the client's direction, DATA for the server's.
 */
export class SftpPacketSplitter {
  private readonly queue = new ChunkQueue();
  /** Payload bytes of the current streamed packet still to skip. */
  private skipping = 0;

  constructor(
    private readonly streamedType: number,
    private readonly direction: "client" | "server",
  ) {}

  push(chunk: Uint8Array): void {
    this.queue.push(chunk);
  }

  /** Every byte pushed belongs to a packet already handed out. */
  get atPacketBoundary(): boolean {
    return this.skipping === 0 && this.queue.length === 0;
  }

  /** The next packet, or undefined until more bytes arrive. */
  next(): SftpPacket | undefined {
    const q = this.queue;
    if (this.skipping > 0) {
      const n = Math.min(this.skipping, q.length);
      q.discard(n);
      this.skipping -= n;
      if (this.skipping > 0) return undefined;
    }
    if (q.length < 5) return undefined;
    const length = q.uint32BE(0);
    if (length < 1) throw malformed(`${this.direction}: SFTP packet of length 0`);
    if (length > MAX_SFTP_PACKET) {
      throw new SshProtocolError("SFTP_PACKET_TOO_LARGE", `${this.direction}: SFTP packet of ${length} bytes exceeds ${MAX_SFTP_PACKET}`, {
        context: { length, max: MAX_SFTP_PACKET },
      });
    }
    const type = q.byteAt(4);
    if (type === this.streamedType) return this.nextStreamed(length, type);
    if (q.length < 4 + length) return undefined;
    q.discard(5);
    return { streamed: false, type, data: q.take(length - 1) };
  }

  /**
   * WRITE: uint32 id | string handle | uint64 offset | string data
   * DATA:  uint32 id | string data
   */
  private nextStreamed(length: number, type: number): SftpPacket | undefined {
    const q = this.queue;
    let headLength: number;
    if (type === SftpType.WRITE) {
      if (q.length < 13) return undefined;
      const handleLength = q.uint32BE(9);
      headLength = 4 + 4 + handleLength + 8;
    } else {
      headLength = 4;
    }
    // The head and the payload's length field must fit in the packet before anything is waited for.
    if (1 + headLength + 4 > length) throw malformed(`${this.direction}: SFTP packet type ${type} shorter than its fields`, { length });
    if (q.length < 5 + headLength + 4) return undefined;
    const payloadLength = q.uint32BE(5 + headLength);
    if (1 + headLength + 4 + payloadLength !== length) {
      throw malformed(`${this.direction}: SFTP packet type ${type} declares ${payloadLength} payload bytes in a packet of ${length}`);
    }
    q.discard(5);
    const head = q.take(headLength);
    q.discard(4);
    const n = Math.min(payloadLength, q.length);
    q.discard(n);
    this.skipping = payloadLength - n;
    return { streamed: true, type, head, payloadLength };
  }
}

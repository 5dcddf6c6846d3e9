// Assembles one WebSocket message out of several frames (see frame-codec.ts for the layout), with a
// single allocation and a single copy of each payload byte. Data frames are written by hand because
// they carry nearly all the bytes: going through protobufjs's Writer would grow (and re-copy) its
// buffer for every 64 KiB payload. The bytes are exactly what the generated encoder produces
// (message-builder.test.ts checks that against GatewayFrame/ConnectorFrame.encode):
//
//   frame  = tag(dataField, LEN) varint(len(data)) data
//   data   = [0x08 varint(stream_id)] [0x12 varint(len(payload)) payload]   (proto3 omits zero values)
import type { SlabPool } from "./slab-pool.js";
import { varintSize, writeVarint } from "./varint.js";

/** Field number of `Data data` in the frame message the builder writes (GatewayFrame 2, ConnectorFrame 3). */
export type DataField = 2 | 3;

const WIRE_LEN = 2;
const DATA_STREAM_ID_TAG = (1 << 3) | 0; // Data.stream_id, varint
const DATA_PAYLOAD_TAG = (2 << 3) | WIRE_LEN; // Data.payload, bytes

interface DataEntry {
  streamId: number;
  /** Views onto the payload, in order; their lengths add up to `length`. */
  parts: Uint8Array[];
  length: number;
}

type Entry = Uint8Array | DataEntry;

export class MessageBuilder {
  readonly #dataTag: number;
  readonly #pool: SlabPool | undefined;
  readonly #entries: Entry[] = [];
  #size = 0;

  /** @param pool where message memory comes from; each message goes back with `pool.release` once sent. */
  constructor(dataField: DataField, pool?: SlabPool) {
    this.#dataTag = (dataField << 3) | WIRE_LEN;
    this.#pool = pool;
  }

  /** Bytes the message will have. */
  get size(): number {
    return this.#size;
  }

  get isEmpty(): boolean {
    return this.#entries.length === 0;
  }

  /** Adds an already encoded frame (without its length prefix). */
  addFrame(frame: Uint8Array): void {
    this.#entries.push(frame);
    this.#size += varintSize(frame.length) + frame.length;
  }

  /** Adds a Data frame whose payload is the concatenation of `parts` (kept as views until finish()). */
  addData(streamId: number, parts: Uint8Array[], length: number): void {
    this.#entries.push({ streamId, parts, length });
    const frame = this.#dataFrameSize(streamId, length);
    this.#size += varintSize(frame) + frame;
  }

  /** Writes the message and resets the builder. */
  finish(): Uint8Array {
    const out = this.#pool ? this.#pool.allocate(this.#size) : Buffer.allocUnsafe(this.#size);
    let pos = 0;
    for (const entry of this.#entries) {
      if (entry instanceof Uint8Array) {
        pos = writeVarint(out, pos, entry.length);
        out.set(entry, pos);
        pos += entry.length;
        continue;
      }
      const { streamId, parts, length } = entry;
      pos = writeVarint(out, pos, this.#dataFrameSize(streamId, length));
      out[pos++] = this.#dataTag;
      pos = writeVarint(out, pos, dataSize(streamId, length));
      if (streamId !== 0) {
        out[pos++] = DATA_STREAM_ID_TAG;
        pos = writeVarint(out, pos, streamId);
      }
      if (length !== 0) {
        out[pos++] = DATA_PAYLOAD_TAG;
        pos = writeVarint(out, pos, length);
        for (const part of parts) {
          out.set(part, pos);
          pos += part.length;
        }
      }
    }
    this.#entries.length = 0;
    this.#size = 0;
    return out;
  }

  #dataFrameSize(streamId: number, length: number): number {
    const data = dataSize(streamId, length);
    return 1 + varintSize(data) + data;
  }
}

function dataSize(streamId: number, length: number): number {
  return (streamId === 0 ? 0 : 1 + varintSize(streamId)) + (length === 0 ? 0 : 1 + varintSize(length) + length);
}

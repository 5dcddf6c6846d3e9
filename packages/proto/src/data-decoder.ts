// Reads the Data frames that message-builder.ts writes, without protobufjs. Nearly every frame on a
// busy link is Data, and the generated decoder spends a Reader, two message objects and a oneof
// getter on each. This reads only the canonical encoding (what MessageBuilder and protobufjs both
// write, see message-builder.ts):
//
//   frame = tag(dataField, LEN) varint(len(data)) data
//   data  = [0x08 varint(stream_id)] [0x12 varint(len(payload)) payload]
//
// and answers undefined for anything else (other or repeated fields, another order, unknown fields,
// varints longer than 4 bytes, lengths that do not add up), which the caller hands to protobufjs: a
// frame never decodes differently from the generated code, it only decodes faster.
import type { DataField } from "./message-builder.js";

export interface DataFrame {
  streamId: number;
  /** A view into the frame's bytes (a Buffer when they are one). */
  payload: Uint8Array;
}

const WIRE_LEN = 2;
const STREAM_ID_TAG = (1 << 3) | 0;
const PAYLOAD_TAG = (2 << 3) | WIRE_LEN;
/** Varints of up to 4 bytes (values below 2^28) are read here; longer ones go to protobufjs. */
const MAX_VARINT_BYTES = 4;
const EMPTY = new Uint8Array(0);

/** Position after the varint readVarint last read (-1: too long or cut short). Saves an allocation per call. */
let next = 0;

function readVarint(bytes: Uint8Array, pos: number, end: number): number {
  let value = 0;
  for (let i = 0; i < MAX_VARINT_BYTES && pos < end; i++) {
    const byte = bytes[pos++]!;
    value |= (byte & 0x7f) << (7 * i);
    if (byte < 0x80) {
      next = pos;
      return value;
    }
  }
  next = -1;
  return 0;
}

/** The Data frame in `bytes` (one whole frame, without its length prefix), or undefined if it is not one in canonical form. */
export function readDataFrame(bytes: Uint8Array, dataField: DataField): DataFrame | undefined {
  const end = bytes.length;
  if (end < 2 || bytes[0] !== ((dataField << 3) | WIRE_LEN)) return undefined;
  const dataLength = readVarint(bytes, 1, end);
  let pos = next;
  if (pos < 0 || pos + dataLength !== end) return undefined;
  let streamId = 0;
  if (pos < end && bytes[pos] === STREAM_ID_TAG) {
    streamId = readVarint(bytes, pos + 1, end);
    pos = next;
    if (pos < 0) return undefined;
  }
  if (pos === end) return { streamId, payload: EMPTY };
  if (bytes[pos] !== PAYLOAD_TAG) return undefined;
  const payloadLength = readVarint(bytes, pos + 1, end);
  pos = next;
  if (pos < 0 || pos + payloadLength !== end) return undefined;
  return { streamId, payload: bytes.subarray(pos, end) };
}

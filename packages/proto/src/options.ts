import type { OpenStream } from "./messages.js";
import type { OpenReply } from "./stream.js";

export interface MuxOptions {
  role: "gateway" | "connector";
  /** Bytes a reader grants a writer up front, per stream. Default 256 KiB. */
  initialWindow?: number;
  /** Largest Data payload per frame, in bytes. Default 64 KiB. Must fit the peer's maxFrameBytes. */
  maxDataPayload?: number;
  /** Largest encoded frame accepted, in bytes, checked before buffering. Default 1 MiB. */
  maxFrameBytes?: number;
  /**
   * Small frames are coalesced into messages of up to about this many bytes (plus at most one frame).
   * Default 64 KiB: one full Data frame per message, so the receiver keeps each bulk payload as a view
   * of its message instead of copying it out (measured: cheaper than 256 KiB messages with 100 streams).
   */
  maxMessageBytes?: number;
  /** No more frames are pulled from streams while this many sent bytes wait for the OS. Default 1 MiB. */
  linkHighWaterMark?: number;
  /** Default 10_000 ms. */
  pingIntervalMs?: number;
  /** A link with no frame received for this long is closed as dead. Default 30_000 ms. */
  deadAfterMs?: number;
  /** Gateway role: how long open() waits for StreamOpened / StreamFailed. Default 15_000 ms. */
  openTimeoutMs?: number;
  /** Connector role: called for each OpenStream. Call exactly one of accept/reject. */
  onOpen?: (open: OpenStream, reply: OpenReply) => void;
  /** Monotonic clock in ms, for the heartbeat. Default performance.now. */
  now?: () => number;
}

export type ResolvedMuxOptions = Required<Omit<MuxOptions, "onOpen">> & Pick<MuxOptions, "onOpen">;

const KiB = 1024;

export const MUX_DEFAULTS = {
  // 1 MiB, not 256 KiB: with 256 KiB a bulk stream (an SSH `cat` or `scp` of 1 GiB) waited for credit
  // between bursts: 102 → 136 MB/s (exec) and 107 → 167 MB/s (scp), docs/benchmarks.md. The cost: a
  // stalled reader holds up to 1 MiB per stream.
  initialWindow: 1024 * KiB,
  maxDataPayload: 64 * KiB,
  maxFrameBytes: 1024 * KiB,
  maxMessageBytes: 64 * KiB,
  linkHighWaterMark: 1024 * KiB,
  pingIntervalMs: 10_000,
  deadAfterMs: 30_000,
  openTimeoutMs: 15_000,
} as const;

/** Frame bytes around a Data payload: prefix, tags and varints (generous). */
export const DATA_FRAME_OVERHEAD = 32;

/** Windows travel as uint32; keep the sum of grants well inside that. */
export const MAX_WINDOW = 2 ** 31 - 1;

export function resolveMuxOptions(options: MuxOptions): ResolvedMuxOptions {
  if (options.role !== "gateway" && options.role !== "connector") {
    throw new RangeError(`MuxOptions.role must be "gateway" or "connector", got ${String(options.role)}`);
  }
  const resolved: ResolvedMuxOptions = {
    role: options.role,
    initialWindow: positive("initialWindow", options.initialWindow ?? MUX_DEFAULTS.initialWindow, MAX_WINDOW),
    maxDataPayload: positive("maxDataPayload", options.maxDataPayload ?? MUX_DEFAULTS.maxDataPayload),
    maxFrameBytes: positive("maxFrameBytes", options.maxFrameBytes ?? MUX_DEFAULTS.maxFrameBytes),
    maxMessageBytes: positive("maxMessageBytes", options.maxMessageBytes ?? MUX_DEFAULTS.maxMessageBytes),
    linkHighWaterMark: positive("linkHighWaterMark", options.linkHighWaterMark ?? MUX_DEFAULTS.linkHighWaterMark),
    pingIntervalMs: positive("pingIntervalMs", options.pingIntervalMs ?? MUX_DEFAULTS.pingIntervalMs),
    deadAfterMs: positive("deadAfterMs", options.deadAfterMs ?? MUX_DEFAULTS.deadAfterMs),
    openTimeoutMs: positive("openTimeoutMs", options.openTimeoutMs ?? MUX_DEFAULTS.openTimeoutMs),
    onOpen: options.onOpen,
    now: options.now ?? (() => performance.now()),
  };
  if (resolved.maxDataPayload + DATA_FRAME_OVERHEAD > resolved.maxFrameBytes) {
    throw new RangeError(
      `MuxOptions.maxDataPayload (${resolved.maxDataPayload}) must leave ${DATA_FRAME_OVERHEAD} bytes under maxFrameBytes (${resolved.maxFrameBytes})`,
    );
  }
  return resolved;
}

function positive(name: string, value: number, max = Number.MAX_SAFE_INTEGER): number {
  if (!Number.isSafeInteger(value) || value < 1 || value > max) {
    throw new RangeError(`MuxOptions.${name} must be an integer from 1 to ${max}, got ${value}`);
  }
  return value;
}

import { Duplex } from "node:stream";
import {
  ChannelFrame,
  ChannelFrameError,
  ChannelFrameReader,
  decodeJson,
  encodeExitStatus,
  encodeFrame,
  encodeJsonFrame,
  frameHeader,
  type ChannelFrameType,
  type WindowSize,
} from "@gatehouse/protocols/ssh";
import type { ClientChannel } from "ssh2";
import { ConnectorError } from "../../errors.js";

/**
 * One SSH `session` channel to the resource as the tunnel stream sees it: a Duplex speaking
 * channel frames (`@gatehouse/protocols/ssh` channel-frames.ts). Written frames are the gateway's:
 * Data → stdin, Eof → end of stdin, WindowChange → window-change, Signal → signal. Read frames are
 * the resource's: stdout → Data, stderr → Stderr, then Eof, ExitStatus or ExitSignal, and the end of
 * the stream once sshd has closed the channel.
 *
 * Backpressure both ways, so a stalled client never makes the connector buffer a transfer:
 * - out: when push() says the reader (the relay, so the tunnel's flow-control window) is full, the
 *   channel's stdout and stderr are paused; ssh2 then stops adjusting sshd's window, and sshd stops
 *   sending after at most one window (2 MiB). _read() resumes them.
 * - in: a write's callback waits until the channel has taken the data (its 'drain'), so the relay
 *   stops reading the tunnel stream while sshd's window for stdin is used up.
 */
export class ChannelFrameStream extends Duplex {
  readonly #channel: ClientChannel;
  readonly #frames = new ChannelFrameReader();
  /** The exit frame, held until stdout and stderr have ended so it follows every byte of output. */
  #exitFrame: Uint8Array | null = null;
  #stdoutEnded = false;
  #stderrEnded = false;
  #channelClosed = false;
  #eofSent = false;
  #exitSent = false;
  #ended = false;

  constructor(channel: ClientChannel) {
    super({ allowHalfOpen: true });
    this.#channel = channel;
    channel.on("data", (chunk: Buffer) => this.#output(ChannelFrame.Data, chunk));
    channel.stderr.on("data", (chunk: Buffer) => this.#output(ChannelFrame.Stderr, chunk));
    channel.once("end", () => {
      this.#stdoutEnded = true;
      this.#flushTail();
    });
    channel.stderr.once("end", () => {
      this.#stderrEnded = true;
      this.#flushTail();
    });
    channel.once("exit", (code: number | null, signal?: string, coreDumped?: boolean, description?: string) => {
      this.#exitFrame = exitFrame(code, signal, coreDumped, description);
      this.#flushTail();
    });
    // ssh2 repeats the exit on 'close'. It is the only word of it when sshd's output, exit status and close came in
    // the same read as the answer to the exec: ssh2 emitted 'exit' then, before this stream was made to listen.
    channel.once("close", (code?: number | null, signal?: string, coreDumped?: boolean, description?: string) => {
      if (this.#exitFrame === null && (typeof code === "number" || typeof signal === "string")) this.#exitFrame = exitFrame(code ?? null, signal, coreDumped, description);
      this.#channelClosed = true;
      this.#flushTail();
    });
  }

  /** Bytes of frames waiting for the reader: what this stream buffers toward the gateway. */
  get bufferedOut(): number {
    return this.readableLength;
  }

  override _read(): void {
    // The reader wants more: let the channel flow again (ssh2 then adjusts sshd's window).
    if (!this.#stdoutEnded) this.#channel.resume();
    if (!this.#stderrEnded) this.#channel.stderr.resume();
  }

  #output(type: ChannelFrameType, chunk: Buffer): void {
    if (this.#ended) return;
    // Header and payload pushed apart: the payload is never copied.
    this.push(frameHeader(type, chunk.length));
    if (!this.push(chunk)) {
      this.#channel.pause();
      this.#channel.stderr.pause();
    }
  }

  /** Eof once both output streams ended, then the exit frame, then the end once sshd closed the channel. */
  #flushTail(): void {
    if (this.#ended || !this.#stdoutEnded || !this.#stderrEnded) return;
    if (!this.#eofSent) {
      this.#eofSent = true;
      this.push(encodeFrame(ChannelFrame.Eof));
    }
    if (this.#exitFrame !== null && !this.#exitSent) {
      this.#exitSent = true;
      this.push(this.#exitFrame);
    }
    if (this.#channelClosed) {
      this.#ended = true;
      this.push(null);
    }
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#frames.push(chunk);
    this.#apply().then(() => callback(), callback);
  }

  /** Applies every whole frame written so far, in order, waiting for the channel to take each Data. */
  async #apply(): Promise<void> {
    for (;;) {
      let frame;
      try {
        frame = this.#frames.next();
      } catch (err) {
        if (err instanceof ChannelFrameError) throw new ConnectorError("PROTOCOL_ERROR", `ssh channel stream: ${err.message}`, { cause: err });
        throw err;
      }
      if (frame === undefined) return;
      const channel = this.#channel;
      // After sshd closed the channel nothing reaches it (and ssh2 would never call back a write).
      if (this.#channelClosed) continue;
      switch (frame.type) {
        case ChannelFrame.Data: {
          if (frame.payload.byteLength === 0 || channel.writableEnded) break;
          const bytes = Buffer.from(frame.payload.buffer, frame.payload.byteOffset, frame.payload.byteLength);
          if (!channel.write(bytes)) await this.#drained();
          break;
        }
        case ChannelFrame.Eof:
          if (!channel.writableEnded) channel.end();
          break;
        case ChannelFrame.WindowChange: {
          const size = decodeFrameJson<WindowSize>(frame.payload);
          channel.setWindow(size.rows, size.cols, size.height, size.width);
          break;
        }
        case ChannelFrame.Signal:
          try {
            channel.signal(new TextDecoder().decode(frame.payload));
          } catch {
            // A signal name SSH does not define (RFC 4254 §6.10): dropped, as sshd drops the ones it does not know.
          }
          break;
        case ChannelFrame.Stderr:
        case ChannelFrame.ExitStatus:
        case ChannelFrame.ExitSignal:
          throw new ConnectorError("PROTOCOL_ERROR", `ssh channel stream: frame type ${frame.type} only travels from the connector to the gateway`);
        default:
          frame.type satisfies never;
      }
    }
  }

  /** Resolves when the channel drained, or closed (then nothing more will be written to it). */
  #drained(): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        this.#channel.off("drain", done);
        this.#channel.off("close", done);
        resolve();
      };
      this.#channel.once("drain", done);
      this.#channel.once("close", done);
    });
  }

  override _final(callback: (error?: Error | null) => void): void {
    // The gateway ended the stream: the client closed its channel.
    if (!this.#channelClosed) this.#channel.close();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.#channelClosed) this.#channel.close();
    callback(error);
  }
}

/** The resource's exit as a frame: its status, or the signal that ended it. */
function exitFrame(code: number | null, signal: string | undefined, coreDumped: boolean | undefined, description: string | undefined): Uint8Array {
  return typeof code === "number"
    ? encodeExitStatus(code)
    : encodeJsonFrame(ChannelFrame.ExitSignal, { signal: (signal ?? "").replace(/^SIG/, ""), coreDumped: coreDumped === true, message: description ?? "" });
}

function decodeFrameJson<T>(payload: Uint8Array): T {
  try {
    return decodeJson<T>(payload);
  } catch (err) {
    throw new ConnectorError("PROTOCOL_ERROR", "ssh channel stream: a frame's JSON payload does not parse", { cause: err });
  }
}

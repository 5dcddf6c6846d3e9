import { WebSocket } from "ws";

/** One WebSocket (or any message transport) carrying tunnel messages. */
export interface FrameLink {
  /**
   * Send one binary message; `cb` runs once it is handed to the OS (or failed). Once `cb` ran without
   * an error the link must not read `data` again: the Multiplexer reuses that memory.
   */
  send(data: Uint8Array, cb: (err?: Error | null) => void): void;
  /** Bytes queued in the transport and not yet written to the OS. */
  readonly bufferedAmount: number;
  onMessage(handler: (data: Uint8Array) => void): void;
  onClose(handler: (code: number, reason: string) => void): void;
  close(code: number, reason: string): void;
}

export interface WsLinkOptions {
  /**
   * After close(), how long the closing handshake may take before the socket is destroyed, in ms.
   * Default 1_000. (ws waits 30 s on its own, far too long for a peer we already judged dead.)
   */
  closeTimeoutMs?: number;
}

/** WebSocket close reasons are limited to 123 bytes of UTF-8 (RFC 6455 §5.5: control payload ≤ 125). */
const MAX_CLOSE_REASON_BYTES = 123;

/**
 * Adapts a `ws` WebSocket (client or server side). Binary messages only: a text message closes the
 * socket with 1003 (unsupported data).
 *
 * Make the link (and the Multiplexer) as soon as the socket exists — right after `new WebSocket(url)`,
 * or synchronously in the server's 'connection' handler — not after awaiting 'open': ws emits the
 * messages that arrive with the handshake right after 'open', before an `await` resumes, and they
 * would be lost. Sends made while the socket is still connecting wait for 'open'.
 * Construct the socket with `maxPayload` at least the peer's largest message (the Multiplexer's
 * maxMessageBytes plus a frame) and perMessageDeflate off: the payloads are mostly TLS bytes.
 */
export function wsLink(ws: WebSocket, options: WsLinkOptions = {}): FrameLink {
  const closeTimeoutMs = options.closeTimeoutMs ?? 1_000;
  ws.binaryType = "nodebuffer";
  // The 'close' event that follows every error is what the Multiplexer acts on; an 'error' without a
  // listener would be thrown by the EventEmitter instead.
  ws.on("error", () => {});

  return {
    send(data, cb) {
      if (ws.readyState === WebSocket.CONNECTING) {
        // 'close' without 'open' (the handshake failed) fails the send the way ws would.
        const opened = () => {
          ws.off("close", failed);
          ws.send(data, { binary: true }, cb);
        };
        const failed = () => {
          ws.off("open", opened);
          cb(new Error("WebSocket closed before it opened"));
        };
        ws.once("open", opened).once("close", failed);
        return;
      }
      // ws reports sends on a closing/closed socket through `cb` (asynchronously), never by throwing.
      ws.send(data, { binary: true }, cb);
    },
    get bufferedAmount() {
      return ws.bufferedAmount;
    },
    onMessage(handler) {
      ws.on("message", (data, isBinary) => {
        if (!isBinary) {
          ws.close(1003, "gatehouse tunnel messages are binary");
          return;
        }
        // binaryType 'nodebuffer' delivers one Buffer per message.
        handler(data as Buffer);
      });
    },
    onClose(handler) {
      if (ws.readyState === WebSocket.CLOSED) {
        queueMicrotask(() => handler(1006, "socket already closed"));
        return;
      }
      ws.on("close", (code, reason) => handler(code, reason.toString("utf8")));
    },
    close(code, reason) {
      if (ws.readyState === WebSocket.CLOSED) return;
      if (ws.readyState === WebSocket.CONNECTING) {
        ws.terminate(); // ws would throw on close() before the handshake
        return;
      }
      try {
        ws.close(code, truncateUtf8(reason, MAX_CLOSE_REASON_BYTES));
      } catch {
        // An invalid code, or a socket that cannot send a close frame: nothing to hand-shake.
        ws.terminate();
        return;
      }
      const timer = setTimeout(() => ws.terminate(), closeTimeoutMs);
      timer.unref();
      ws.once("close", () => clearTimeout(timer));
    },
  };
}

function truncateUtf8(text: string, maxBytes: number): string {
  const bytes = Buffer.from(text, "utf8");
  if (bytes.length <= maxBytes) return text;
  // Cut on a character boundary: drop continuation bytes (10xxxxxx) left dangling at the end.
  let end = maxBytes;
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end).toString("utf8");
}

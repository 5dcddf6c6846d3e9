// A minimal RFC 6455 server side, enough for the Kubernetes remote command protocol: the
// opening handshake, masked client frames (with fragmentation, ping and close), and unmasked
// binary frames back. Test-only; e2e has no WebSocket dependency of its own.
import { createHash } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const MAX_MESSAGE = 16 * 1024 * 1024;

export interface WebSocketPeer {
  protocol: string;
  send(data: Buffer): void;
  close(code?: number): void;
  onMessage(handler: (data: Buffer) => void): void;
  onClose(handler: () => void): void;
}

/** Completes the handshake with the first offered subprotocol the server supports, or refuses with 400. */
export function acceptWebSocket(req: IncomingMessage, socket: Duplex, head: Buffer, supported: readonly string[]): WebSocketPeer | undefined {
  const key = req.headers["sec-websocket-key"];
  const offered = String(req.headers["sec-websocket-protocol"] ?? "").split(",").map((p) => p.trim());
  const protocol = supported.find((p) => offered.includes(p));
  if (typeof key !== "string" || String(req.headers.upgrade).toLowerCase() !== "websocket" || protocol === undefined) {
    socket.end("HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\nunsupported upgrade or subprotocol\n");
    return undefined;
  }
  const accept = createHash("sha1").update(key + GUID).digest("base64");
  socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\nSec-WebSocket-Protocol: ${protocol}\r\n\r\n`);

  const messageHandlers: ((d: Buffer) => void)[] = [];
  const closeHandlers: (() => void)[] = [];
  let pending = head.length > 0 ? [head] : [];
  let buffered = head.length;
  let fragments: Buffer[] = [];
  let closed = false;

  const frame = (opcode: number, payload: Buffer): Buffer => {
    const len = payload.length;
    const header = len < 126 ? Buffer.from([0x80 | opcode, len]) : len < 65536 ? Buffer.from([0x80 | opcode, 126, len >> 8, len & 0xff]) : Buffer.concat([Buffer.from([0x80 | opcode, 127]), (() => { const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(len)); return b; })()]);
    return Buffer.concat([header, payload]);
  };
  const peer: WebSocketPeer = {
    protocol,
    send: (data) => void (closed || socket.write(frame(0x2, data))),
    close: (code = 1000) => {
      if (closed) return;
      closed = true;
      const body = Buffer.alloc(2);
      body.writeUInt16BE(code);
      socket.end(frame(0x8, body));
    },
    onMessage: (h) => void messageHandlers.push(h),
    onClose: (h) => void closeHandlers.push(h),
  };

  const parse = () => {
    for (;;) {
      const buf = pending.length === 1 ? pending[0]! : Buffer.concat(pending);
      pending = [buf];
      if (buf.length < 2) return;
      const fin = (buf[0]! & 0x80) !== 0;
      const opcode = buf[0]! & 0x0f;
      const masked = (buf[1]! & 0x80) !== 0;
      let len = buf[1]! & 0x7f;
      let at = 2;
      if (len === 126) {
        if (buf.length < 4) return;
        len = buf.readUInt16BE(2);
        at = 4;
      } else if (len === 127) {
        if (buf.length < 10) return;
        len = Number(buf.readBigUInt64BE(2));
        at = 10;
      }
      if (len > MAX_MESSAGE || !masked) return peer.close(len > MAX_MESSAGE ? 1009 : 1002);
      if (buf.length < at + 4 + len) return;
      const mask = buf.subarray(at, at + 4);
      const payload = Buffer.from(buf.subarray(at + 4, at + 4 + len));
      for (let i = 0; i < payload.length; i++) payload[i]! ^= mask[i & 3]!;
      pending = [buf.subarray(at + 4 + len)];
      buffered = pending[0]!.length;
      if (opcode === 0x8) return peer.close();
      if (opcode === 0x9) socket.write(frame(0xa, payload));
      else if (opcode === 0x0 || opcode === 0x1 || opcode === 0x2) {
        fragments.push(payload);
        if (fin) {
          const message = Buffer.concat(fragments);
          fragments = [];
          for (const h of messageHandlers) h(message);
        }
      }
    }
  };
  socket.on("data", (chunk: Buffer) => {
    pending.push(chunk);
    buffered += chunk.length;
    if (buffered > MAX_MESSAGE + 14) return peer.close(1009);
    parse();
  });
  const gone = () => {
    closed = true;
    for (const h of closeHandlers.splice(0)) h();
  };
  socket.on("close", gone);
  socket.on("error", gone);
  queueMicrotask(parse);
  return peer;
}

// Port-forward, the kubelet's way (k8s.io/kubelet/pkg/cri/streaming/portforward/httpstream.go with
// containerd's forwarder): per forwarded connection the client opens two SPDY streams carrying
// `streamtype: error` / `streamtype: data`, `port: N` and `requestid: K`. When both are there, the
// server connects to the pod's port and copies bytes both ways on the data stream; a failure is
// written as text on the error stream. Both streams are then closed (FIN).
//
// The "pod" ports are real TCP ports on 127.0.0.1 (the `portForward` option of startKubeApiServer).
import { connect, type Socket } from "node:net";
import { createHash } from "node:crypto";
import { SpdyServerSession, type ByteTransport, type SpdyStream } from "./spdy.js";

/** The protocol kubectl asks for in X-Stream-Protocol-Version (and, prefixed with "SPDY/3.1+", as a WebSocket subprotocol). */
export const PORTFORWARD_PROTOCOL = "portforward.k8s.io";
export const PORTFORWARD_TUNNEL_PROTOCOLS = [`SPDY/3.1+${PORTFORWARD_PROTOCOL}`] as const;

/** How long a request may wait for its second stream (the kubelet's default stream creation timeout). */
const STREAM_CREATION_TIMEOUT_MS = 30_000;
/** After one direction ends, how long the other gets before everything is closed (containerd waits 1 s). */
const DRAIN_MS = 1_000;

export interface PortForwardTarget {
  /** "namespace/name", for messages. */
  pod: string;
  uid: string;
  /** pod port → TCP port on 127.0.0.1. */
  ports: Record<number, number>;
  /** Told of every stream the client opens (before it is checked). */
  onStream?: (id: number, headers: Record<string, string[]>) => void;
}

interface Pair {
  requestId: string;
  data?: SpdyStream;
  error?: SpdyStream;
  timer: NodeJS.Timeout;
}

export function portForwardSession(transport: ByteTransport, target: PortForwardTarget): SpdyServerSession {
  const pairs = new Map<string, Pair>();
  const sockets = new Set<Socket>();
  // containerd names the pod by its sandbox id and leaves the uid empty; the network namespace is CNI's.
  const sandbox = createHash("sha256").update(`sandbox:${target.uid}`).digest("hex");
  const netns = `/var/run/netns/cni-${createHash("sha256").update(`netns:${target.uid}`).digest("hex").slice(0, 32).replace(/^(.{8})(.{4})(.{4})(.{4})/, "$1-$2-$3-$4-")}`;
  const failure = (port: number, detail: string) => `error forwarding port ${port} to pod ${sandbox}, uid : failed to execute portforward in network namespace "${netns}": ${detail}`;

  const session = new SpdyServerSession(
    transport,
    (stream) => {
      target.onStream?.(stream.id, stream.headers);
      // httpStreamReceived: a valid port and stream type, or the stream is refused (RST_STREAM).
      const portText = stream.header("port") ?? "";
      const port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
      const type = stream.header("streamtype");
      if (!(port >= 1 && port <= 65535) || (type !== "error" && type !== "data")) return false;
      // Old clients send no request id: the kubelet derives it from the stream ids (error n, data n+2).
      const requestId = stream.header("requestid") ?? String(type === "error" ? stream.id : stream.id - 2);
      let pair = pairs.get(requestId);
      if (!pair) {
        const p: Pair = {
          requestId,
          timer: setTimeout(() => {
            pairs.delete(requestId);
            p.error?.write(Buffer.from(`(conn=${target.pod}, request=${requestId}) timed out waiting for streams`));
            p.error?.end();
            p.data?.end();
          }, STREAM_CREATION_TIMEOUT_MS).unref(),
        };
        pair = p;
        pairs.set(requestId, pair);
      }
      if (pair[type]) {
        pair.error?.write(Buffer.from(`error processing stream for request ${requestId}: ${type} stream already assigned`));
        return true;
      }
      pair[type] = stream;
      if (pair.data && pair.error) {
        clearTimeout(pair.timer);
        pairs.delete(requestId);
        forward(pair.data, pair.error, port);
      }
      return true;
    },
    () => {
      for (const p of pairs.values()) clearTimeout(p.timer);
      pairs.clear();
      for (const s of sockets) s.destroy();
    },
  );

  function forward(data: SpdyStream, error: SpdyStream, port: number): void {
    let finished = false;
    let drain: NodeJS.Timeout | undefined;
    let socket: Socket | undefined;
    const finish = (message?: string) => {
      if (finished) return;
      finished = true;
      if (drain) clearTimeout(drain);
      if (message) error.write(Buffer.from(message));
      data.end();
      error.end();
      socket?.destroy();
    };
    // One direction done: the other gets DRAIN_MS, then everything closes.
    const oneWayDone = () => {
      if (data.localFin && data.remoteFin) return finish();
      drain ??= setTimeout(() => finish(), DRAIN_MS).unref();
    };
    const local = target.ports[port];
    if (local === undefined) {
      return finish(failure(port, refused(port, sandbox)));
    }
    let connected = false;
    const sock = (socket = connect({ host: "127.0.0.1", port: local, allowHalfOpen: true }));
    sockets.add(sock);
    sock.on("connect", () => (connected = true));
    sock.on("data", (d: Buffer) => data.write(d));
    sock.on("end", () => {
      data.end();
      oneWayDone();
    });
    sock.on("error", (e: NodeJS.ErrnoException) => {
      finish(failure(port, connected ? goNetError(e, sock, port) : refused(port, sandbox)));
    });
    sock.on("close", () => {
      sockets.delete(sock);
      finish();
    });
    data.onData((d) => sock.write(d));
    data.onEnd(() => {
      sock.end();
      oneWayDone();
    });
    // The client resets the data stream once it has seen the pod's side end (or gives up).
    data.onReset(() => finish());
    error.onReset(() => finish());
  }

  return session;
}

/** containerd's message when nothing listens on the port inside the pod's network namespace. */
function refused(port: number, sandbox: string): string {
  return `failed to connect to localhost:${port} inside namespace "${sandbox}", IPv4: dial tcp4 127.0.0.1:${port}: connect: connection refused IPv6 dial tcp6 [::1]:${port}: connect: connection refused `;
}

/** A Go net error for a broken pod connection ("read tcp4 A->B: read: connection reset by peer"). */
function goNetError(e: NodeJS.ErrnoException, socket: Socket, port: number): string {
  const addr = `tcp4 127.0.0.1:${socket.localPort ?? 0}->127.0.0.1:${port}`;
  if (e.code === "ECONNRESET") return `read ${addr}: read: connection reset by peer`;
  if (e.code === "EPIPE") return `write ${addr}: write: broken pipe`;
  return `${addr}: ${e.message}`;
}

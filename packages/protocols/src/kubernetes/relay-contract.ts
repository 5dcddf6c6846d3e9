// How one Kubernetes API request travels between gateway and connector (the contract both sides
// keep; README.md, "Relaying a request"). One tunnel stream per HTTP request: the request's head
// rides in the stream's open params, its body in the stream's bytes (the gateway half-closes at
// the body's end); the connector answers with a response head frame, then the response body, or,
// after a `101 Switching Protocols`, the upgraded connection's bytes both ways.

/** The OpenStream params of a Kubernetes stream. A session's main stream has no `method`. */
export const KUBE_PARAMS = {
  method: "k8s.method",
  /** Path and query as the API server sees them (the `/k8s/CONNECTION` prefix already removed). */
  path: "k8s.path",
  /** JSON `[name, value][]`: the client's headers the API server may see (relayedRequestHeaders). */
  headers: "k8s.headers",
  /** The identity the connector impersonates (when the connection impersonates), and its groups as JSON `string[]`. */
  user: "k8s.user",
  groups: "k8s.groups",
} as const;

/** target.options of a Kubernetes connection (the connector reads them). */
export const KUBE_TARGET_OPTIONS = {
  /** A kubeconfig file on the connector's machine; left out: the pod's service account (in-cluster). */
  kubeconfig: "kubeconfig",
  /** The kubeconfig's context to use; left out: its current-context. */
  context: "context",
  /** "false": use the connector's own account as is, without Impersonate-* headers. */
  impersonate: "impersonate",
} as const;

export interface ResponseHead {
  status: number;
  statusMessage: string;
  /** `[name, value]` pairs as the API server sent them (repeated names kept apart). */
  headers: [string, string][];
}

/** A response head frame is at most this long (an API server's headers are a few hundred bytes). */
export const MAX_RESPONSE_HEAD = 256 * 1024;

/** The connector's first bytes on a request stream: a 4-byte big-endian length, then the head as JSON. */
export function encodeResponseHead(head: ResponseHead): Buffer {
  const json = Buffer.from(JSON.stringify(head), "utf8");
  const frame = Buffer.allocUnsafe(4 + json.length);
  frame.writeUInt32BE(json.length, 0);
  json.copy(frame, 4);
  return frame;
}

export class ResponseHeadError extends Error {
  override readonly name = "ResponseHeadError";
}

/**
 * Reads the response head frame off the start of a request stream: `push` chunks until it returns
 * the head and the bytes after it (the start of the body). Throws ResponseHeadError on a frame
 * that is too long or not a head.
 */
export class ResponseHeadReader {
  private chunks: Buffer[] = [];
  private length = 0;

  push(chunk: Buffer): { head: ResponseHead; rest: Buffer } | undefined {
    this.chunks.push(chunk);
    this.length += chunk.length;
    if (this.length < 4) return undefined;
    const all = this.chunks.length === 1 ? this.chunks[0]! : Buffer.concat(this.chunks);
    this.chunks = [all];
    const size = all.readUInt32BE(0);
    if (size > MAX_RESPONSE_HEAD) throw new ResponseHeadError(`response head of ${size} bytes (at most ${MAX_RESPONSE_HEAD})`);
    if (all.length < 4 + size) return undefined;
    let parsed: unknown;
    try {
      parsed = JSON.parse(all.subarray(4, 4 + size).toString("utf8"));
    } catch {
      throw new ResponseHeadError("response head is not JSON");
    }
    const head = parsed as ResponseHead;
    if (typeof head?.status !== "number" || !Array.isArray(head.headers) || !head.headers.every((h) => Array.isArray(h) && h.length === 2 && typeof h[0] === "string" && typeof h[1] === "string")) {
      throw new ResponseHeadError("response head lacks status or headers");
    }
    this.chunks = [];
    this.length = 0;
    return { head: { status: head.status, statusMessage: String(head.statusMessage ?? ""), headers: head.headers }, rest: all.subarray(4 + size) };
  }
}

/** Hop-by-hop headers (RFC 9110 §7.6.1) and those Node writes itself: never copied from one connection to the next. */
const HOP_BY_HOP = new Set(["connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade", "host"]);

/**
 * The client's headers the API server may see. Never the client's own credential
 * (`Authorization`) or any `Impersonate-*` header: the connector sets who is asking. Hop-by-hop
 * headers are dropped, except that an upgrade keeps `Connection: Upgrade` and `Upgrade` (the
 * WebSocket and SPDY handshakes need them, `Sec-WebSocket-*` and `X-Stream-Protocol-Version` too).
 */
export function relayedRequestHeaders(rawHeaders: readonly string[], upgrade: boolean): [string, string][] {
  const out: [string, string][] = [];
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    const lower = name.toLowerCase();
    if (lower === "authorization" || lower.startsWith("impersonate-")) continue;
    if (HOP_BY_HOP.has(lower) && !(upgrade && (lower === "upgrade" || lower === "connection"))) continue;
    out.push([name, rawHeaders[i + 1]!]);
  }
  return out;
}

/** The response headers a client may see from the API server (hop-by-hop ones dropped; an upgrade keeps its own). */
export function relayedResponseHeaders(headers: readonly [string, string][], upgrade: boolean): [string, string][] {
  return headers.filter(([name]) => {
    const lower = name.toLowerCase();
    return !HOP_BY_HOP.has(lower) || (upgrade && (lower === "upgrade" || lower === "connection"));
  });
}

import type { IncomingMessage } from "node:http";
import type { TunnelStream } from "@gatehouse/proto";
import { KUBE_PARAMS, ResponseHeadReader, relayedRequestHeaders, type ResponseHead } from "@gatehouse/protocols/kubernetes";
import type { SessionBroker } from "../../sessions/session-broker.js";
import type { KubeSession } from "./kube-client-connection.js";

/**
 * Opens the tunnel stream that carries one request to the API server (relay-contract.ts): its
 * method, path and relayed headers in the open params, and who the connector impersonates.
 */
export async function openRequestStream(
  broker: SessionBroker,
  kube: KubeSession,
  req: IncomingMessage,
  path: string,
  upgrade: boolean,
): Promise<{ ok: true; stream: TunnelStream } | { ok: false; message: string }> {
  const params: Record<string, string> = {
    [KUBE_PARAMS.method]: req.method ?? "GET",
    [KUBE_PARAMS.path]: path,
    [KUBE_PARAMS.headers]: JSON.stringify(relayedRequestHeaders(req.rawHeaders, upgrade)),
    [KUBE_PARAMS.user]: kube.identity.name,
    [KUBE_PARAMS.groups]: JSON.stringify(kube.identity.groups ?? []),
  };
  const opened = await broker.openChannel(kube.session, params);
  return opened.ok ? { ok: true, stream: opened.stream } : { ok: false, message: opened.message };
}

/**
 * The response head at the start of a request stream, and the body bytes that came with it. The
 * stream is left paused. Rejects when the stream fails or ends first (the connector's error).
 */
export function readResponseHead(stream: TunnelStream): Promise<{ head: ResponseHead; rest: Buffer }> {
  return new Promise((resolve, reject) => {
    const reader = new ResponseHeadReader();
    const cleanup = () => {
      stream.off("data", onData);
      stream.off("error", onError);
      stream.off("end", onEnd);
    };
    const onData = (chunk: Buffer) => {
      let got;
      try {
        got = reader.push(chunk);
      } catch (error) {
        cleanup();
        stream.destroy();
        reject(error as Error);
        return;
      }
      if (got) {
        stream.pause();
        cleanup();
        resolve(got);
      }
    };
    const onError = (error: Error) => {
      cleanup();
      reject(error);
    };
    const onEnd = () => {
      cleanup();
      reject(new Error("the connector ended the request without a response"));
    };
    stream.on("data", onData);
    stream.once("error", onError);
    stream.once("end", onEnd);
  });
}

/** The first `max` bytes of a body, and how many there were in all. */
export class BodyKeeper {
  private readonly chunks: Buffer[] = [];
  private kept = 0;
  total = 0;

  constructor(private readonly max: number) {}

  push(chunk: Buffer): void {
    this.total += chunk.length;
    if (this.kept >= this.max) return;
    const part = chunk.length <= this.max - this.kept ? chunk : chunk.subarray(0, this.max - this.kept);
    this.chunks.push(Buffer.from(part));
    this.kept += part.length;
  }

  get complete(): boolean {
    return this.total === this.kept;
  }

  bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

/** Reads a whole request body (its Content-Length is known and small). */
export function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.once("end", () => resolve(Buffer.concat(chunks)));
    req.once("error", reject);
    req.once("close", () => req.complete || reject(new Error("the client closed the connection during the request body")));
  });
}

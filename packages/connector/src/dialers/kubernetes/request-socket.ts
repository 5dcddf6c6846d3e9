import type { ClientRequest, IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import type { Socket } from "node:net";
import { Duplex } from "node:stream";
import { encodeResponseHead } from "@gatehouse/protocols/kubernetes";
import { ConnectorError } from "../../errors.js";

export interface ApiRequest {
  host: string;
  port: number;
  method: string;
  path: string;
  /** Flat [name, value, name, value…], as Node's raw headers. */
  headers: string[];
  upgrade: boolean;
  agent: import("node:https").Agent;
  serverName: string | undefined;
  /** How long reaching the API server may take (ms); then the request fails as unreachable. */
  connectTimeoutMs: number;
  where: string;
}

/**
 * One API request as the tunnel stream sees it (relay-contract.ts): what the gateway writes is
 * the request body (its end, the body's end); what is read is the response head frame, then the
 * response body — or, after a 101, the upgraded connection's bytes, and writes go to it. Reads
 * follow the tunnel's pace: the response is paused while the stream's window is full.
 */
export class RequestSocket extends Duplex {
  private readonly req: ClientRequest;
  private source: IncomingMessage | Socket | undefined;
  private upgraded: Socket | undefined;
  /** Writes that came before the upgrade finished (an upgrade request has no body of its own). */
  private early: { chunk: Buffer; callback: (error?: Error | null) => void }[] = [];
  private endedEarly: (() => void) | undefined;

  constructor(private readonly api: ApiRequest) {
    super({ allowHalfOpen: true });
    const req = httpsRequest({
      host: api.host,
      port: api.port,
      method: api.method,
      path: api.path,
      headers: api.headers,
      agent: api.agent,
      ...(api.serverName !== undefined ? { servername: api.serverName } : {}),
    });
    this.req = req;
    const connectTimer = setTimeout(() => req.destroy(new Error(`no connection within ${api.connectTimeoutMs} ms`)), api.connectTimeoutMs);
    req.once("socket", (socket: Socket) => {
      if (!socket.connecting) clearTimeout(connectTimer);
      else socket.once("connect", () => clearTimeout(connectTimer));
    });
    req.once("response", (res: IncomingMessage) => {
      clearTimeout(connectTimer);
      this.pushHead(res);
      this.follow(res);
    });
    req.once("upgrade", (res: IncomingMessage, socket: Socket, head: Buffer) => {
      clearTimeout(connectTimer);
      this.pushHead(res);
      if (head.length > 0) this.push(head);
      this.upgraded = socket;
      socket.on("error", (error: Error) => this.destroy(this.failure(error)));
      this.follow(socket);
      for (const { chunk, callback } of this.early) socket.write(chunk, callback);
      this.early = [];
      if (this.endedEarly) {
        socket.end();
        this.endedEarly();
      }
    });
    req.on("error", (error: Error) => {
      clearTimeout(connectTimer);
      this.destroy(this.failure(error));
    });
    // An upgrade request has no body: sent now; the gateway's bytes go to the upgraded connection.
    if (api.upgrade) req.end();
    else req.flushHeaders();
  }

  private failure(error: Error): ConnectorError {
    return new ConnectorError("TARGET_UNREACHABLE", `request to the API server at ${this.api.where} failed: ${error.message}`, { cause: error });
  }

  private pushHead(res: IncomingMessage): void {
    const headers: [string, string][] = [];
    for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) headers.push([res.rawHeaders[i]!, res.rawHeaders[i + 1]!]);
    this.push(encodeResponseHead({ status: res.statusCode ?? 502, statusMessage: res.statusMessage ?? "", headers }));
  }

  private follow(source: IncomingMessage | Socket): void {
    this.source = source;
    source.on("data", (chunk: Buffer) => {
      if (!this.push(chunk)) source.pause();
    });
    source.once("end", () => this.push(null));
    source.once("error", (error: Error) => this.destroy(this.failure(error)));
    // A response cut short (the API server or its connection went away) is not a clean end.
    source.once("close", () => {
      if ("complete" in source && !source.complete && !this.destroyed) this.destroy(this.failure(new Error("the response ended early")));
    });
  }

  override _read(): void {
    this.source?.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.upgraded) {
      this.upgraded.write(chunk, callback);
    } else if (this.api.upgrade) {
      this.early.push({ chunk, callback });
    } else if (this.req.write(chunk)) {
      callback();
    } else {
      this.req.once("drain", () => callback());
    }
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (this.upgraded) {
      this.upgraded.end();
      callback();
    } else if (this.api.upgrade) {
      this.endedEarly = () => callback();
    } else {
      this.req.end(() => callback());
    }
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.req.destroy();
    this.upgraded?.destroy();
    if (this.source && "destroy" in this.source) this.source.destroy();
    callback(error);
  }
}

import type { IncomingMessage } from "node:http";
import type { Duplex } from "node:stream";
import type { TunnelStream } from "@gatehouse/proto";
import {
  RemoteCommandObserver,
  followsSubprotocol,
  readStatus,
  relayedResponseHeaders,
  type KubeRequestInfo,
  type RemoteCommandEvent,
  type ResponseHead,
} from "@gatehouse/protocols/kubernetes";
import { relay } from "../../sessions/relay.js";
import type { StreamRecorder } from "../../sessions/stream-recorder.js";
import type { RequestDeps } from "./api-request.js";
import { RequestRecord } from "./api-request.js";
import type { KubeSession } from "./kube-client-connection.js";
import { refusal, replyRefusalOnSocket } from "./kube-replies.js";
import { requestDraft } from "./request-event.js";
import { BodyKeeper, openRequestStream, readResponseHead } from "./request-stream.js";

/**
 * An upgrade request (exec, attach, port-forward; WebSocket or SPDY): journaled like any request,
 * then the handshake goes to the API server through the connector; its answer comes back as it
 * is. After a 101 both ways are raw bytes, relayed with backpressure. An exec or attach over the
 * remote command WebSocket protocol is followed (remote-command.ts): its stdin, stdout, stderr and
 * resizes become a recorded byte stream (stdin durable before the cluster sees it, in strict mode),
 * its exit code the event's outcome. Other upgrades (port-forward's SPDY) are relayed and counted.
 */
export async function serveUpgrade(deps: RequestDeps, kube: KubeSession, req: IncomingMessage, socket: Duplex, head: Buffer, path: string, info: KubeRequestInfo): Promise<void> {
  const record = new RequestRecord(kube, requestDraft(info, req, path));
  const refusedByJournal = await record.writeAhead();
  if (refusedByJournal) {
    replyRefusalOnSocket(socket, refusal("ServiceUnavailable", refusedByJournal));
    await record.finish("error", { httpStatus: 503, message: refusedByJournal });
    return;
  }
  const opened = await openRequestStream(deps.broker, kube, req, path, true);
  if (!opened.ok) {
    const message = `gatehouse: the request could not be sent through the connector: ${opened.message}`;
    replyRefusalOnSocket(socket, refusal("ServiceUnavailable", message));
    await record.finish("error", { httpStatus: 503, message });
    return;
  }
  const stream = opened.stream;
  stream.on("error", () => undefined);
  if (head.length > 0) stream.write(head);
  const clientGone = () => stream.destroy();
  socket.once("close", clientGone);
  let response: { head: ResponseHead; rest: Buffer };
  try {
    response = await readResponseHead(stream);
  } catch (error) {
    const message = `gatehouse: the cluster did not answer: ${(error as Error).message}`;
    replyRefusalOnSocket(socket, refusal("ServiceUnavailable", message));
    await record.finish("error", { httpStatus: 503, message });
    return;
  } finally {
    socket.off("close", clientGone);
  }
  if (response.head.status !== 101) {
    await passRefusal(socket, stream, response, record);
    return;
  }

  const subprotocol = header(response.head, "sec-websocket-protocol");
  const upgradedTo = header(response.head, "upgrade");
  socket.write(responseHead(response.head, relayedResponseHeaders(response.head.headers, true)));
  // What came behind the 101 is the server's first frames: through the relay, so they are followed too.
  if (response.rest.length > 0) stream.unshift(response.rest);

  const follows = (info.verb === "exec" || info.verb === "attach") && followsSubprotocol(subprotocol);
  const tty = new URL(path, "http://x").searchParams.get("tty") === "true";
  let recorder: StreamRecorder | undefined;
  if (follows) {
    try {
      recorder = kube.session.openStream({ kind: "exec", channel: 0, capBytes: deps.config().recording.ssh.streamBytes, ...(tty ? { term: "xterm" } : {}) });
    } catch (error) {
      // Strict, and the journal takes no new work: the exec is not relayed.
      const message = `gatehouse: the gateway cannot record this exec (${(error as Error).message})`;
      socket.destroy();
      stream.destroy();
      await record.finish("error", { httpStatus: 101, message });
      return;
    }
  }
  const observer = new RemoteCommandObserver();
  let exit: Extract<RemoteCommandEvent, { type: "status" }> | undefined;
  let stdinClosed = false;
  const result = await relay(socket, stream, {
    ...(recorder
      ? {
          up: (chunk: Buffer) => {
            let durable: Promise<void> | undefined;
            for (const event of observer.client(chunk)) {
              if (event.type === "stdin") durable = recorder.input(event.data) ?? durable;
              else if (event.type === "resize") recorder.resize(event.cols, event.rows);
              else if (event.type === "stdin_closed") stdinClosed = true;
            }
            return durable;
          },
          down: (chunk: Buffer) => {
            for (const event of observer.server(chunk)) {
              if (event.type === "stdout") recorder.output(event.data, 1);
              else if (event.type === "stderr") recorder.output(event.data, 2);
              else if (event.type === "status") exit = event;
            }
          },
        }
      : {}),
  });
  const summary = recorder?.end();
  kube.bytes.up += result.bytesUp;
  kube.bytes.down += result.bytesDown;
  const outcome = exit ? (exit.exitCode === 0 ? "ok" : "error") : result.error ? "error" : "ok";
  await record.finish(outcome, {
    httpStatus: 101,
    ...(subprotocol ? { subprotocol } : upgradedTo ? { upgrade: upgradedTo } : {}),
    ...(exit ? { exitCode: exit.exitCode, ...(exit.reason ? { reason: exit.reason } : {}), ...(exit.message ? { message: exit.message } : {}) } : {}),
    ...(tty ? { tty: true } : {}),
    ...(stdinClosed ? { stdinClosed: true } : {}),
    bytesIn: result.bytesUp,
    bytesOut: result.bytesDown,
    endedBy: result.endedBy,
    ...(result.error ? { error: result.error.message } : {}),
    ...(result.violation ? { violation: result.violation } : {}),
    ...(summary ? { stream: summary } : {}),
    ...(follows ? {} : { recorded: "bytes counted; the upgraded protocol is not followed" }),
  });
}

/** The API server refused the upgrade (403 from RBAC, 400): its answer goes to the client as it is, then the connection closes. */
async function passRefusal(socket: Duplex, stream: TunnelStream, response: { head: ResponseHead; rest: Buffer }, record: RequestRecord): Promise<void> {
  const body = new BodyKeeper(64 * 1024);
  // The body ends with the connection (the connector has already undone any chunked encoding).
  const headers = relayedResponseHeaders(response.head.headers, false).filter(([name]) => name.toLowerCase() !== "content-length");
  socket.write(responseHead(response.head, [...headers, ["Connection", "close"]]));
  await new Promise<void>((resolve) => {
    const write = (chunk: Buffer) => {
      body.push(chunk);
      if (!socket.write(chunk)) stream.pause();
    };
    socket.on("drain", () => stream.resume());
    if (response.rest.length > 0) write(response.rest);
    stream.on("data", write);
    stream.once("end", () => socket.end(resolve));
    stream.once("error", () => {
      socket.destroy();
      resolve();
    });
    socket.once("close", () => {
      stream.destroy();
      resolve();
    });
    stream.resume();
  });
  const status = readStatus(body.bytes());
  await record.finish("error", { httpStatus: response.head.status, ...(status?.reason ? { reason: status.reason } : {}), ...(status?.message ? { message: status.message } : {}), bytesOut: body.total });
}

function header(head: ResponseHead, name: string): string | undefined {
  return head.headers.find(([n]) => n.toLowerCase() === name)?.[1];
}

function responseHead(head: ResponseHead, headers: [string, string][]): string {
  const reason = head.statusMessage.replace(/[\r\n]/g, " ") || "Status";
  const lines = headers.map(([name, value]) => `${name}: ${value.replace(/[\r\n]/g, " ")}`);
  return `HTTP/1.1 ${head.status} ${reason}\r\n${lines.join("\r\n")}${lines.length > 0 ? "\r\n" : ""}\r\n`;
}

import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { REMOTE_COMMAND_SUBPROTOCOLS, RemoteCommandObserver, exitCodeOf, followsSubprotocol } from "./remote-command.js";
import { WebSocketFrameError } from "./websocket-reader.js";

const BINARY = 2;
const TEXT = 1;

/** One FIN frame; masked with a random key when `masked` (a client frame). */
function frame(opcode: number, payload: Buffer, masked: boolean, fin = true): Buffer {
  const header: number[] = [(fin ? 0x80 : 0) | opcode];
  const maskBit = masked ? 0x80 : 0;
  if (payload.length < 126) header.push(maskBit | payload.length);
  else if (payload.length <= 0xffff) header.push(maskBit | 126, payload.length >> 8, payload.length & 0xff);
  else {
    const len = Buffer.alloc(8);
    len.writeBigUInt64BE(BigInt(payload.length));
    header.push(maskBit | 127, ...len);
  }
  if (!masked) return Buffer.concat([Buffer.from(header), payload]);
  const key = randomBytes(4);
  const body = Buffer.alloc(payload.length);
  for (let i = 0; i < payload.length; i++) body[i] = payload[i]! ^ key[i % 4]!;
  return Buffer.concat([Buffer.from(header), key, body]);
}

const onChannel = (channel: number, data: string | Buffer | number[]) =>
  Buffer.concat([Buffer.from([channel]), Array.isArray(data) ? Buffer.from(data) : typeof data === "string" ? Buffer.from(data, "utf8") : data]);
const fromClient = (channel: number, data: string | Buffer | number[]) => frame(BINARY, onChannel(channel, data), true);
const fromServer = (channel: number, data: string | Buffer | number[]) => frame(BINARY, onChannel(channel, data), false);

const SUCCESS = '{"metadata":{},"status":"Success"}';
/** What the real kubelet writes on the error channel when the command exits 7 (no kind: its TypeMeta is empty). */
const EXIT_7 =
  '{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: exit status 7","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"7"}]}}';

describe("RemoteCommandObserver.client", () => {
  it("yields stdin data from channel 0", () => {
    const events = new RemoteCommandObserver().client(fromClient(0, "echo hi\n"));
    expect(events).toEqual([{ type: "stdin", data: Buffer.from("echo hi\n") }]);
  });

  it("yields a resize from channel 4", () => {
    const events = new RemoteCommandObserver().client(fromClient(4, '{"Width":120,"Height":40}'));
    expect(events).toEqual([{ type: "resize", cols: 120, rows: 40 }]);
  });

  it("yields stdin_closed from v5's channel 255 closing channel 0", () => {
    const events = new RemoteCommandObserver().client(fromClient(255, [0]));
    expect(events).toEqual([{ type: "stdin_closed" }]);
  });

  it("ignores channel 255 closing another channel, or naming none", () => {
    const o = new RemoteCommandObserver();
    expect(o.client(fromClient(255, [1]))).toEqual([]);
    expect(o.client(fromClient(255, []))).toEqual([]);
  });

  it("ignores malformed resizes", () => {
    const o = new RemoteCommandObserver();
    for (const bad of ["not json", '{"Width":-1,"Height":40}', '{"Width":80.5,"Height":24}', '{"Width":80}', "null", '{"Width":"wide","Height":24}']) {
      expect(o.client(fromClient(4, bad))).toEqual([]);
    }
    expect(o.client(fromClient(4, '{"Width":"80","Height":24}'))).toEqual([{ type: "resize", cols: 80, rows: 24 }]);
  });

  it("ignores an empty stdin message, empty messages and text frames", () => {
    const o = new RemoteCommandObserver();
    expect(o.client(fromClient(0, ""))).toEqual([]);
    expect(o.client(frame(BINARY, Buffer.alloc(0), true))).toEqual([]);
    expect(o.client(frame(TEXT, onChannel(0, "ls\n"), true))).toEqual([]);
  });

  it("ignores ping, pong and close frames", () => {
    const o = new RemoteCommandObserver();
    expect(o.client(frame(9, Buffer.from([0, 1]), true))).toEqual([]);
    expect(o.client(frame(10, Buffer.alloc(0), true))).toEqual([]);
    expect(o.client(frame(8, Buffer.from([0x03, 0xe8]), true))).toEqual([]);
  });

  it("does not read server channels from the client (stdout there is ignored)", () => {
    expect(new RemoteCommandObserver().client(fromClient(1, "x"))).toEqual([]);
  });

  it("follows a whole session pushed one byte at a time, events in order", () => {
    const bytes = Buffer.concat([fromClient(4, '{"Width":80,"Height":24}'), fromClient(0, "ls\n"), fromClient(0, "exit\n"), fromClient(255, [0])]);
    const o = new RemoteCommandObserver();
    const events = [];
    for (let i = 0; i < bytes.length; i++) events.push(...o.client(bytes.subarray(i, i + 1)));
    expect(events).toEqual([
      { type: "resize", cols: 80, rows: 24 },
      { type: "stdin", data: Buffer.from("ls\n") },
      { type: "stdin", data: Buffer.from("exit\n") },
      { type: "stdin_closed" },
    ]);
  });

  it("joins stdin sent as a fragmented message", () => {
    const payload = onChannel(0, "hello");
    const bytes = Buffer.concat([frame(BINARY, payload.subarray(0, 3), true, false), frame(0, payload.subarray(3), true)]);
    expect(new RemoteCommandObserver().client(bytes)).toEqual([{ type: "stdin", data: Buffer.from("hello") }]);
  });

  it("throws WebSocketFrameError on an unmasked client frame", () => {
    expect(() => new RemoteCommandObserver().client(fromServer(0, "x"))).toThrow(WebSocketFrameError);
  });
});

describe("RemoteCommandObserver.server", () => {
  it("yields stdout (1) and stderr (2)", () => {
    const o = new RemoteCommandObserver();
    expect(o.server(Buffer.concat([fromServer(1, "out\n"), fromServer(2, "err\n")]))).toEqual([
      { type: "stdout", data: Buffer.from("out\n") },
      { type: "stderr", data: Buffer.from("err\n") },
    ]);
  });

  it("ignores empty stdout and stderr messages (v5 sends them when a stream opens)", () => {
    const o = new RemoteCommandObserver();
    expect(o.server(Buffer.concat([fromServer(1, ""), fromServer(2, "")]))).toEqual([]);
  });

  it("yields status with exitCode 0 on Success", () => {
    expect(new RemoteCommandObserver().server(fromServer(3, SUCCESS))).toEqual([{ type: "status", exitCode: 0 }]);
  });

  it("yields status with the exit code of the kubelet's NonZeroExitCode Status", () => {
    const [event] = new RemoteCommandObserver().server(fromServer(3, EXIT_7));
    expect(event).toMatchObject({ type: "status", exitCode: 7 });
  });

  // The kubelet's error-channel Status has no `kind` (its TypeMeta is empty): its reason and message are still kept.
  it("keeps the kubelet's reason and message with the exit code", () => {
    expect(new RemoteCommandObserver().server(fromServer(3, EXIT_7))).toEqual([
      { type: "status", exitCode: 7, reason: "NonZeroExitCode", message: "command terminated with non-zero exit code: exit status 7" },
    ]);
  });

  it("yields exitCode null with the message for another kubelet Failure", () => {
    const failure = '{"metadata":{},"status":"Failure","message":"container not found (\\"app\\")","reason":"InternalError","code":500}';
    const [event] = new RemoteCommandObserver().server(fromServer(3, failure));
    expect(event).toMatchObject({ type: "status", exitCode: null, reason: "InternalError", message: 'container not found ("app")' });
  });

  it("yields exitCode null with the message and reason for another Failure that names its kind", () => {
    const failure = JSON.stringify({ kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message: "you must specify at least 1 command", reason: "BadRequest", code: 400 });
    const [event] = new RemoteCommandObserver().server(fromServer(3, failure));
    expect(event).toMatchObject({ type: "status", exitCode: null, reason: "BadRequest", message: "you must specify at least 1 command" });
  });

  it("ignores text frames, empty messages and control frames", () => {
    const o = new RemoteCommandObserver();
    expect(o.server(frame(TEXT, onChannel(1, "out"), false))).toEqual([]);
    expect(o.server(frame(BINARY, Buffer.alloc(0), false))).toEqual([]);
    expect(o.server(frame(9, onChannel(1, "x"), false))).toEqual([]);
    expect(o.server(frame(8, Buffer.from([0x03, 0xe8]), false))).toEqual([]);
  });

  it("does not read client channels from the server", () => {
    const o = new RemoteCommandObserver();
    expect(o.server(Buffer.concat([fromServer(0, "x"), fromServer(4, '{"Width":1,"Height":1}'), fromServer(255, [0])]))).toEqual([]);
  });

  it("follows output split across chunks at every boundary", () => {
    const bytes = Buffer.concat([fromServer(1, "a".repeat(200)), fromServer(2, "e"), fromServer(3, SUCCESS)]);
    for (let cut = 0; cut <= bytes.length; cut++) {
      const o = new RemoteCommandObserver();
      expect([...o.server(bytes.subarray(0, cut)), ...o.server(bytes.subarray(cut))]).toEqual([
        { type: "stdout", data: Buffer.from("a".repeat(200)) },
        { type: "stderr", data: Buffer.from("e") },
        { type: "status", exitCode: 0 },
      ]);
    }
  });

  it("keeps the client and server directions apart", () => {
    const o = new RemoteCommandObserver();
    // A partial client frame must not disturb the server reader.
    const c = fromClient(0, "in");
    expect(o.client(c.subarray(0, 3))).toEqual([]);
    expect(o.server(fromServer(1, "out"))).toEqual([{ type: "stdout", data: Buffer.from("out") }]);
    expect(o.client(c.subarray(3))).toEqual([{ type: "stdin", data: Buffer.from("in") }]);
  });

  it("throws WebSocketFrameError on a masked server frame", () => {
    expect(() => new RemoteCommandObserver().server(fromClient(1, "x"))).toThrow(WebSocketFrameError);
  });
});

describe("exitCodeOf", () => {
  it("0 on Success, the ExitCode cause on NonZeroExitCode", () => {
    expect(exitCodeOf(Buffer.from(SUCCESS))).toEqual({ exitCode: 0 });
    expect(exitCodeOf(Buffer.from(EXIT_7)).exitCode).toBe(7);
  });

  it("null when the ExitCode cause is missing or not an integer", () => {
    const noCause = '{"metadata":{},"status":"Failure","reason":"NonZeroExitCode","details":{"causes":[{"reason":"Other","message":"7"}]}}';
    const notInteger = '{"metadata":{},"status":"Failure","reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"seven"}]}}';
    const noDetails = '{"metadata":{},"status":"Failure"}';
    for (const body of [noCause, notInteger, noDetails]) expect(exitCodeOf(Buffer.from(body)).exitCode).toBeNull();
  });

  it("null with the text as message when the channel carries no JSON", () => {
    expect(exitCodeOf(Buffer.from("error: something broke"))).toEqual({ exitCode: null, message: "error: something broke" });
    expect(exitCodeOf(Buffer.from("x".repeat(5000))).message).toHaveLength(1024);
  });
});

describe("followsSubprotocol", () => {
  it("is true only for v4 and v5.channel.k8s.io", () => {
    expect(followsSubprotocol("v5.channel.k8s.io")).toBe(true);
    expect(followsSubprotocol("v4.channel.k8s.io")).toBe(true);
    for (const other of [undefined, "", "v3.channel.k8s.io", "channel.k8s.io", "base64.channel.k8s.io", "v4.base64.channel.k8s.io", "SPDY/3.1+portforward.k8s.io", "V5.CHANNEL.K8S.IO", " v5.channel.k8s.io"]) {
      expect(followsSubprotocol(other)).toBe(false);
    }
  });

  it("lists v5 before v4", () => {
    expect([...REMOTE_COMMAND_SUBPROTOCOLS]).toEqual(["v5.channel.k8s.io", "v4.channel.k8s.io"]);
  });
});

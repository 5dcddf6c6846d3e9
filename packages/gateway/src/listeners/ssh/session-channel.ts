import type { Duplex } from "node:stream";
import type { AcceptConnection, PseudoTtyInfo, ServerChannel, Session } from "ssh2";
import {
  ChannelFrame,
  ChannelFrameReader,
  SSH_PARAMS,
  decodeExitStatus,
  decodeJson,
  encodeFrame,
  encodeJsonFrame,
  isSshProtocolError,
  type ExitSignal,
  type SshChannelRequest,
  type WindowSize,
} from "@gatehouse/protocols/ssh";
import type { RecordedSession } from "../../sessions/recorder.js";
import { recordingRefusalReason } from "../listener-steps.js";
import { ChannelRecording } from "./channel-recording.js";
import type { SshConnectionState } from "./ssh-connection-state.js";
import { SessionReplies } from "./session-replies.js";

type MaybeAccept = (() => void) | undefined;
type MaybeReject = (() => void) | undefined;
type StartAccept = (() => ServerChannel | undefined) | undefined;

/**
 * One `session` channel: collects the client's `pty-req` and `env`, then, on its `exec`, `shell`
 * or `subsystem`, journals it (write-ahead: in strict mode the resource never sees a command the
 * journal does not hold), opens the channel's tunnel stream and relays the client's channel ↔
 * frames (channel-frames.ts) with backpressure both ways, recording the outcome when it closes and
 * what ChannelRecording records of the bytes. Agent and X11 forwarding are refused, recorded as `denied`.
 *
 * Every request is answered at once, so answers go in the order the requests came (RFC 4254
 * §5.4). An exec, shell or subsystem is accepted before the journal and the connector have
 * answered: ssh2 drops stdin (and EOF) that arrive before the channel is accepted, and OpenSSH
 * sends them right behind its request. If the command cannot be run after all, the client reads
 * why on the channel's stderr and the channel ends with exit status 1.
 */
export function serveSessionChannel(accept: AcceptConnection<Session>, state: SshConnectionState): void {
  const session = accept();
  const replies = new SessionReplies(session);
  let pty: PseudoTtyInfo | undefined;
  const env: Record<string, string> = {};
  let control: ChannelControl | undefined;
  session.on("pty", (ok: MaybeAccept, no: MaybeReject, info: PseudoTtyInfo) => {
    if (control) return replies.refuse(no);
    pty = info;
    replies.accept(ok);
  });
  session.on("env", (ok: MaybeAccept, no: MaybeReject, info: { key: string; val: string }) => {
    if (control) return replies.refuse(no);
    env[info.key] = info.val;
    replies.accept(ok);
  });
  session.on("window-change", (ok: MaybeAccept, _no: MaybeReject, info: WindowSize) => {
    if (pty && !control) Object.assign(pty, { cols: info.cols, rows: info.rows, width: info.width, height: info.height });
    control?.windowChange(info);
    replies.accept(ok);
  });
  session.on("signal", (ok: MaybeAccept, _no: MaybeReject, info: { name: string }) => {
    control?.signal(info.name);
    replies.accept(ok);
  });
  session.on("auth-agent", (_ok: MaybeAccept, no: MaybeReject) => {
    replies.refuse(no);
    state.refuseRequest("auth-agent-req@openssh.com", "agent forwarding is not relayed by the gateway");
  });
  session.on("x11", (_ok: MaybeAccept, no: MaybeReject) => {
    replies.refuse(no);
    state.refuseRequest("x11-req", "X11 forwarding is not relayed by the gateway");
  });
  const start = (request: SshChannelRequest, ok: StartAccept, no: MaybeReject) => {
    // One exec, shell or subsystem per channel (RFC 4254 §6.5): a second one is refused.
    if (control) return replies.refuse(no);
    // Answered here, synchronously: the client's stdin and EOF that follow the request find the channel.
    const channel = ok?.();
    if (!channel) return;
    const started = (control = new ChannelControl());
    startChannel(state, request, pty ? { ...pty } : undefined, env, channel, started).catch((error: unknown) => {
      state.log.error({ err: error }, "ssh channel failed");
      fail(channel, "internal gateway error");
    });
  };
  session.on("exec", (ok: StartAccept, no: MaybeReject, info: { command: string }) => start({ request: "exec", command: info.command }, ok, no));
  session.on("shell", (ok: StartAccept, no: MaybeReject) => start({ request: "shell" }, ok, no));
  session.on("subsystem", (ok: StartAccept, no: MaybeReject, info: { name: string }) => start({ request: "subsystem", subsystem: info.name }, ok, no));
}

interface RunningChannel {
  windowChange(size: WindowSize): void;
  signal(name: string): void;
}

/** The client's window changes and signals: held until the channel's relay runs, then passed on. */
class ChannelControl implements RunningChannel {
  private running: RunningChannel | undefined;
  private readonly held: Array<(running: RunningChannel) => void> = [];

  windowChange(size: WindowSize): void {
    this.pass((running) => running.windowChange(size));
  }

  signal(name: string): void {
    this.pass((running) => running.signal(name));
  }

  attach(running: RunningChannel): void {
    this.running = running;
    for (const pass of this.held.splice(0)) pass(running);
  }

  private pass(action: (running: RunningChannel) => void): void {
    if (this.running) action(this.running);
    else this.held.push(action);
  }
}

/** Where a channel's output goes in its event: kept up to `recording.ssh.execOutputBytes`, counted past it. */
class KeptOutput {
  private readonly chunks: Buffer[] = [];
  private kept = 0;
  total = 0;
  constructor(private readonly max: number) {}
  add(bytes: Uint8Array): void {
    this.total += bytes.byteLength;
    const room = this.max - this.kept;
    if (room <= 0) return;
    const piece = Buffer.from(bytes.subarray(0, room));
    this.chunks.push(piece);
    this.kept += piece.byteLength;
  }
  get truncated(): boolean {
    return this.total > this.kept;
  }
  text(): string {
    return Buffer.concat(this.chunks).toString("utf8");
  }
}

async function startChannel(
  state: SshConnectionState,
  request: SshChannelRequest,
  pty: PseudoTtyInfo | undefined,
  env: Record<string, string>,
  channel: ServerChannel,
  control: ChannelControl,
): Promise<void> {
  let clientClosed = false;
  channel.once("close", () => (clientClosed = true));
  const opened = await state.ready;
  if (clientClosed) return;
  if (!opened.ok) {
    // The session could not be opened (denied, unknown connection, connector unreachable): say why on stderr.
    fail(channel, opened.message);
    state.endSoon();
    return;
  }
  const { session } = opened;
  const kind = request.request;
  const command = request.request === "exec" ? request.command : request.request === "subsystem" ? request.subsystem : null;
  const ptyDetails = pty ? { term: pty.term, cols: pty.cols, rows: pty.rows } : undefined;
  const startedUs = session.now();
  const key = {};
  const draftDetails = { ...(ptyDetails ? { pty: ptyDetails } : {}), ...(Object.keys(env).length > 0 ? { env } : {}) };
  const completeRefused = (message: string) =>
    session
      .commandCompleted(key, { kind, command, params: null, outcome: "error", timeUs: startedUs, durationUs: session.now() - startedUs, details: { ...draftDetails, message } })
      .catch(() => undefined);
  // The latency the gateway adds (command-timing.ts): from the request to its write-ahead being durable; the channel opens next.
  const heldSinceMs = performance.now();
  session.commandStarted(key, { kind, command, params: null, outcome: null, timeUs: startedUs, details: draftDetails, durationUs: null });
  try {
    await session.writeAhead();
    session.metrics?.addedLatency((performance.now() - heldSinceMs) / 1000);
  } catch (error) {
    const { why } = recordingRefusalReason(error as Error);
    fail(channel, `the gateway cannot record this session (${why}); the ${kind} was not run`);
    state.endSoon();
    return;
  }
  const params: Record<string, string> = { [SSH_PARAMS.channel]: "session", [SSH_PARAMS.request]: kind };
  if (request.request === "exec") params[SSH_PARAMS.command] = request.command;
  if (request.request === "subsystem") params[SSH_PARAMS.subsystem] = request.subsystem;
  if (pty) params[SSH_PARAMS.pty] = JSON.stringify({ term: pty.term, cols: pty.cols, rows: pty.rows, width: pty.width, height: pty.height, modes: pty.modes ?? {} });
  if (Object.keys(env).length > 0) params[SSH_PARAMS.env] = JSON.stringify(env);
  const stream = await state.broker.openChannel(session, params);
  if (!stream.ok) {
    // The resource's sshd refused the request, or the connector could not open it (contract): the client reads why.
    await completeRefused(stream.message);
    state.log.info({ kind, message: stream.message }, "ssh channel request refused by the resource side");
    fail(channel, stream.message);
    return;
  }
  if (clientClosed) {
    stream.stream.destroy();
    await completeRefused("the client closed the channel before it started");
    return;
  }
  const what = { kind, command, pty, channel: (channel as unknown as { incoming: { id: number } }).incoming.id };
  let recording: ChannelRecording;
  try {
    recording = new ChannelRecording(session, what, state.config().recording.ssh.streamBytes);
  } catch (error) {
    // Strict mode, and the journal cannot take the terminal stream's start.
    stream.stream.destroy();
    await completeRefused((error as Error).message);
    fail(channel, `the gateway cannot record this session (${recordingRefusalReason(error as Error).why}); the ${kind} was stopped`);
    return;
  }
  control.attach(relayChannel(state, session, channel, stream.stream, recording, { key, kind, command, startedUs, details: draftDetails }));
}

/** Tells the client why on its stderr, then ends the channel as a failed command (exit status 1). */
function fail(channel: ServerChannel, message: string): void {
  if (channel.destroyed || channel.writableEnded) return;
  channel.stderr.write(`gatehouse: ${message}\r\n`);
  channel.exit(1);
  channel.end();
}

function relayChannel(
  state: SshConnectionState,
  session: RecordedSession,
  channel: ServerChannel,
  stream: Duplex,
  recording: ChannelRecording,
  what: { key: object; kind: "exec" | "shell" | "subsystem"; command: string | null; startedUs: number; details: Record<string, unknown> },
): RunningChannel {
  const output = new KeptOutput(what.kind === "exec" ? state.config().recording.ssh.execOutputBytes : 0);
  let bytesIn = 0;
  let exitStatus: number | undefined;
  let exitSignal: ExitSignal | undefined;
  let resizes = 0;
  let failure: string | undefined;
  const reader = new ChannelFrameReader();
  const toResource = (frame: Uint8Array) => {
    if (stream.destroyed || stream.writableEnded) return true;
    return stream.write(frame);
  };
  const forget = state.track(channel);
  /** The channel's bytes cannot be recorded or followed: the client is told why, the channel and its stream end. */
  const stop = (message: string, clientMessage: string) => {
    failure ??= message;
    fail(channel, clientMessage);
    stream.destroy();
  };
  const stopOn = (error: unknown) => {
    if (isSshProtocolError(error)) {
      state.log.warn({ err: error }, "ssh channel: the client's or the resource's bytes do not follow the protocol; channel closed");
      stop(error.message, error.clientMessage);
    } else {
      const { why } = recordingRefusalReason(error as Error);
      stop((error as Error).message, `the gateway cannot record this session (${why}); the ${what.kind} was stopped`);
    }
  };

  // Client → resource: stdin as Data frames, each chunk once its recording allows (write-ahead);
  // the channel stops being read while a chunk waits, or while the tunnel is full.
  let waiting: Promise<void> | undefined;
  const forward = (chunk: Buffer) => {
    if (!toResource(encodeFrame(ChannelFrame.Data, chunk))) {
      channel.pause();
      stream.once("drain", () => channel.resume());
    }
  };
  channel.on("data", (chunk: Buffer) => {
    bytesIn += chunk.byteLength;
    let gate: Promise<void> | undefined;
    try {
      gate = recording.client(chunk);
    } catch (error) {
      stopOn(error);
      return;
    }
    if (!gate) return forward(chunk);
    channel.pause();
    waiting = gate.then(
      () => {
        waiting = undefined;
        forward(chunk);
        if (!stream.writableNeedDrain) channel.resume();
      },
      (error: unknown) => stopOn(error),
    );
  });
  channel.on("end", () => {
    const eof = () => toResource(encodeFrame(ChannelFrame.Eof));
    if (waiting) void waiting.then(eof);
    else eof();
  });
  // The client closed the channel (or its connection): the resource's end still comes (its exit
  // status, its output counted) but goes nowhere, so the tunnel stream is read again whatever waited for the client.
  let clientGone = false;
  channel.on("close", () => {
    clientGone = true;
    if (!stream.writableEnded) stream.end();
    stream.resume();
  });
  channel.on("error", () => undefined);
  channel.stderr.on("error", () => undefined);

  // Resource → client: frames to the channel; the tunnel stream stops being read while the client is slow.
  const paced = (ok: boolean, writable: NodeJS.EventEmitter) => {
    if (ok || clientGone) return;
    stream.pause();
    writable.once("drain", () => stream.resume());
  };
  const onFrames = (chunk: Buffer) => {
    reader.push(chunk);
    try {
      for (let frame = reader.next(); frame; frame = reader.next()) {
        switch (frame.type) {
          case ChannelFrame.Data:
            output.add(frame.payload);
            recording.server(frame.payload, 1);
            if (!clientGone) paced(channel.write(frame.payload), channel);
            break;
          case ChannelFrame.Stderr:
            output.add(frame.payload);
            recording.server(frame.payload, 2);
            if (!clientGone) paced(channel.stderr.write(frame.payload), channel.stderr);
            break;
          case ChannelFrame.Eof:
            // Not sent yet: ssh2 drops an exit status sent after EOF, and the connector sends EOF first.
            // The channel's end (below) sends EOF after the exit status and every byte of output.
            break;
          case ChannelFrame.ExitStatus:
            exitStatus = decodeExitStatus(frame.payload);
            break;
          case ChannelFrame.ExitSignal:
            exitSignal = decodeJson<ExitSignal>(frame.payload);
            break;
          case ChannelFrame.WindowChange:
          case ChannelFrame.Signal:
            throw new Error(`the connector sent a ${frame.type === ChannelFrame.Signal ? "signal" : "window-change"} frame, which only goes the other way`);
        }
      }
    } catch (error) {
      if (isSshProtocolError(error)) return stopOn(error);
      failure = (error as Error).message;
      state.log.warn({ err: error }, "ssh channel: bad frame from the connector; channel closed");
      stream.destroy();
    }
  };
  stream.on("data", onFrames);
  let done = false;
  const finish = (error?: Error) => {
    if (done) return;
    done = true;
    forget();
    if (error && !failure) failure = error.message;
    // Output still queued for the client's window goes first, then the exit status, then EOF and close.
    const close = () => {
      if (clientGone || channel.writableEnded) return;
      if (exitStatus !== undefined) channel.exit(exitStatus);
      else if (exitSignal !== undefined) channel.exit(exitSignal.signal, exitSignal.coreDumped, exitSignal.message);
      channel.end();
    };
    if (channel.writableLength > 0) channel.once("drain", close);
    else close();
    const bytesOut = output.total;
    state.bytes.up += bytesIn;
    state.bytes.down += bytesOut;
    const details: Record<string, unknown> = { ...what.details, bytesIn, bytesOut, ...recording.end() };
    if (exitStatus !== undefined) details.exitStatus = exitStatus;
    if (exitSignal !== undefined) details.exitSignal = exitSignal.signal;
    if (what.kind === "exec") {
      details.output = output.text();
      details.outputTruncated = output.truncated;
    }
    if (what.kind === "shell") details.resizes = resizes;
    if (failure) details.error = failure;
    const outcome = exitStatus === 0 && !failure ? "ok" : "error";
    void session
      .commandCompleted(what.key, { kind: what.kind, command: what.command, params: null, outcome, timeUs: what.startedUs, durationUs: session.now() - what.startedUs, details })
      .catch(() => undefined);
  };
  stream.on("end", () => finish());
  stream.on("close", () => {
    // Closed while paused for a slow client: the frames still buffered (the exit status among them) count.
    for (let chunk = stream.read() as Buffer | null; chunk !== null; chunk = stream.read() as Buffer | null) onFrames(chunk);
    finish();
  });
  stream.on("error", (error: Error) => finish(error));

  return {
    windowChange(size) {
      resizes++;
      recording.resize(size.cols, size.rows);
      toResource(encodeJsonFrame(ChannelFrame.WindowChange, { cols: size.cols, rows: size.rows, width: size.width, height: size.height }));
    },
    signal(name) {
      toResource(encodeFrame(ChannelFrame.Signal, new TextEncoder().encode(name)));
      void session.record({ kind: "signal", command: name, outcome: "ok", details: { channel: what.kind, ...(what.command ? { of: what.command } : {}) } }).catch(() => undefined);
    },
  };
}

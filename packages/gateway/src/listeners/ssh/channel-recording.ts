import {
  ScpObserver,
  SftpObserver,
  ShellLineExtractor,
  parseScpCommand,
  type ScpCompletion,
  type ScpTransfer,
  type SftpCompletion,
  type SftpOperation,
} from "@gatehouse/protocols/ssh";
import type { PseudoTtyInfo } from "ssh2";
import type { RecordedSession } from "../../sessions/recorder.js";
import type { StreamRecorder } from "../../sessions/stream-recorder.js";

/** What a running session channel is, for its recording. */
export interface ChannelWhat {
  kind: "exec" | "shell" | "subsystem";
  /** The exec's command line, or the subsystem's name; null for a shell. */
  command: string | null;
  /** The client's pty, when it asked for one (its size as it was when the channel started). */
  pty: PseudoTtyInfo | undefined;
  /** ssh2's channel number, for the reader of the record. */
  channel: number;
}

/**
 * What is recorded of one session channel's bytes, beside its exec/shell/subsystem event:
 * - a terminal (a channel with a pty): its stream (input, output, resizes: `gatehouse sessions
 *   export --format asciicast` plays it), and the lines typed into a shell as `shell_input` events;
 * - `sftp`: one `sftp` event per operation (sftp-observer.ts), mutating ones written ahead;
 * - an exec of `scp -t`/`scp -f` (legacy scp): one `scp` event per file, uploads written ahead.
 * A plain exec keeps its output in its event (`details.output`) and nothing more: its stdin may be a
 * whole file (`ssh host 'cat > f' < f`), which a stream would store again.
 *
 * `client()` says when a chunk may go on: undefined at once, or a promise that resolves once what it
 * started is durable (strict), rejecting when it cannot be — then the chunk must not reach the
 * resource. A byte stream the observer cannot follow throws SshProtocolError from `client()` or
 * `server()`: the listener closes the channel.
 */
export class ChannelRecording {
  private readonly stream: StreamRecorder | undefined;
  private readonly lines: ShellLineExtractor | undefined;
  private readonly observer: SftpObserver | ScpObserver | undefined;
  /** Whether the observer started a mutating command during the current `client()` call. */
  private startedNow = false;

  constructor(
    private readonly session: RecordedSession,
    private readonly what: ChannelWhat,
    streamCapBytes: number,
  ) {
    if (what.pty) {
      // Opening a stream journals its start (mandatory); in strict mode it throws when the journal cannot take it.
      this.stream = session.openStream({
        kind: what.kind === "shell" ? "shell" : "exec",
        channel: what.channel,
        capBytes: streamCapBytes,
        term: what.pty.term,
        cols: what.pty.cols,
        rows: what.pty.rows,
      });
      if (what.kind === "shell") this.lines = new ShellLineExtractor();
    }
    const now = () => session.now();
    if (what.kind === "subsystem" && what.command === "sftp") this.observer = new SftpObserver(this.sink("sftp"), { now });
    if (what.kind === "exec" && what.command !== null) {
      const scp = parseScpCommand(what.command);
      if (scp) this.observer = new ScpObserver(this.sink("scp"), { now, command: scp });
    }
  }

  /** Client → resource bytes (stdin). */
  client(chunk: Uint8Array): Promise<void> | undefined {
    const waits: Promise<void>[] = [];
    const input = this.stream?.input(chunk);
    if (input) waits.push(input);
    if (this.lines) {
      for (const typed of this.lines.push(chunk, this.session.now())) {
        void this.session
          .record({
            kind: "shell_input",
            command: typed.line,
            outcome: "ok",
            timeUs: typed.timeUs,
            details: { channel: this.what.channel, ...(typed.uncertain ? { uncertain: true, reasons: typed.reasons } : {}), ...(typed.truncated ? { truncated: true } : {}) },
          })
          .catch(() => undefined);
      }
    }
    if (this.observer) {
      this.startedNow = false;
      this.observer.client(chunk);
      if (this.startedNow) {
        const ahead = this.session.writeAhead();
        if (ahead) waits.push(ahead);
      }
    }
    if (waits.length === 0) return undefined;
    return waits.length === 1 ? waits[0] : Promise.all(waits).then(() => undefined);
  }

  /** Resource → client bytes (fd 1 stdout, 2 stderr). */
  server(chunk: Uint8Array, fd: 1 | 2): void {
    this.stream?.output(chunk, fd);
    // stderr is the remote program's diagnostics, not the sftp/scp protocol.
    if (fd === 1) this.observer?.server(chunk);
  }

  resize(cols: number, rows: number): void {
    this.stream?.resize(cols, rows);
  }

  /** The channel closed: operations in flight end as interrupted; the stream's summary for the channel's event. */
  end(): Record<string, unknown> {
    try {
      this.observer?.end();
    } catch {
      // a broken observer already said why
    }
    const details: Record<string, unknown> = {};
    const unsubmitted = this.lines?.pending();
    if (unsubmitted) details.unsubmittedInput = unsubmitted;
    if (this.stream && !this.stream.ended) details.stream = this.stream.end();
    return details;
  }

  private sink(kind: "sftp" | "scp") {
    const channel = this.what.channel;
    return {
      commandStarted: (operation: SftpOperation | ScpTransfer) => {
        this.startedNow = true;
        this.session.commandStarted(operation, { kind, command: operation.command, params: null, outcome: null, timeUs: operation.startedAt, durationUs: null, details: { channel } });
      },
      commandCompleted: (operation: SftpOperation | ScpTransfer, completion: SftpCompletion | ScpCompletion) => {
        const event = { kind, command: operation.command, params: null, outcome: completion.outcome, timeUs: operation.startedAt, durationUs: completion.durationUs, details: { channel, ...completion.details } };
        // Only mutating operations were written ahead; the others are plain events.
        void (operation.mutating ? this.session.commandCompleted(operation, event) : this.session.record(event)).catch(() => undefined);
      },
    };
  }
}

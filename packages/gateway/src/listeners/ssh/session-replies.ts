import type { ServerChannel, Session } from "ssh2";

type Answer = (() => unknown) | undefined;

/** What of ssh2's `Session` (server side) the replies below reach into; pinned by test/ssh-listener.test.ts. */
interface SessionInternals {
  _ending: boolean;
  _channel?: { _client: { _protocol: { channelSuccess(id: number): void; channelFailure(id: number): void } } };
  _chanInfo: { outgoing: { id: number } };
}

/**
 * Answers a `session` channel's requests whatever the client did in the meantime. ssh2's own
 * accept and reject do nothing once the client sent EOF on the channel, and nothing once the channel
 * runs. Our answer to an exec waits for the journal and the connector, and RFC 4254 lets a client
 * send EOF right after its request: `ssh HOST cmd </dev/null` does, and then waited forever for an
 * answer ssh2 silently dropped. So these answer anyway — unless the client closed the channel, when
 * no one is left to answer.
 */
export class SessionReplies {
  private eof = false;
  private closed = false;

  constructor(private readonly session: Session) {
    session.once("eof", () => (this.eof = true));
    session.once("close", () => (this.closed = true));
  }

  /** The client closed the channel: nothing to answer, nothing to run. */
  get clientClosed(): boolean {
    return this.closed;
  }

  /** Says yes to a request that starts nothing (pty-req, env, window-change, signal), if the client wants an answer. */
  accept(ok: Answer): void {
    if (!ok || this.closed) return;
    const running = this.internals._channel;
    if (running) running._client._protocol.channelSuccess(this.internals._chanInfo.outgoing.id);
    else this.despiteEof(ok);
  }

  /** Says no, if the client wants an answer. */
  refuse(no: Answer): void {
    if (!no || this.closed) return;
    const running = this.internals._channel;
    if (running) running._client._protocol.channelFailure(this.internals._chanInfo.outgoing.id);
    else this.despiteEof(no);
  }

  /**
   * Says yes to an exec, shell or subsystem and returns its channel; when the client already sent
   * EOF, the channel's input has ended, as it would have had the EOF come after.
   */
  start(ok: (() => ServerChannel | undefined) | undefined): ServerChannel | undefined {
    if (!ok || this.closed) return undefined;
    const channel = this.despiteEof(ok);
    if (channel && this.eof) {
      (channel as unknown as { incoming: { state: string } }).incoming.state = "eof";
      channel.push(null);
    }
    return channel;
  }

  private get internals(): SessionInternals {
    return this.session as unknown as SessionInternals;
  }

  private despiteEof<T>(answer: () => T): T {
    const internals = this.internals;
    const ending = internals._ending;
    internals._ending = false;
    try {
      return answer();
    } finally {
      internals._ending = ending;
    }
  }
}

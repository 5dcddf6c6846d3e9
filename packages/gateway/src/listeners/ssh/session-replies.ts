import type { Session } from "ssh2";

type Answer = (() => unknown) | undefined;

/** What of ssh2's `Session` (server side) the replies below reach into; pinned by test/ssh-listener.test.ts. */
interface SessionInternals {
  _channel?: { _client: { _protocol: { channelSuccess(id: number): void; channelFailure(id: number): void } } };
  _chanInfo: { outgoing: { id: number } };
}

/**
 * Answers a `session` channel's requests that want an answer. Before the channel runs, ssh2's own
 * accept and reject do it; once it runs (after its exec, shell or subsystem) they do nothing, and a
 * client asking for a second exec, a late pty or an env would wait for an answer forever, so the
 * answer is sent on the channel directly.
 */
export class SessionReplies {
  constructor(private readonly session: Session) {}

  /** Says yes to a request that starts nothing (pty-req, env, window-change, signal). */
  accept(ok: Answer): void {
    if (!ok) return;
    const running = this.internals._channel;
    if (running) running._client._protocol.channelSuccess(this.internals._chanInfo.outgoing.id);
    else ok();
  }

  /** Says no. */
  refuse(no: Answer): void {
    if (!no) return;
    const running = this.internals._channel;
    if (running) running._client._protocol.channelFailure(this.internals._chanInfo.outgoing.id);
    else no();
  }

  private get internals(): SessionInternals {
    return this.session as unknown as SessionInternals;
  }
}

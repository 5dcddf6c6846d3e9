import type { OpenStream } from "@gatehouse/proto";
import { SSH_PARAMS } from "@gatehouse/protocols/ssh";
import { ConnectorError } from "../../errors.js";
import { formatTarget } from "../tcp/tcp-dialer.js";
import type { DialContext, DialResult, Dialer } from "../types.js";
import { ChannelFrameStream } from "./channel-frame-stream.js";
import { directTcpipParams, openDirectTcpip, openSessionChannel, sessionChannelParams } from "./channel-open.js";
import { sshLifeline } from "./lifeline.js";
import { SshConnections } from "./ssh-connections.js";
import { logIn } from "./ssh-login.js";

// The connector's side of SSH (protocols/src/ssh/README.md is the contract). The gateway
// terminates the client's SSH; here one SSH connection to the resource's sshd per gateway session,
// opened by the session's main stream, and one channel on it per channel stream.

/**
 * An ssh dialer with its own registry of live connections (one per gateway session). The main
 * stream (no `ssh.channel` param) logs in and registers the connection under `open.sessionId`;
 * a channel stream finds it there.
 */
export function createSshDialer(connections: SshConnections = new SshConnections()): Dialer {
  return (open, ctx) => (open.params?.[SSH_PARAMS.channel] === undefined ? dialMain(open, ctx, connections) : dialChannel(open, ctx, connections));
}

async function dialMain(open: OpenStream, ctx: DialContext, connections: SshConnections): Promise<DialResult> {
  const where = formatTarget(open.target?.host ?? "", open.target?.port || 22);
  const user = open.credential?.user ?? "";
  if (user === "") throw new ConnectorError("CREDENTIAL_UNAVAILABLE", `ssh connection to ${where} names no credential.user to log in as`);
  const keyRef = open.target?.options?.privateKey ?? "";
  let privateKey: string | null = null;
  if (keyRef !== "") {
    if (ctx.resolveCredential === undefined) throw new ConnectorError("CREDENTIAL_UNAVAILABLE", `credential "${keyRef}": this connector cannot resolve references`);
    privateKey = await ctx.resolveCredential(keyRef);
  }
  const login = await logIn(open, { user, privateKey, password: ctx.password }, ctx);
  const { client } = login;
  if (ctx.signal.aborted) {
    client.end();
    throw new ConnectorError("TARGET_UNREACHABLE", `dial to ${where} cancelled`, { cause: ctx.signal.reason });
  }
  client.on("error", (err: Error) => ctx.logger.warn({ err: err.message, target: where }, "ssh connection error"));
  client.once("close", () => ctx.logger.info({ target: where }, "ssh connection closed"));
  connections.add(open.sessionId, client);
  ctx.logger.info({ target: where, user, serverVersion: login.serverVersion, hostKey: login.hostKey }, "ssh logged in");
  return {
    socket: sshLifeline(client, where),
    params: { [SSH_PARAMS.serverVersion]: login.serverVersion, [SSH_PARAMS.hostKeyFingerprint]: login.hostKey },
  };
}

async function dialChannel(open: OpenStream, ctx: DialContext, connections: SshConnections): Promise<DialResult> {
  const where = formatTarget(open.target?.host ?? "", open.target?.port || 22);
  const params = open.params ?? {};
  const kind = params[SSH_PARAMS.channel];
  const client = connections.get(open.sessionId);
  if (client === undefined) {
    throw new ConnectorError(
      "PROTOCOL_ERROR",
      `no ssh connection for session ${open.sessionId} on this connector (its main stream is not open here, or has ended); cannot open a ${kind} channel`,
    );
  }
  switch (kind) {
    case "session": {
      const request = sessionChannelParams(params);
      const channel = await openSessionChannel(client, request, where);
      ctx.logger.debug({ target: where, request: request.request.request }, "ssh session channel open");
      return { socket: new ChannelFrameStream(channel) };
    }
    case "direct-tcpip": {
      const forward = directTcpipParams(params);
      // The channel itself is the socket: raw bytes, and the relay's backpressure pauses it (ssh2
      // then holds sshd's window), so nothing is buffered past one window.
      const channel = await openDirectTcpip(client, forward, where);
      ctx.logger.debug({ target: where, forward: formatTarget(forward.host, forward.port) }, "ssh direct-tcpip channel open");
      return { socket: channel };
    }
    default:
      throw new ConnectorError("PROTOCOL_UNSUPPORTED", `ssh channel type ${JSON.stringify(kind)} is not supported (session, direct-tcpip)`);
  }
}

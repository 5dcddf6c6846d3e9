import type { AcceptConnection, RejectConnection, ServerChannel, TcpipRequestInfo } from "ssh2";
import { SSH_PARAMS } from "@gatehouse/protocols/ssh";
import type { SshConnectionState } from "./ssh-connection-state.js";

/**
 * A `direct-tcpip` channel (`ssh -L`): when the connection allows port forwarding, a tunnel stream
 * to the destination as the resource's side sees it, raw bytes both ways (pipe's backpressure),
 * recorded as one `port_forward` event when it closes. Otherwise refused, recorded as `denied`.
 */
export async function servePortForward(accept: AcceptConnection<ServerChannel>, reject: RejectConnection, info: TcpipRequestInfo, state: SshConnectionState): Promise<void> {
  const destination = `${info.destIP}:${info.destPort}`;
  const opened = await state.ready;
  if (!opened.ok) return reject();
  if (!opened.connection.allowPortForwarding) {
    reject();
    state.refuseRequest("direct-tcpip", `port forwarding is not allowed on connection "${opened.connection.name}"`, { destination });
    return;
  }
  const { session } = opened;
  const startedUs = session.now();
  const stream = await state.broker.openChannel(session, {
    [SSH_PARAMS.channel]: "direct-tcpip",
    [SSH_PARAMS.host]: info.destIP,
    [SSH_PARAMS.port]: String(info.destPort),
    [SSH_PARAMS.originHost]: info.srcIP,
    [SSH_PARAMS.originPort]: String(info.srcPort),
  });
  if (!stream.ok) {
    reject();
    await session
      .record({ kind: "port_forward", command: destination, outcome: "error", timeUs: startedUs, durationUs: session.now() - startedUs, details: { destination, message: stream.message } })
      .catch(() => undefined);
    return;
  }
  const channel = accept();
  const tunnel = stream.stream;
  let bytesIn = 0;
  let bytesOut = 0;
  const forget = state.track(channel);
  channel.on("data", (chunk: Buffer) => (bytesIn += chunk.byteLength));
  tunnel.on("data", (chunk: Buffer) => (bytesOut += chunk.byteLength));
  channel.on("error", () => undefined);
  tunnel.on("error", () => undefined);
  channel.pipe(tunnel);
  tunnel.pipe(channel);
  let done = false;
  const finish = () => {
    if (done) return;
    done = true;
    forget();
    channel.destroy();
    tunnel.destroy();
    state.bytes.up += bytesIn;
    state.bytes.down += bytesOut;
    void session
      .record({ kind: "port_forward", command: destination, outcome: "ok", timeUs: startedUs, durationUs: session.now() - startedUs, details: { destination, origin: `${info.srcIP}:${info.srcPort}`, bytesIn, bytesOut } })
      .catch(() => undefined);
  };
  channel.on("close", finish);
  tunnel.on("close", finish);
}

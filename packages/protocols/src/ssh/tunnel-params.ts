/**
 * The OpenStream/StreamOpened params of SSH streams (see README.md, "Gateway ↔ connector"). One
 * list of names, so the gateway's listener and the connector's dialer cannot drift apart.
 */
export const SSH_PARAMS = {
  // --- StreamOpened of the main stream (connector → gateway) ---
  /** The resource sshd's identification string, e.g. "SSH-2.0-OpenSSH_9.2p1 Debian-2". */
  serverVersion: "ssh.serverVersion",
  /** The resource's host key as it was verified against target.hostKey: "SHA256:…" (OpenSSH's form). */
  hostKeyFingerprint: "ssh.hostKey",
  // --- OpenStream of a channel stream (gateway → connector) ---
  /** "session" or "direct-tcpip": present on every channel stream, absent on the main stream. */
  channel: "ssh.channel",
  /** session: "exec", "shell" or "subsystem". */
  request: "ssh.request",
  /** session exec: the command line, as the client sent it. */
  command: "ssh.command",
  /** session subsystem: its name ("sftp"). */
  subsystem: "ssh.subsystem",
  /** session: JSON `{ term, cols, rows, width, height, modes }` when the client asked for a pty. */
  pty: "ssh.pty",
  /** session: JSON object of the environment variables the client set (sshd's AcceptEnv decides). */
  env: "ssh.env",
  /** direct-tcpip: where to connect, from the resource's side, and who asked (as the client said). */
  host: "ssh.host",
  port: "ssh.port",
  originHost: "ssh.originHost",
  originPort: "ssh.originPort",
} as const;

export type SshChannelKind = "session" | "direct-tcpip";

/** What the gateway asks for when it opens a session channel's stream. */
export type SshChannelRequest =
  | { request: "exec"; command: string }
  | { request: "shell" }
  | { request: "subsystem"; subsystem: string };

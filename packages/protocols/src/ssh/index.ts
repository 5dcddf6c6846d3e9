/**
 * `@gatehouse/protocols/ssh` — what is pure about SSH at the gateway: how a session channel
 * travels between gateway and connector (channel frames), and the parsers that turn relayed bytes
 * into events. The SSH transport itself is ssh2's, at the gateway (server) and the connector
 * (client). See README.md.
 */
export {
  ChannelFrame,
  ChannelFrameError,
  ChannelFrameReader,
  MAX_FRAME_PAYLOAD,
  decodeExitStatus,
  decodeJson,
  encodeExitStatus,
  encodeFrame,
  encodeJsonFrame,
  frameHeader,
  type ChannelFrameType,
  type ExitSignal,
  type Frame,
  type WindowSize,
} from "./channel-frames.js";
export { SSH_PARAMS, type SshChannelKind, type SshChannelRequest } from "./tunnel-params.js";
export { SshErrorCode, SshProtocolError, SSH_DISCONNECT_PROTOCOL_ERROR, isSshProtocolError, type SshProtocolErrorOptions } from "./errors.js";
export { SftpObserver, type SftpCompletion, type SftpObserverOptions, type SftpObserverSink, type SftpOperation } from "./sftp-observer.js";
export { MAX_SFTP_PACKET } from "./sftp-packets.js";
export {
  MAX_SCP_LINE,
  ScpObserver,
  parseScpCommand,
  type ScpCommand,
  type ScpCompletion,
  type ScpObserverOptions,
  type ScpObserverSink,
  type ScpTransfer,
} from "./scp-observer.js";
export { ShellLineExtractor, type ShellLineOptions, type TypedLine } from "./shell-lines.js";
export { AsciicastWriter, toAsciicast, type AsciicastEventCode, type AsciicastHeader, type TerminalChunk } from "./asciicast.js";
export { parseSshLoginName, type SshLoginName } from "./login-name.js";
export {
  HostKeyPinError,
  blobKeyType,
  fingerprint,
  matches,
  parseHostKeyPin,
  pinnedFingerprints,
  type HostKeyPin,
  type PinnedKey,
} from "./host-key-pin.js";

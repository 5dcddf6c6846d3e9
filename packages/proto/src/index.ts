// @gatehouse/proto: the tunnel between the gateway and its connectors.

export {
  Close,
  ConnectorFrame,
  Credential,
  Data,
  Drain,
  GatewayFrame,
  OpenStream,
  Ping,
  Pong,
  StreamFailed,
  StreamOpened,
  Target,
  WindowUpdate,
} from "./messages.js";
export type {
  IClose,
  IConnectorFrame,
  ICredential,
  IData,
  IDrain,
  IGatewayFrame,
  IOpenStream,
  IPing,
  IPong,
  IStreamFailed,
  IStreamOpened,
  ITarget,
  IWindowUpdate,
} from "./messages.js";

export { TunnelError } from "./errors.js";
export type { TunnelErrorCode } from "./errors.js";

export { encodeFrames, FrameDecoder } from "./frame-codec.js";

export { wsLink } from "./link.js";
export type { FrameLink, WsLinkOptions } from "./link.js";

export { Multiplexer } from "./multiplexer.js";
export type { MultiplexerEvents, OpenRequest, OpenResult } from "./multiplexer.js";
export { MUX_DEFAULTS } from "./options.js";
export type { MuxOptions } from "./options.js";
export { TunnelStream } from "./stream.js";
export type { OpenReply, TunnelStreamFlow } from "./stream.js";

export { commandLine, requestInfo, type KubeRequest, type KubeRequestInfo, type RecordVerb } from "./request-info.js";
export { REDACTED, redactBody, type RedactedBody, type RedactOptions } from "./redact.js";
export {
  KUBE_PARAMS,
  KUBE_TARGET_OPTIONS,
  MAX_RESPONSE_HEAD,
  ResponseHeadError,
  ResponseHeadReader,
  encodeResponseHead,
  relayedRequestHeaders,
  relayedResponseHeaders,
  type ResponseHead,
} from "./relay-contract.js";
export { failureStatus, readStatus, type KubeStatus, type StatusReason } from "./status.js";
export { MAX_WS_MESSAGE, WS_OPCODE, WebSocketFrameError, WebSocketReader, type WebSocketMessage } from "./websocket-reader.js";
export { REMOTE_COMMAND_SUBPROTOCOLS, RemoteCommandObserver, exitCodeOf, followsSubprotocol, type RemoteCommandEvent } from "./remote-command.js";

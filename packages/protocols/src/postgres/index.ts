/**
 * `@gatehouse/protocols/postgres` — the Postgres frontend/backend protocol, pure (no sockets,
 * timers or storage). Layers: framing → message codecs → handshake state machines
 * (ClientStartup, ServerConnection) → auth methods → observer. See README.md.
 */
export const POSTGRES_PROTOCOL = "postgres" as const;

// Errors
export { PostgresErrorCode, PostgresProtocolError, isPostgresProtocolError } from "./errors.js";
export type { ErrorFields, PostgresProtocolErrorOptions } from "./errors.js";
export { SqlState } from "./sqlstate.js";

// Message codes
export {
  AuthenticationCode,
  BackendCode,
  FrontendCode,
  StartupCode,
  TransactionStatusCode,
  specLink,
} from "./message-codes.js";

// Framing
export {
  DEFAULT_AUTH_LIMITS,
  DEFAULT_BACKEND_LIMITS,
  DEFAULT_FRONTEND_LIMITS,
  DEFAULT_MAX_STARTUP_LENGTH,
  MessageReader,
} from "./framing.js";
export type { BodyPolicy, Frame, MessageFrame, MessageReaderOptions, StreamFragmentFrame, StreamStartFrame } from "./framing.js";

// Frontend messages
export {
  decodeBind,
  decodeClose,
  decodeCopyData,
  decodeCopyDone,
  decodeCopyFail,
  decodeDescribe,
  decodeExecute,
  decodeFlush,
  decodeFrontendMessage,
  decodeFunctionCall,
  decodeParse,
  decodePasswordMessage,
  decodeQuery,
  decodeSASLInitialResponse,
  decodeSASLResponse,
  decodeStartupPacket,
  decodeSync,
  decodeTerminate,
  encodeBind,
  encodeCancelRequest,
  encodeClose,
  encodeCopyData,
  encodeCopyDone,
  encodeCopyFail,
  encodeDescribe,
  encodeExecute,
  encodeFlush,
  encodeFrontendMessage,
  encodeFunctionCall,
  encodeGSSENCRequest,
  encodeParse,
  encodePasswordMessage,
  encodeQuery,
  encodeSASLInitialResponse,
  encodeSASLResponse,
  encodeSSLRequest,
  encodeStartupMessage,
  encodeSync,
  encodeTerminate,
  protocolMajor,
  protocolMinor,
} from "./frontend-messages.js";
export type {
  AuthenticationResponse,
  Bind,
  CancelRequest,
  Close,
  CopyData,
  CopyDone,
  CopyFail,
  Describe,
  Execute,
  Flush,
  FrontendMessage,
  FunctionCall,
  GSSENCRequest,
  Parse,
  PasswordMessage,
  Query,
  SASLInitialResponse,
  SASLResponse,
  SSLRequest,
  StartupMessage,
  StartupPacket,
  StartupParams,
  Sync,
  Terminate,
} from "./frontend-messages.js";

// Backend messages
export {
  decodeAuthentication,
  decodeBackendCopyData,
  decodeBackendCopyDone,
  decodeBackendKeyData,
  decodeBackendMessage,
  decodeBindComplete,
  decodeCloseComplete,
  decodeCommandComplete,
  decodeCopyBothResponse,
  decodeCopyInResponse,
  decodeCopyOutResponse,
  decodeDataRow,
  decodeEmptyQueryResponse,
  decodeErrorFields,
  decodeErrorResponse,
  decodeFunctionCallResponse,
  decodeNegotiateProtocolVersion,
  decodeNoData,
  decodeNoticeResponse,
  decodeNotificationResponse,
  decodeParameterDescription,
  decodeParameterStatus,
  decodeParseComplete,
  decodePortalSuspended,
  decodeReadyForQuery,
  decodeRowDescription,
  encodeAuthentication,
  encodeBackendCopyData,
  encodeBackendCopyDone,
  encodeBackendKeyData,
  encodeBackendMessage,
  encodeBindComplete,
  encodeCloseComplete,
  encodeCommandComplete,
  encodeCopyResponse,
  encodeDataRow,
  encodeEmptyQueryResponse,
  encodeErrorResponse,
  encodeFunctionCallResponse,
  encodeNegotiateProtocolVersion,
  encodeNoData,
  encodeNoticeResponse,
  encodeNotificationResponse,
  encodeParameterDescription,
  encodeParameterStatus,
  encodeParseComplete,
  encodePortalSuspended,
  encodeReadyForQuery,
  encodeRowDescription,
  errorResponse,
  errorResponseFor,
  noticeResponse,
} from "./backend-messages.js";
export type {
  AuthenticationCleartextPassword,
  AuthenticationGSS,
  AuthenticationGSSContinue,
  AuthenticationKerberosV5,
  AuthenticationMD5Password,
  AuthenticationMessage,
  AuthenticationOk,
  AuthenticationSASL,
  AuthenticationSASLContinue,
  AuthenticationSASLFinal,
  AuthenticationSSPI,
  BackendCopyData,
  BackendCopyDone,
  BackendKeyData,
  BackendMessage,
  BindComplete,
  CloseComplete,
  CommandComplete,
  CopyBothResponse,
  CopyInResponse,
  CopyOutResponse,
  DataRow,
  EmptyQueryResponse,
  ErrorInit,
  ErrorResponse,
  ErrorSeverity,
  FieldDescription,
  FunctionCallResponse,
  NegotiateProtocolVersion,
  NoData,
  NoticeResponse,
  NoticeSeverity,
  NotificationResponse,
  ParameterDescription,
  ParameterStatus,
  ParseComplete,
  PortalSuspended,
  ReadyForQuery,
  RowDescription,
  TransactionStatus,
} from "./backend-messages.js";

// Handshakes
export { ClientStartup } from "./client-startup.js";
export { serverAuthenticator } from "./auth/server-auth.js";
export type { ServerAuthContext, ServerAuthenticator, ServerAuthStep, ServerAuthWait } from "./auth/server-auth.js";
export type {
  BackendKey,
  ClientStartupEvent,
  ClientStartupOptions,
  ClientStartupState,
  CompleteStartup,
  RequestScram,
  ScramMethod,
} from "./client-startup.js";
export { ServerConnection } from "./server-connection.js";
export type {
  ServerConnectionEvent,
  ServerConnectionOptions,
  ServerConnectionState,
  ServerReady,
  TlsMode,
} from "./server-connection.js";

// Auth
export {
  DEFAULT_SCRAM_ITERATIONS,
  SCRAM_SHA_256,
  formatScramVerifier,
  parseScramVerifier,
  scramMockVerifier,
  scramVerifier,
} from "./auth/scram.js";
export type { ScramVerifier } from "./auth/scram.js";
export { SCRAM_SHA_256_PLUS, ScramServer } from "./auth/scram-server.js";
export { signatureAlgorithmOid, TLS_SERVER_END_POINT, tlsServerEndPoint } from "./auth/channel-binding.js";
export type { ScramServerOptions, ScramServerResult } from "./auth/scram-server.js";
export { ScramClient } from "./auth/scram-client.js";
export type { ScramClientOptions } from "./auth/scram-client.js";
export { md5PasswordResponse, md5StoredPassword } from "./auth/md5.js";
export { ALL_CLIENT_AUTH_METHODS, PasswordAuthenticator } from "./auth/client-auth.js";
export type { ClientAuthenticator, ClientAuthMethod, PasswordAuthenticatorOptions } from "./auth/client-auth.js";
export { saslprep } from "./auth/saslprep.js";

// Observer
export { PostgresObserver, rowsFromTag } from "./observer.js";
export type {
  CommandKind,
  CommandOutcome,
  CommandStatus,
  ObservedCommand,
  ObservedError,
  ObservedNotice,
  ObservedNotification,
  ObservedParam,
  ObserverOptions,
  ObserverSink,
} from "./observer.js";
export { leadingKeyword, splitStatements } from "./sql-split.js";
export type { SplitOptions, StatementSpan } from "./sql-split.js";

// What gateway and connector exchange about a Postgres stream over the tunnel
export { decodeDialRequest, decodeDialResult, encodeDialRequest, encodeDialResult } from "./tunnel-params.js";
export type { PostgresDialRequest, PostgresDialResult } from "./tunnel-params.js";

/**
 * Message type bytes of the Postgres frontend/backend protocol, version 3.
 *
 * Spec: https://www.postgresql.org/docs/current/protocol-message-formats.html
 * Flow: https://www.postgresql.org/docs/current/protocol-flow.html
 *
 * The same character means different things per direction (`D` is Describe from the
 * frontend, DataRow from the backend), so there are two tables.
 */

const SPEC = "https://www.postgresql.org/docs/current/protocol-message-formats.html";

/** Messages sent by the frontend (client) after the startup packet. */
export const FrontendCode = {
  /** Bind — #PROTOCOL-MESSAGE-FORMATS-BIND */
  Bind: "B",
  /** Close — #PROTOCOL-MESSAGE-FORMATS-CLOSE */
  Close: "C",
  /** CopyData — #PROTOCOL-MESSAGE-FORMATS-COPYDATA */
  CopyData: "d",
  /** CopyDone — #PROTOCOL-MESSAGE-FORMATS-COPYDONE */
  CopyDone: "c",
  /** CopyFail — #PROTOCOL-MESSAGE-FORMATS-COPYFAIL */
  CopyFail: "f",
  /** Describe — #PROTOCOL-MESSAGE-FORMATS-DESCRIBE */
  Describe: "D",
  /** Execute — #PROTOCOL-MESSAGE-FORMATS-EXECUTE */
  Execute: "E",
  /** Flush — #PROTOCOL-MESSAGE-FORMATS-FLUSH */
  Flush: "H",
  /** FunctionCall — #PROTOCOL-MESSAGE-FORMATS-FUNCTIONCALL */
  FunctionCall: "F",
  /** Parse — #PROTOCOL-MESSAGE-FORMATS-PARSE */
  Parse: "P",
  /**
   * PasswordMessage, SASLInitialResponse, SASLResponse and GSSResponse all use `p`; which one
   * it is depends on the authentication request it answers.
   * #PROTOCOL-MESSAGE-FORMATS-PASSWORDMESSAGE
   */
  AuthenticationResponse: "p",
  /** Query — #PROTOCOL-MESSAGE-FORMATS-QUERY */
  Query: "Q",
  /** Sync — #PROTOCOL-MESSAGE-FORMATS-SYNC */
  Sync: "S",
  /** Terminate — #PROTOCOL-MESSAGE-FORMATS-TERMINATE */
  Terminate: "X",
} as const;
export type FrontendCode = (typeof FrontendCode)[keyof typeof FrontendCode];

/** Messages sent by the backend (server). */
export const BackendCode = {
  /** Authentication* (Ok, CleartextPassword, MD5Password, SASL, SASLContinue, SASLFinal, GSS…) — #PROTOCOL-MESSAGE-FORMATS-AUTHENTICATIONOK */
  Authentication: "R",
  /** BackendKeyData — #PROTOCOL-MESSAGE-FORMATS-BACKENDKEYDATA */
  BackendKeyData: "K",
  /** BindComplete — #PROTOCOL-MESSAGE-FORMATS-BINDCOMPLETE */
  BindComplete: "2",
  /** CloseComplete — #PROTOCOL-MESSAGE-FORMATS-CLOSECOMPLETE */
  CloseComplete: "3",
  /** CommandComplete — #PROTOCOL-MESSAGE-FORMATS-COMMANDCOMPLETE */
  CommandComplete: "C",
  /** CopyData — #PROTOCOL-MESSAGE-FORMATS-COPYDATA */
  CopyData: "d",
  /** CopyDone — #PROTOCOL-MESSAGE-FORMATS-COPYDONE */
  CopyDone: "c",
  /** CopyInResponse — #PROTOCOL-MESSAGE-FORMATS-COPYINRESPONSE */
  CopyInResponse: "G",
  /** CopyOutResponse — #PROTOCOL-MESSAGE-FORMATS-COPYOUTRESPONSE */
  CopyOutResponse: "H",
  /** CopyBothResponse — #PROTOCOL-MESSAGE-FORMATS-COPYBOTHRESPONSE */
  CopyBothResponse: "W",
  /** DataRow — #PROTOCOL-MESSAGE-FORMATS-DATAROW */
  DataRow: "D",
  /** EmptyQueryResponse — #PROTOCOL-MESSAGE-FORMATS-EMPTYQUERYRESPONSE */
  EmptyQueryResponse: "I",
  /** ErrorResponse — #PROTOCOL-MESSAGE-FORMATS-ERRORRESPONSE */
  ErrorResponse: "E",
  /** FunctionCallResponse — #PROTOCOL-MESSAGE-FORMATS-FUNCTIONCALLRESPONSE */
  FunctionCallResponse: "V",
  /** NegotiateProtocolVersion — #PROTOCOL-MESSAGE-FORMATS-NEGOTIATEPROTOCOLVERSION */
  NegotiateProtocolVersion: "v",
  /** NoData — #PROTOCOL-MESSAGE-FORMATS-NODATA */
  NoData: "n",
  /** NoticeResponse — #PROTOCOL-MESSAGE-FORMATS-NOTICERESPONSE */
  NoticeResponse: "N",
  /** NotificationResponse — #PROTOCOL-MESSAGE-FORMATS-NOTIFICATIONRESPONSE */
  NotificationResponse: "A",
  /** ParameterDescription — #PROTOCOL-MESSAGE-FORMATS-PARAMETERDESCRIPTION */
  ParameterDescription: "t",
  /** ParameterStatus — #PROTOCOL-MESSAGE-FORMATS-PARAMETERSTATUS */
  ParameterStatus: "S",
  /** ParseComplete — #PROTOCOL-MESSAGE-FORMATS-PARSECOMPLETE */
  ParseComplete: "1",
  /** PortalSuspended — #PROTOCOL-MESSAGE-FORMATS-PORTALSUSPENDED */
  PortalSuspended: "s",
  /** ReadyForQuery — #PROTOCOL-MESSAGE-FORMATS-READYFORQUERY */
  ReadyForQuery: "Z",
  /** RowDescription — #PROTOCOL-MESSAGE-FORMATS-ROWDESCRIPTION */
  RowDescription: "T",
} as const;
export type BackendCode = (typeof BackendCode)[keyof typeof BackendCode];

/**
 * The Int32 that follows the length in the untyped first message. StartupMessage carries the
 * protocol version (major in the high 16 bits); the others use reserved "versions" 1234.xxxx.
 * #PROTOCOL-MESSAGE-FORMATS-STARTUPMESSAGE, -SSLREQUEST, -GSSENCREQUEST, -CANCELREQUEST
 */
export const StartupCode = {
  /** Protocol 3.0: (3 << 16) | 0. */
  ProtocolVersion3_0: 196608,
  /** 1234.5678 */
  SSLRequest: 80877103,
  /** 1234.5680 */
  GSSENCRequest: 80877104,
  /** 1234.5678 - 1 = 1234.5677 */
  CancelRequest: 80877102,
} as const;

/** The Int32 that follows `R` and tells which Authentication* message it is. #PROTOCOL-MESSAGE-FORMATS-AUTHENTICATIONOK */
export const AuthenticationCode = {
  Ok: 0,
  KerberosV5: 2,
  CleartextPassword: 3,
  MD5Password: 5,
  GSS: 7,
  GSSContinue: 8,
  SSPI: 9,
  SASL: 10,
  SASLContinue: 11,
  SASLFinal: 12,
} as const;
export type AuthenticationCode = (typeof AuthenticationCode)[keyof typeof AuthenticationCode];

/** ReadyForQuery's transaction status byte. #PROTOCOL-MESSAGE-FORMATS-READYFORQUERY */
export const TransactionStatusCode = {
  /** 'I': not in a transaction block. */
  Idle: "I",
  /** 'T': in a transaction block. */
  InTransaction: "T",
  /** 'E': in a failed transaction block (queries rejected until the block ends). */
  InFailedTransaction: "E",
} as const;
export type TransactionStatusCode = (typeof TransactionStatusCode)[keyof typeof TransactionStatusCode];

/** Where to read more about a message: the spec section anchor for a message name. */
export function specLink(messageName: string): string {
  return `${SPEC}#PROTOCOL-MESSAGE-FORMATS-${messageName.toUpperCase()}`;
}

/** Frontend message types the server accepts after startup. */
export const FRONTEND_CODES: ReadonlySet<string> = new Set(Object.values(FrontendCode));
/** Backend message types a client may receive. */
export const BACKEND_CODES: ReadonlySet<string> = new Set(Object.values(BackendCode));

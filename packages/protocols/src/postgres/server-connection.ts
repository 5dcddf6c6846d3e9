/**
 * `ServerConnection`: the connector's side of a connection start to the real server, as a pure
 * state machine (https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-START-UP).
 *
 *   caller                         ServerConnection                  server
 *   start()              → SSLRequest (tls prefer/require) or StartupMessage (tls disable)
 *   push(server bytes)   → event upgradeTls       ('S': wrap the socket in TLS, then tlsEstablished() → StartupMessage)
 *                        → event write StartupMessage ('N' with tls prefer; 'N' with require throws TLS_REQUIRED)
 *                        → event write PasswordMessage / SASLInitialResponse / SASLResponse (answers to Authentication*)
 *                        → event notice           (NoticeResponse during startup)
 *                        → event ready            (parameters, backend key, transaction status)
 *   remaining()          → server bytes after ReadyForQuery, for the relay
 *
 * An ErrorResponse from the server (wrong password 28P01, no such database 3D000, too many
 * connections 53300…) throws `PostgresProtocolError` with code `SERVER_ERROR` and the server's
 * fields in `serverError`.
 */
import type { ErrorFields } from "./errors.js";
import type { TransactionStatus } from "./backend-messages.js";
import {
  decodeAuthentication,
  decodeBackendKeyData,
  decodeErrorResponse,
  decodeNegotiateProtocolVersion,
  decodeNoticeResponse,
  decodeParameterStatus,
  decodeReadyForQuery,
} from "./backend-messages.js";
import { PostgresProtocolError, violation } from "./errors.js";
import { DEFAULT_BACKEND_LIMITS, MessageReader } from "./framing.js";
import type { StartupParams } from "./frontend-messages.js";
import { encodeSSLRequest, encodeStartupMessage } from "./frontend-messages.js";
import { BackendCode } from "./message-codes.js";
import type { BackendKey } from "./client-startup.js";
import type { ClientAuthenticator, ClientAuthMethod } from "./auth/client-auth.js";
import { PasswordAuthenticator } from "./auth/client-auth.js";
import type { ScramClientOptions } from "./auth/scram-client.js";

export type TlsMode = "disable" | "prefer" | "require";

/**
 * Startup messages are small; a server (or impostor) sending a huge ErrorResponse or
 * ParameterStatus before ReadyForQuery is refused instead of buffered.
 */
const STARTUP_BACKEND_LIMITS: Readonly<Record<string, number>> = Object.fromEntries(
  Object.entries(DEFAULT_BACKEND_LIMITS).map(([code, max]) => [code, Math.min(max, 1 << 20)]),
);

export interface ServerConnectionOptions {
  /** The role to log in as (the connection's credential, not the client's identity). */
  readonly user: string;
  readonly password?: string;
  readonly database?: string;
  /**
   * Other startup parameters, typically forwarded from the client: application_name,
   * client_encoding, DateStyle, options… `user` and `database` here are overridden by the
   * options above. `_pq_.*` protocol options are dropped (we speak 3.0 only).
   */
  readonly params?: StartupParams;
  /** Default "prefer", as libpq. */
  readonly tls?: TlsMode;
  /** Authentication methods the server may choose (libpq `require_auth`). Default: all. */
  readonly allowedAuth?: readonly ClientAuthMethod[];
  /** SCRAM knobs (nonce for tests, iteration cap). */
  readonly scram?: Omit<ScramClientOptions, "password" | "username">;
  /** Replace the password methods with another implementation of the interface. */
  readonly authenticator?: ClientAuthenticator;
}

export interface ServerReady {
  readonly type: "ready";
  /** ParameterStatus values the server reported, in order (server_version, client_encoding, …). */
  readonly parameters: Readonly<Record<string, string>>;
  /** The real server's cancel key (undefined if it sent none). */
  readonly backendKey: BackendKey | undefined;
  readonly transactionStatus: TransactionStatus;
  readonly authMethod: ClientAuthMethod | undefined;
  readonly tls: boolean;
}

export type ServerConnectionEvent =
  /** Write these bytes to the server. */
  | { readonly type: "write"; readonly bytes: Uint8Array }
  /** The server accepted TLS: start the TLS handshake now, then call `tlsEstablished()`. */
  | { readonly type: "upgradeTls" }
  | { readonly type: "notice"; readonly fields: ErrorFields }
  | ServerReady;

export type ServerConnectionState = "initial" | "sslResponse" | "tlsPending" | "authenticating" | "parameters" | "ready";

export class ServerConnection {
  private readonly reader = new MessageReader({ limits: STARTUP_BACKEND_LIMITS });
  private readonly authenticator: ClientAuthenticator;
  private current: ServerConnectionState = "initial";
  private tls = false;
  private readonly parameters: Record<string, string> = Object.create(null) as Record<string, string>;
  private backendKey: BackendKey | undefined;

  constructor(private readonly options: ServerConnectionOptions) {
    this.authenticator =
      options.authenticator ??
      new PasswordAuthenticator({
        user: options.user,
        ...(options.password === undefined ? {} : { password: options.password }),
        ...(options.allowedAuth === undefined ? {} : { allowed: options.allowedAuth }),
        ...(options.scram === undefined ? {} : { scram: options.scram }),
      });
  }

  get state(): ServerConnectionState {
    return this.current;
  }

  /** The first bytes to send once connected. */
  start(): Uint8Array {
    this.expectState("start", "initial");
    if ((this.options.tls ?? "prefer") === "disable") {
      this.current = "authenticating";
      return this.startupMessage();
    }
    this.current = "sslResponse";
    return encodeSSLRequest();
  }

  /** After the TLS handshake that followed `upgradeTls`: the StartupMessage to send over TLS. */
  tlsEstablished(): Uint8Array {
    this.expectState("tlsEstablished", "tlsPending");
    this.tls = true;
    this.current = "authenticating";
    return this.startupMessage();
  }

  push(chunk: Uint8Array): void {
    this.reader.push(chunk);
  }

  next(): ServerConnectionEvent | undefined {
    switch (this.current) {
      case "initial":
      case "tlsPending":
      case "ready":
        return undefined;
      case "sslResponse":
        return this.onSslResponse();
      case "authenticating":
      case "parameters":
        return this.onMessage();
    }
  }

  /** After `ready`: server bytes that followed ReadyForQuery (hand them to the relay). */
  remaining(): Uint8Array[] {
    this.expectState("remaining", "ready");
    return this.reader.takeBuffered();
  }

  private startupMessage(): Uint8Array {
    const params: Record<string, string> = {};
    for (const [name, value] of Object.entries(this.options.params ?? {})) {
      if (name === "user" || name === "database" || name.startsWith("_pq_.")) continue;
      params[name] = value;
    }
    const all = {
      user: this.options.user,
      ...(this.options.database === undefined ? {} : { database: this.options.database }),
      ...params,
    };
    for (const [name, value] of Object.entries(all)) {
      // Names and values are NUL-terminated on the wire: "x\0user\0postgres" would send a second `user`,
      // and the server takes the last one. The values come over the tunnel; the connector does not take the
      // gateway's word for the role it logs in as.
      if (name.includes("\0") || value.includes("\0")) {
        throw new PostgresProtocolError("PROTOCOL_VIOLATION", `startup parameter ${JSON.stringify(name.split("\0")[0])} contains a NUL byte`, {
          context: { parameter: name.split("\0")[0] },
        });
      }
    }
    return encodeStartupMessage({ params: all });
  }

  private onSslResponse(): ServerConnectionEvent | undefined {
    const byte = this.reader.peekByte();
    if (byte === undefined) return undefined;
    if (byte === 0x45 /* 'E' */) {
      // A server too old to know SSLRequest answers with an ErrorResponse; read it as one.
      this.current = "authenticating";
      return this.onMessage();
    }
    this.reader.readRawByte();
    if (byte === 0x53 /* 'S' */) {
      // Anything after 'S' and before the handshake came unencrypted, possibly injected by a
      // man in the middle (CVE-2021-23222).
      if (this.reader.buffered > 0) throw violation("received unencrypted data after SSL response");
      this.current = "tlsPending";
      return { type: "upgradeTls" };
    }
    if (byte === 0x4e /* 'N' */) {
      if (this.options.tls === "require") {
        throw new PostgresProtocolError("TLS_REQUIRED", "the server does not support TLS, and tls is required");
      }
      this.current = "authenticating";
      return { type: "write", bytes: this.startupMessage() };
    }
    throw violation(`invalid response to SSLRequest: 0x${byte.toString(16)}`);
  }

  private onMessage(): ServerConnectionEvent | undefined {
    for (;;) {
      const frame = this.reader.read();
      if (frame === undefined) return undefined;
      if (frame.kind !== "message") throw violation("unexpected streamed message during startup");
      switch (frame.code) {
        case BackendCode.ErrorResponse: {
          const { fields } = decodeErrorResponse(frame.body);
          throw new PostgresProtocolError("SERVER_ERROR", `server error ${fields.code}: ${fields.message}`, {
            serverError: fields,
          });
        }
        case BackendCode.NoticeResponse:
          return { type: "notice", fields: decodeNoticeResponse(frame.body).fields };
        case BackendCode.NegotiateProtocolVersion: {
          // We ask for 3.0 without options, so a server can only confirm 3.0 here.
          const negotiated = decodeNegotiateProtocolVersion(frame.body);
          if (negotiated.newestMinorVersion < 0) throw violation("invalid NegotiateProtocolVersion");
          continue;
        }
        case BackendCode.Authentication: {
          if (this.current !== "authenticating") throw violation("authentication request after AuthenticationOk");
          const request = decodeAuthentication(frame.body);
          const reply = this.authenticator.respond(request);
          if (request.type === "AuthenticationOk") this.current = "parameters";
          if (reply !== undefined) return { type: "write", bytes: reply };
          continue;
        }
        case BackendCode.ParameterStatus: {
          if (this.current !== "parameters") throw violation("ParameterStatus before AuthenticationOk");
          const { name, value } = decodeParameterStatus(frame.body);
          this.parameters[name] = value;
          continue;
        }
        case BackendCode.BackendKeyData: {
          if (this.current !== "parameters") throw violation("BackendKeyData before AuthenticationOk");
          const { processId, secretKey } = decodeBackendKeyData(frame.body);
          // Copy: the body is a view of a chunk the caller may drop.
          this.backendKey = { processId, secretKey: secretKey.slice() };
          continue;
        }
        case BackendCode.ReadyForQuery: {
          if (this.current !== "parameters") throw violation("ReadyForQuery before AuthenticationOk");
          const { status } = decodeReadyForQuery(frame.body);
          this.current = "ready";
          return {
            type: "ready",
            parameters: { ...this.parameters },
            backendKey: this.backendKey,
            transactionStatus: status,
            authMethod: this.authenticator.method,
            tls: this.tls,
          };
        }
        default:
          throw violation(`unexpected message '${frame.code}' during startup`, { type: frame.code });
      }
    }
  }

  private expectState(method: string, ...states: ServerConnectionState[]): void {
    if (!states.includes(this.current)) {
      throw new PostgresProtocolError("INVALID_STATE", `${method}() in state ${this.current}`, {
        context: { state: this.current, expected: states },
      });
    }
  }
}

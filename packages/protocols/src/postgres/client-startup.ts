/**
 * `ClientStartup`: the gateway's side of a client's connection start, as a pure state machine
 * (https://www.postgresql.org/docs/current/protocol-flow.html#PROTOCOL-FLOW-START-UP).
 *
 *   client                          ClientStartup                        caller (gateway)
 *   SSLRequest            ──push──► event sslRequest            ──────► answerSsl(true|false) → 'S'/'N', then TLS
 *   GSSENCRequest         ──push──► event write 'N'
 *   TLS ClientHello 0x16  ──push──► event directTls (raw bytes)  ──────► start TLS with those bytes
 *   CancelRequest         ──push──► event cancelRequest (pid, key); close the connection
 *   a bad startup length  ──push──► event abandon (reason)       ──────► close without a reply, as Postgres does
 *   StartupMessage 3.x    ──push──► [event write NegotiateProtocolVersion] event startup (user, database, params)
 *                                                                 ──────► requestPassword() | requestScram({verifier}) | fail()
 *   PasswordMessage       ──push──► event password                ──────► complete(...) | fail(28P01)
 *   SASLInitialResponse   ──push──► event write SASLContinue
 *   SASLResponse          ──push──► event authenticated | authenticationFailed ──► complete(...) | fail(28P01)
 *   complete({ parameters, backendKey }) → [SASLFinal] AuthenticationOk ParameterStatus* BackendKeyData ReadyForQuery
 *   remaining() → bytes the client sent after its startup (hand them to the relay)
 *
 * Drive it with `push(chunk)` then `next()` until it returns undefined. Protocol violations
 * throw `PostgresProtocolError`; answer with `errorResponseFor(err)` and close.
 */
import type { ErrorInit } from "./backend-messages.js";
import {
  encodeAuthentication,
  encodeBackendKeyData,
  encodeNegotiateProtocolVersion,
  encodeParameterStatus,
  encodeReadyForQuery,
  errorResponse,
} from "./backend-messages.js";
import { concatBytes } from "./bytes.js";
import { PostgresProtocolError, violation } from "./errors.js";
import { DEFAULT_AUTH_LIMITS, MessageReader } from "./framing.js";
import type { StartupParams } from "./frontend-messages.js";
import { decodeStartupPacket, protocolMajor, protocolMinor } from "./frontend-messages.js";
import { FrontendCode } from "./message-codes.js";
import { SqlState } from "./sqlstate.js";
import { serverAuthenticator, type RequestScram, type ScramMethod, type ServerAuthenticator, type ServerAuthRequest } from "./auth/server-auth.js";

export type { RequestScram, ScramMethod, ServerAuthRequest } from "./auth/server-auth.js";

export type ClientStartupEvent =
  /** Write these bytes to the client. */
  | { readonly type: "write"; readonly bytes: Uint8Array }
  /** The client asks for TLS: call `answerSsl()`. */
  | { readonly type: "sslRequest" }
  /** The client opened with a TLS ClientHello (direct TLS, libpq `sslnegotiation=direct`); feed `bytes` to TLS, then push the decrypted stream. */
  | { readonly type: "directTls"; readonly bytes: readonly Uint8Array[] }
  /** A cancel request for another session; there is no reply, close the connection after acting on it. */
  | { readonly type: "cancelRequest"; readonly processId: number; readonly secretKey: Uint8Array }
  /** The StartupMessage: user = identity, database = connection name. Choose how to authenticate. */
  | {
      readonly type: "startup";
      readonly user: string;
      /** `database`, defaulting to the user name as Postgres does. */
      readonly database: string;
      /** All parameters except the `_pq_.*` protocol options (application_name, client_encoding, options…). */
      readonly params: StartupParams;
      readonly protocolVersion: number;
      /** Whether TLS was negotiated on this connection before the StartupMessage. */
      readonly tls: boolean;
    }
  /** The cleartext password (access key or token); verify it, then `complete()` or `fail()`. */
  | { readonly type: "password"; readonly password: string }
  /**
   * SCRAM proved the client knows the password; `complete()` (or `fail()` if policy says no).
   * `verifier`: the index, in `RequestScram.verifiers`, of the one that matched (0 for `verifier`).
   */
  | { readonly type: "authenticated"; readonly method: ScramMethod; readonly verifier: number }
  /** SCRAM failed (wrong password, or an unknown user); answer with `fail()` (28P01). */
  | { readonly type: "authenticationFailed"; readonly method: ScramMethod; readonly reason: "invalid_proof" | "doomed" }
  /** The client sent Terminate during authentication. */
  | { readonly type: "terminate" }
  /**
   * The startup packet's length is impossible (under 8 bytes, over the maximum): not a Postgres
   * client, or one that closed before its startup (a Terminate, 'X' 0 0 0 4, as its first bytes).
   * Postgres logs it and closes without a reply (a COMMERROR); so does the caller.
   */
  | { readonly type: "abandon"; readonly reason: string };

export type ClientStartupState =
  | "startup"
  | "sslAnswer"
  | "authChoice"
  | "password"
  | "saslInitial"
  | "saslResponse"
  | "verdict"
  | "done"
  | "closed";

export interface ClientStartupOptions {
  /** Maximum startup packet body. Default 9996 bytes (the server's limit). */
  readonly maxStartupLength?: number;
}

export interface BackendKey {
  readonly processId: number;
  readonly secretKey: Uint8Array;
}

export interface CompleteStartup {
  /** ParameterStatus values to report (server_version, client_encoding, DateStyle, …), in order. */
  readonly parameters: Readonly<Record<string, string>>;
  /** The key the client will use in CancelRequest; omit to send no BackendKeyData. */
  readonly backendKey?: BackendKey;
}

export class ClientStartup {
  private readonly reader: MessageReader;
  private current: ClientStartupState = "startup";
  private tls = false;
  private firstPacket = true;
  private user = "";
  /** The method the caller asked for, while its exchange runs. */
  private auth: ServerAuthenticator | undefined;
  private saslFinal: Uint8Array | undefined;
  private authFailed = false;
  /** The startup event, held back while a NegotiateProtocolVersion goes out first. */
  private pendingStartup: ClientStartupEvent | undefined;

  constructor(options: ClientStartupOptions = {}) {
    this.reader = new MessageReader({
      startup: true,
      limits: DEFAULT_AUTH_LIMITS,
      ...(options.maxStartupLength === undefined ? {} : { maxStartupLength: options.maxStartupLength }),
    });
  }

  get state(): ClientStartupState {
    return this.current;
  }

  push(chunk: Uint8Array): void {
    this.reader.push(chunk);
  }

  next(): ClientStartupEvent | undefined {
    if (this.pendingStartup !== undefined) {
      const startup = this.pendingStartup;
      this.pendingStartup = undefined;
      return startup;
    }
    switch (this.current) {
      case "startup":
        return this.nextStartupPacket();
      case "password":
      case "saslInitial":
      case "saslResponse":
        return this.nextAuthMessage();
      case "sslAnswer":
      case "authChoice":
      case "verdict":
      case "done":
      case "closed":
        // Waiting for the caller (or finished): bytes the client sends now stay buffered.
        return undefined;
    }
  }

  /** Answer an SSLRequest: 'S' (then wrap the socket in TLS and keep pushing decrypted bytes) or 'N'. */
  answerSsl(accept: boolean): Uint8Array {
    this.expectState("answerSsl", "sslAnswer");
    if (accept) {
      // Bytes after the SSLRequest, before the handshake, would be plaintext the client never
      // meant to send unencrypted — or an injection (CVE-2021-23214). Postgres refuses them too.
      if (this.reader.buffered > 0) throw violation("received unencrypted data after SSL request");
      this.tls = true;
    }
    this.current = "startup";
    return new Uint8Array([accept ? 0x53 : 0x4e]);
  }

  /** Ask for a cleartext password (use over TLS, or loopback). */
  requestPassword(): Uint8Array {
    return this.requestAuth({ method: "password" }, "requestPassword");
  }

  /** Start SCRAM-SHA-256 against the identity's verifier (with `channelBinding`, over TLS, SCRAM-SHA-256-PLUS is offered first). */
  requestScram(request: RequestScram): Uint8Array {
    return this.requestAuth({ method: "scram", ...request }, "requestScram");
  }

  /** Ask the client to authenticate with a server-side method (auth/server-auth.ts): its opening request. */
  requestAuth(request: ServerAuthRequest, caller = "requestAuth"): Uint8Array {
    this.expectState(caller, "authChoice");
    this.auth = serverAuthenticator(request, { user: this.user, tls: this.tls });
    this.current = this.auth.waitingFor;
    return this.auth.request;
  }

  /**
   * Finish the startup: AuthenticationOk, the ParameterStatus values, BackendKeyData and
   * ReadyForQuery (idle). Called after a verified password or SCRAM success, or straight after
   * `startup` to let the client in without a password.
   */
  complete(done: CompleteStartup): Uint8Array {
    this.expectState("complete", "authChoice", "verdict");
    if (this.current === "verdict" && this.authFailed) {
      throw new PostgresProtocolError("INVALID_STATE", "complete() after a failed SCRAM exchange");
    }
    const parts: Uint8Array[] = [];
    if (this.saslFinal !== undefined) parts.push(encodeAuthentication({ type: "AuthenticationSASLFinal", data: this.saslFinal }));
    parts.push(encodeAuthentication({ type: "AuthenticationOk" }));
    for (const [name, value] of Object.entries(done.parameters)) parts.push(encodeParameterStatus({ name, value }));
    if (done.backendKey !== undefined) parts.push(encodeBackendKeyData(done.backendKey));
    parts.push(encodeReadyForQuery({ status: "idle" }));
    this.current = "done";
    return concatBytes(parts);
  }

  /** Refuse the connection with a FATAL ErrorResponse (e.g. 28P01 wrong password, 28000 not allowed). */
  fail(error: Omit<ErrorInit, "severity"> & { readonly severity?: ErrorInit["severity"] }): Uint8Array {
    if (this.current === "done") throw new PostgresProtocolError("INVALID_STATE", "fail() after complete()");
    this.current = "closed";
    return errorResponse({ ...error, severity: error.severity ?? "FATAL" });
  }

  /** After `complete()`: the bytes the client sent past its startup, for the relay (usually none). */
  remaining(): Uint8Array[] {
    this.expectState("remaining", "done");
    return this.reader.takeBuffered();
  }

  private expectState(method: string, ...states: ClientStartupState[]): void {
    if (!states.includes(this.current)) {
      throw new PostgresProtocolError("INVALID_STATE", `${method}() in state ${this.current}`, {
        context: { state: this.current, expected: states },
      });
    }
  }

  private nextStartupPacket(): ClientStartupEvent | undefined {
    if (this.firstPacket && !this.tls && this.reader.peekByte() === 0x16) {
      // A TLS record header where a length would be: direct TLS negotiation (Postgres 17+).
      this.tls = true;
      this.firstPacket = false;
      return { type: "directTls", bytes: this.reader.takeBuffered() };
    }
    let frame;
    try {
      frame = this.reader.read();
    } catch (error) {
      // In startup mode the reader refuses nothing but the packet's length: an answer would only
      // make a client that is leaving fail its connect() (Postgres answers nothing either).
      if (!(error instanceof PostgresProtocolError)) throw error;
      this.current = "closed";
      return { type: "abandon", reason: error.message };
    }
    if (frame === undefined) return undefined;
    if (frame.kind !== "message") throw violation("unexpected streamed startup packet");
    this.firstPacket = false;
    const packet = decodeStartupPacket(frame.body);
    switch (packet.type) {
      case "SSLRequest":
        if (this.tls) throw violation("SSLRequest after TLS was already negotiated");
        this.current = "sslAnswer";
        return { type: "sslRequest" };
      case "GSSENCRequest":
        // GSSAPI encryption is not offered: 'N', and the client goes on with SSL or a StartupMessage.
        return { type: "write", bytes: new Uint8Array([0x4e]) };
      case "CancelRequest":
        this.current = "closed";
        return { type: "cancelRequest", processId: packet.processId, secretKey: packet.secretKey.slice() };
      case "StartupMessage":
        return this.onStartupMessage(packet.protocolVersion, packet.params);
    }
  }

  private onStartupMessage(version: number, raw: StartupParams): ClientStartupEvent {
    const major = protocolMajor(version);
    const minor = protocolMinor(version);
    if (major !== 3) {
      throw new PostgresProtocolError("UNSUPPORTED_PROTOCOL", `unsupported frontend protocol ${major}.${minor}`, {
        clientMessage: `unsupported frontend protocol ${major}.${minor}: server supports 3.0 to 3.0`,
        context: { major, minor },
      });
    }
    const params: Record<string, string> = Object.create(null) as Record<string, string>;
    const unrecognized: string[] = [];
    for (const [name, value] of Object.entries(raw)) {
      if (name.startsWith("_pq_.")) unrecognized.push(name);
      else params[name] = value;
    }
    const user = params.user ?? "";
    if (user === "") {
      throw new PostgresProtocolError("PROTOCOL_VIOLATION", "no user name in startup packet", {
        sqlState: SqlState.invalidAuthorizationSpecification,
        clientMessage: "no PostgreSQL user name specified in startup packet",
      });
    }
    this.user = user;
    this.reader.startup = false;
    this.current = "authChoice";
    const startup: ClientStartupEvent = {
      type: "startup",
      user,
      database: params.database !== undefined && params.database !== "" ? params.database : user,
      params,
      protocolVersion: version,
      tls: this.tls,
    };
    if (minor > 0 || unrecognized.length > 0) {
      // Newer 3.x clients (e.g. 3.2) and protocol options: offer 3.0 and no options, as a 3.0 server does.
      this.pendingStartup = startup;
      return { type: "write", bytes: encodeNegotiateProtocolVersion({ newestMinorVersion: 0, unrecognizedOptions: unrecognized }) };
    }
    return startup;
  }

  private nextAuthMessage(): ClientStartupEvent | undefined {
    const frame = this.reader.read();
    if (frame === undefined) return undefined;
    if (frame.kind !== "message") throw violation("unexpected streamed authentication message");
    if (frame.code === FrontendCode.Terminate) {
      this.current = "closed";
      return { type: "terminate" };
    }
    const step = this.auth!.answer(frame.body);
    switch (step.type) {
      case "write":
        this.current = this.auth!.waitingFor;
        return step;
      case "password":
        this.current = "verdict";
        return step;
      case "authenticated":
        this.current = "verdict";
        this.saslFinal = step.serverFinal;
        return { type: "authenticated", method: step.method, verifier: step.verifier };
      case "authenticationFailed":
        this.current = "verdict";
        this.authFailed = true;
        return step;
    }
  }
}

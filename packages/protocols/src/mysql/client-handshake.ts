/**
 * `ClientHandshake`: the gateway's side of a MySQL client's connection phase, as a pure state
 * machine (https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase.html).
 * The server speaks first, so the caller builds the greeting (version, capabilities, a fresh
 * scramble) before it knows who is connecting; see README.md for how it is chosen.
 *
 *   client                              ClientHandshake                       caller (listener)
 *                          ◄── start() ── HandshakeV10 (seq 0)
 *   SSLRequest (seq 1)      ──push──► event sslRequest        ──────► acceptTls() → raw bytes for TLS; upgrade, push decrypted bytes
 *   HandshakeResponse41     ──push──► event login (user = identity, database = connection name, plugin, auth data, tls)
 *                                                                ──────► requestPassword() | checkNativePassword(verifiers) | fail()
 *   requestPassword():   caching_sha2_password client → AuthMoreData 0x04 "perform full authentication";
 *                        else AuthSwitchRequest(mysql_clear_password, or caching_sha2_password when asked)
 *   cleartext password      ──push──► event password          ──────► complete() | fail(1045)
 *   checkNativePassword(): the client's token checked against the verifiers (after an
 *                        AuthSwitchRequest to mysql_native_password if it started with another plugin)
 *                           ──push──► event authenticated | authenticationFailed ──► complete() | fail(1045)
 *   complete({ statusFlags }) → OK;  fail(error) → ERR, each with the right sequence id
 *   remaining() → bytes the client sent after its login (the first command), for the relay
 *
 * Drive it with `push(chunk)` then `next()` until it returns undefined. Protocol violations
 * throw `MysqlProtocolError`; answer with `fail(error)` and close.
 */
import { randomBytes } from "node:crypto";
import { AuthPlugin, CachingSha2, Capability, SCRAMBLE_LENGTH, hasCapability } from "./constants.js";
import { MysqlProtocolError, type ServerErrorFields } from "./errors.js";
import { PacketReader, encodePacket, expectSequenceId, type Packet } from "./framing.js";
import {
  decodeHandshakeResponse41,
  decodeSslRequest,
  encodeAuthMoreData,
  encodeAuthSwitchRequest,
  encodeErrPacket,
  encodeHandshakeV10,
  encodeOkPacket,
  isSslRequest,
  type HandshakeV10,
} from "./packets.js";
import { decodeCleartextPassword } from "./auth/caching-sha2.js";
import { checkNativePasswordToken } from "./auth/native-password.js";

/**
 * The largest login packet accepted: a response with long connection attributes stays far
 * below; MySQL caps attributes at 64 KiB.
 */
const MAX_LOGIN_PACKET = 128 * 1024;

export interface GreetingOptions {
  readonly serverVersion: string;
  readonly connectionId: number;
  /** Low capability word to advertise (CLIENT_SSL only when the listener can do TLS). */
  readonly capabilities: number;
  readonly mariadbCapabilities?: number;
  /** Default collation id. Default utf8mb4_general_ci (45). */
  readonly characterSet?: number;
  /** Default SERVER_STATUS_AUTOCOMMIT. */
  readonly statusFlags?: number;
  /** The plugin named in the greeting. Default mysql_native_password (every client has it). */
  readonly authPluginName?: string;
  /** 20 bytes; default fresh random bytes (tests inject). NUL bytes are not allowed (clients read it as a C string). */
  readonly scramble?: Uint8Array;
}

export interface ClientLogin {
  readonly type: "login";
  /** The identity name. */
  readonly user: string;
  /** The connection name (CLIENT_CONNECT_WITH_DB), or undefined when the client named none. */
  readonly database: string | undefined;
  /** The client's capabilities as sent. */
  readonly clientCapabilities: number;
  /** The capabilities in force: the client's, limited to what the greeting offered. */
  readonly capabilities: number;
  readonly mariadbCapabilities: number;
  readonly characterSet: number;
  readonly maxPacketSize: number;
  readonly authPluginName: string;
  readonly authResponse: Uint8Array;
  readonly attributes: ReadonlyArray<readonly [string, string]>;
  /** Whether TLS was negotiated before the login. */
  readonly tls: boolean;
}

export type ClientHandshakeEvent =
  /** Write these bytes to the client (a further round of the authentication exchange). */
  | { readonly type: "write"; readonly bytes: Uint8Array }
  /** The client asks for TLS: call `acceptTls()`, run the TLS handshake, then push the decrypted stream. */
  | { readonly type: "sslRequest" }
  | ClientLogin
  /** The cleartext password (access key or token); verify it, then `complete()` or `fail()`. */
  | { readonly type: "password"; readonly password: string; readonly plugin: string }
  /** The native token matched `verifier` (its index among those given). */
  | { readonly type: "authenticated"; readonly method: "mysql_native_password"; readonly verifier: number }
  | { readonly type: "authenticationFailed"; readonly method: "mysql_native_password"; readonly reason: "invalid_token" };

export type ClientHandshakeState =
  | "greeting"
  | "response"
  | "tlsPending"
  | "authChoice"
  | "password"
  | "nativeToken"
  | "verdict"
  | "done"
  | "failed";

export interface RequestPasswordOptions {
  /**
   * The plugin to switch a client to when it did not start with caching_sha2_password.
   * Default mysql_clear_password (MariaDB's and MySQL's clients send the password at once;
   * MySQL's needs --enable-cleartext-plugin). caching_sha2_password costs one more round trip.
   */
  readonly switchTo?: typeof AuthPlugin.MYSQL_CLEAR_PASSWORD | typeof AuthPlugin.CACHING_SHA2_PASSWORD;
}

export class ClientHandshake {
  private readonly reader = new PacketReader({ maxPacketSize: MAX_LOGIN_PACKET });
  private readonly greeting: HandshakeV10;
  private current: ClientHandshakeState = "greeting";
  private tls = false;
  /** Sequence id of the last packet sent or received. */
  private sequenceId = 0;
  private login: ClientLogin | undefined;
  private plugin = "";
  private verifiers: readonly Uint8Array[] = [];
  /** After switching a non-caching_sha2 client to caching_sha2: its token arrives first, then we ask for full auth. */
  private awaitingSha2Token = false;
  /** Events decided without reading (a native token checked at once). */
  private readonly queued: ClientHandshakeEvent[] = [];

  constructor(options: GreetingOptions) {
    const scramble = options.scramble ?? freshScramble();
    if (scramble.byteLength !== SCRAMBLE_LENGTH || scramble.includes(0)) {
      throw new MysqlProtocolError("INVALID_STATE", "the scramble must be 20 non-zero bytes");
    }
    this.greeting = {
      serverVersion: options.serverVersion,
      connectionId: options.connectionId,
      scramble,
      capabilities: (options.capabilities | Capability.CLIENT_PROTOCOL_41 | Capability.CLIENT_SECURE_CONNECTION | Capability.CLIENT_PLUGIN_AUTH) >>> 0,
      mariadbCapabilities: options.mariadbCapabilities ?? 0,
      characterSet: options.characterSet ?? 45,
      statusFlags: options.statusFlags ?? 0x2,
      authPluginName: options.authPluginName ?? AuthPlugin.MYSQL_NATIVE_PASSWORD,
    };
  }

  get state(): ClientHandshakeState {
    return this.current;
  }

  /** The scramble this connection's greeting carries. */
  get scramble(): Uint8Array {
    return this.greeting.scramble;
  }

  /** The greeting (HandshakeV10, sequence id 0): write it as soon as the client connects. */
  start(): Uint8Array {
    this.expectState("start", "greeting");
    this.current = "response";
    return encodePacket(0, encodeHandshakeV10(this.greeting));
  }

  push(chunk: Uint8Array): void {
    this.reader.push(chunk);
  }

  next(): ClientHandshakeEvent | undefined {
    const queued = this.queued.shift();
    if (queued !== undefined) return queued;
    switch (this.current) {
      case "response":
      case "password":
      case "nativeToken": {
        const packet = this.reader.read();
        if (packet === undefined) return undefined;
        expectSequenceId(packet, this.sequenceId + 1);
        this.sequenceId = packet.lastSequenceId;
        if (this.current === "response") return this.onResponse(packet);
        if (this.current === "password") return this.onPassword(packet);
        return this.onNativeToken(packet);
      }
      case "greeting":
      case "tlsPending":
      case "authChoice":
      case "verdict":
      case "done":
      case "failed":
        // Waiting for the caller (or finished): bytes the client sends now stay buffered.
        return undefined;
    }
  }

  /**
   * After `sslRequest`: the caller upgrades the socket to TLS now and pushes what it decrypts.
   * Returns the raw bytes already received (the start of the ClientHello) to feed to TLS first.
   */
  acceptTls(): Uint8Array[] {
    this.expectState("acceptTls", "tlsPending");
    // Bytes after the SSLRequest, before the TLS handshake, are plaintext the client never
    // meant to send unencrypted, or an injection; a TLS ClientHello is the only thing allowed.
    if (this.reader.buffered > 0 && this.reader.peekByte() !== 0x16) {
      throw new MysqlProtocolError("PROTOCOL_VIOLATION", "received unencrypted data after SSLRequest");
    }
    this.tls = true;
    this.current = "response";
    return this.reader.takeBuffered();
  }

  /** After `login`: ask for the cleartext password (over TLS). Returns the packet to write; then `password` follows. */
  requestPassword(options: RequestPasswordOptions = {}): Uint8Array {
    this.expectState("requestPassword", "authChoice");
    const login = this.login!;
    this.current = "password";
    if (login.authPluginName === AuthPlugin.CACHING_SHA2_PASSWORD) {
      // The client's fast-path token needs a cached SHA-256 of the password; we keep none.
      this.plugin = AuthPlugin.CACHING_SHA2_PASSWORD;
      return this.packet(encodeAuthMoreData(Uint8Array.of(CachingSha2.PERFORM_FULL_AUTHENTICATION)));
    }
    this.requirePluginAuth(login);
    this.plugin = options.switchTo ?? AuthPlugin.MYSQL_CLEAR_PASSWORD;
    this.awaitingSha2Token = this.plugin === AuthPlugin.CACHING_SHA2_PASSWORD;
    return this.packet(encodeAuthSwitchRequest({ pluginName: this.plugin, pluginData: this.greeting.scramble }));
  }

  /**
   * After `login`: check a mysql_native_password token against the identity's verifiers
   * (SHA1(SHA1(key)); empty for an unknown identity: the exchange runs and fails alike).
   * Returns the AuthSwitchRequest to write when the client started with another plugin;
   * otherwise undefined, and `authenticated`/`authenticationFailed` follows from `next()`.
   */
  checkNativePassword(verifiers: readonly Uint8Array[]): Uint8Array | undefined {
    this.expectState("checkNativePassword", "authChoice");
    this.verifiers = verifiers;
    this.plugin = AuthPlugin.MYSQL_NATIVE_PASSWORD;
    const login = this.login!;
    if (login.authPluginName === AuthPlugin.MYSQL_NATIVE_PASSWORD) {
      this.current = "verdict";
      this.queued.push(this.verdict(login.authResponse));
      return undefined;
    }
    this.requirePluginAuth(login);
    this.current = "nativeToken";
    return this.packet(encodeAuthSwitchRequest({ pluginName: AuthPlugin.MYSQL_NATIVE_PASSWORD, pluginData: this.greeting.scramble }));
  }

  /** Authentication passed: the final OK (with the resource's status flags), after which the command phase starts at sequence 0. */
  complete(ok: { readonly statusFlags?: number; readonly info?: string } = {}): Uint8Array {
    this.expectState("complete", "verdict");
    this.current = "done";
    return this.packet(encodeOkPacket({ statusFlags: ok.statusFlags ?? this.greeting.statusFlags, info: ok.info ?? "" }, this.login?.capabilities ?? Capability.CLIENT_PROTOCOL_41));
  }

  /** An ERR packet for `error` with the next sequence id; the caller writes it and closes. Any state. */
  fail(error: ServerErrorFields | MysqlProtocolError): Uint8Array {
    // Refused before the greeting (too many connections): the ERR takes the greeting's place, sequence 0.
    if (this.current === "greeting") this.sequenceId = 0xff;
    this.current = "failed";
    const fields = error instanceof MysqlProtocolError ? error.wire : error;
    return this.packet(encodeErrPacket(fields));
  }

  /** After `complete()`: bytes the client sent after its login, for the relay. */
  remaining(): Uint8Array[] {
    this.expectState("remaining", "done");
    return this.reader.takeBuffered();
  }

  /** An AuthSwitchRequest means nothing to a client without CLIENT_PLUGIN_AUTH: refuse, as MySQL does. */
  private requirePluginAuth(login: ClientLogin): void {
    if (!hasCapability(login.clientCapabilities, Capability.CLIENT_PLUGIN_AUTH)) {
      this.current = "authChoice";
      throw new MysqlProtocolError("UNSUPPORTED_AUTH", "client without CLIENT_PLUGIN_AUTH cannot switch authentication method", {
        context: { capabilities: login.clientCapabilities },
      });
    }
  }

  private onResponse(packet: Packet): ClientHandshakeEvent {
    const payload = packet.payload;
    if (isSslRequest(payload)) {
      if (this.tls) throw new MysqlProtocolError("PROTOCOL_VIOLATION", "SSLRequest over TLS");
      if (!hasCapability(this.greeting.capabilities, Capability.CLIENT_SSL)) {
        throw new MysqlProtocolError("PROTOCOL_VIOLATION", "SSLRequest though the greeting did not offer CLIENT_SSL");
      }
      decodeSslRequest(payload);
      this.current = "tlsPending";
      return { type: "sslRequest" };
    }
    const response = decodeHandshakeResponse41(payload);
    const capabilities = (response.capabilities & this.greeting.capabilities) >>> 0;
    const login: ClientLogin = {
      type: "login",
      user: response.username,
      database: response.database === "" ? undefined : response.database,
      clientCapabilities: response.capabilities,
      capabilities,
      mariadbCapabilities: (response.mariadbCapabilities & this.greeting.mariadbCapabilities) >>> 0,
      characterSet: response.characterSet,
      maxPacketSize: response.maxPacketSize,
      authPluginName: response.authPluginName === "" ? AuthPlugin.MYSQL_NATIVE_PASSWORD : response.authPluginName,
      // Copy: the payload is a view of a chunk the caller may drop.
      authResponse: response.authResponse.slice(),
      attributes: response.attributes,
      tls: this.tls,
    };
    this.login = login;
    this.current = "authChoice";
    return login;
  }

  private onPassword(packet: Packet): ClientHandshakeEvent | undefined {
    if (this.awaitingSha2Token) {
      // The switched client's fast-path token: ignore it, ask for the password itself.
      this.awaitingSha2Token = false;
      return { type: "write", bytes: this.packet(encodeAuthMoreData(Uint8Array.of(CachingSha2.PERFORM_FULL_AUTHENTICATION))) };
    }
    const password = decodeCleartextPassword(packet.payload);
    if (password === undefined) throw new MysqlProtocolError("PROTOCOL_VIOLATION", "password with a NUL byte inside");
    this.current = "verdict";
    return { type: "password", password, plugin: this.plugin };
  }

  private onNativeToken(packet: Packet): ClientHandshakeEvent {
    this.current = "verdict";
    return this.verdict(packet.payload);
  }

  private verdict(token: Uint8Array): ClientHandshakeEvent {
    const index = this.verifiers.findIndex((verifier) => checkNativePasswordToken(token, this.greeting.scramble, verifier));
    return index >= 0
      ? { type: "authenticated", method: "mysql_native_password", verifier: index }
      : { type: "authenticationFailed", method: "mysql_native_password", reason: "invalid_token" };
  }

  private packet(payload: Uint8Array): Uint8Array {
    this.sequenceId = (this.sequenceId + 1) & 0xff;
    return encodePacket(this.sequenceId, payload);
  }

  private expectState(method: string, ...states: ClientHandshakeState[]): void {
    if (!states.includes(this.current)) {
      throw new MysqlProtocolError("INVALID_STATE", `${method}() in state ${this.current}`, { context: { state: this.current, expected: states } });
    }
  }
}

/** 20 random bytes in 1..255 (no NUL: clients read the scramble's second part as a C string). */
function freshScramble(): Uint8Array {
  const bytes = randomBytes(SCRAMBLE_LENGTH);
  for (let i = 0; i < bytes.length; i++) if (bytes[i] === 0) bytes[i] = 1 + (i % 255);
  return new Uint8Array(bytes);
}

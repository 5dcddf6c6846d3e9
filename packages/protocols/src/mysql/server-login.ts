/**
 * `ServerLogin`: the connector's side of logging in to the real MySQL/MariaDB server, as a pure
 * state machine (https://dev.mysql.com/doc/dev/mysql-server/latest/page_protocol_connection_phase.html).
 *
 *   server                          ServerLogin                          caller (dialer)
 *   HandshakeV10 (seq 0)   ──push──► event write SSLRequest (seq 1), event startTls ──► upgrade, then tlsEstablished() → HandshakeResponse41 (seq 2)
 *                                    or event write HandshakeResponse41 (seq 1)
 *   AuthSwitchRequest      ──push──► event write the new plugin's answer
 *   AuthMoreData           ──push──► caching_sha2: 0x03 wait for OK; 0x04 → password over TLS,
 *                                    or 0x02 (ask for the RSA key) → RSA-encrypted password
 *   OK                     ──push──► event ready (what the gateway must show the client)
 *   ERR                    ──push──► event failed (the server's errno, SQLSTATE, message; pass it on)
 *   remaining() → server bytes after the OK (none in practice: the client speaks next)
 *
 * Every packet's sequence id is checked (the server answers ours + 1) and set on ours.
 * Protocol violations throw `MysqlProtocolError`.
 */
import { PayloadReader } from "./bytes.js";
import { AuthPlugin, CachingSha2, Capability, Collation, PacketHeader, hasCapability, withoutCapabilities } from "./constants.js";
import { MysqlProtocolError, violation, type ServerErrorFields } from "./errors.js";
import { DEFAULT_MAX_PACKET_SIZE, PacketReader, encodePacket, expectSequenceId, type Packet } from "./framing.js";
import {
  decodeAuthSwitchRequest,
  decodeErrPacket,
  decodeHandshakeV10,
  decodeOkPacket,
  encodeHandshakeResponse41,
  encodeSslRequest,
  type HandshakeV10,
} from "./packets.js";
import { cachingSha2EncryptPassword, cachingSha2Token, passwordWithNul } from "./auth/caching-sha2.js";
import { ed25519Sign } from "./auth/ed25519.js";
import { nativePasswordToken } from "./auth/native-password.js";

export type TlsMode = "disable" | "prefer" | "require";

/** Server packets during login are small; a bigger one is refused, not buffered. */
const LOGIN_MAX_PACKET = 1 << 20;

/**
 * Capabilities the connector asks for when the caller passes none (a modern client's set).
 * The dialer normally passes the client's own, so result sets come back in the shape the
 * client negotiated (CLIENT_DEPRECATE_EOF, CLIENT_MULTI_RESULTS...).
 */
export const DEFAULT_CLIENT_CAPABILITIES =
  Capability.CLIENT_LONG_PASSWORD |
  Capability.CLIENT_LONG_FLAG |
  Capability.CLIENT_PROTOCOL_41 |
  Capability.CLIENT_TRANSACTIONS |
  Capability.CLIENT_SECURE_CONNECTION |
  Capability.CLIENT_MULTI_STATEMENTS |
  Capability.CLIENT_MULTI_RESULTS |
  Capability.CLIENT_PS_MULTI_RESULTS |
  Capability.CLIENT_PLUGIN_AUTH |
  Capability.CLIENT_CONNECT_ATTRS |
  Capability.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA |
  Capability.CLIENT_SESSION_TRACK |
  Capability.CLIENT_DEPRECATE_EOF;

/**
 * Capabilities the connector never asks the server for: the relay does not compress, the
 * login itself sets these per connection, and query attributes / expired-password sandbox
 * mode are not relayed.
 */
export const NEVER_REQUESTED_CAPABILITIES =
  Capability.CLIENT_COMPRESS |
  Capability.CLIENT_ZSTD_COMPRESSION_ALGORITHM |
  Capability.CLIENT_QUERY_ATTRIBUTES |
  Capability.CLIENT_SSL |
  Capability.CLIENT_CONNECT_WITH_DB |
  Capability.CLIENT_CONNECT_ATTRS |
  Capability.CLIENT_CAN_HANDLE_EXPIRED_PASSWORDS |
  Capability.MULTI_FACTOR_AUTHENTICATION |
  Capability.CLIENT_SSL_VERIFY_SERVER_CERT |
  Capability.CLIENT_REMEMBER_OPTIONS;

/** Capabilities every login needs (4.1 protocol and pluggable auth). */
const REQUIRED = Capability.CLIENT_PROTOCOL_41 | Capability.CLIENT_SECURE_CONNECTION | Capability.CLIENT_PLUGIN_AUTH;

const SUPPORTED_PLUGINS: readonly string[] = [
  AuthPlugin.MYSQL_NATIVE_PASSWORD,
  AuthPlugin.CACHING_SHA2_PASSWORD,
  AuthPlugin.CLIENT_ED25519,
  AuthPlugin.MYSQL_CLEAR_PASSWORD,
];

export interface ServerLoginOptions {
  /** The account to log in as (the connection's credential, not the client's identity). */
  readonly user: string;
  readonly password?: string;
  /** Sent with CLIENT_CONNECT_WITH_DB when set. */
  readonly database?: string;
  /** Default "prefer": TLS when the server offers CLIENT_SSL. */
  readonly tls?: TlsMode;
  /**
   * The capabilities in force between the client and the gateway (`ClientLogin.capabilities`:
   * the client's, limited to the greeting's — not the client's raw flags), passed on minus
   * `NEVER_REQUESTED_CAPABILITIES`, so client and server agree on every packet format.
   * Default `DEFAULT_CLIENT_CAPABILITIES`.
   */
  readonly clientCapabilities?: number;
  /** The MariaDB extended capabilities in force with the client (`ClientLogin.mariadbCapabilities`). Default 0. */
  readonly mariadbCapabilities?: number;
  /** Collation id for the session. Default utf8mb4_general_ci (45). */
  readonly characterSet?: number;
  /** max_packet_size to announce. Default 1 GiB. */
  readonly maxPacketSize?: number;
  /** Connection attributes to send (e.g. the client's, plus program_name). */
  readonly attributes?: ReadonlyArray<readonly [string, string]>;
  /** Plugins the server may choose. Default: all supported. */
  readonly allowedAuth?: readonly string[];
  /** caching_sha2_password without TLS: the server's RSA public key (PEM), pinned. */
  readonly serverPublicKey?: string;
  /**
   * caching_sha2_password without TLS and without a pinned key: ask the server for its key
   * (MySQL's --get-server-public-key). Default false: a man in the middle could hand us its own.
   */
  readonly requestServerPublicKey?: boolean;
  /** mysql_clear_password without TLS (sends the password in the clear). Default false. */
  readonly allowCleartextWithoutTls?: boolean;
}

/** What the gateway must show the client, learned from the real server. */
export interface ServerLoginReady {
  readonly type: "ready";
  readonly serverVersion: string;
  /** The server's advertised capabilities (greeting). */
  readonly serverCapabilities: number;
  readonly serverMariadbCapabilities: number;
  /** The capabilities in force on this connection (what we sent, all of them offered by the server). */
  readonly capabilities: number;
  readonly mariadbCapabilities: number;
  /** Status flags of the final OK (autocommit...). */
  readonly statusFlags: number;
  /** The server's default collation (greeting). */
  readonly characterSet: number;
  /** The connection (thread) id: what `KILL QUERY` names on the server. */
  readonly connectionId: number;
  readonly authPlugin: string;
  readonly tls: boolean;
  /** Sequence id of the final OK; the command phase restarts at 0. */
  readonly sequenceId: number;
}

export type ServerLoginEvent =
  /** Write these bytes to the server. */
  | { readonly type: "write"; readonly bytes: Uint8Array }
  /** Start TLS on the socket now, then call `tlsEstablished()`. */
  | { readonly type: "startTls" }
  | ServerLoginReady
  /** The server refused (ERR packet); pass `error` on to the client as is. */
  | { readonly type: "failed"; readonly error: ServerErrorFields };

export type ServerLoginState = "greeting" | "tlsPending" | "authenticating" | "publicKey" | "ready" | "failed";

export class ServerLogin {
  private readonly reader = new PacketReader({ maxPacketSize: LOGIN_MAX_PACKET });
  private current: ServerLoginState = "greeting";
  private greeting: HandshakeV10 | undefined;
  private capabilities = 0;
  private mariadbCapabilities = 0;
  private tls = false;
  /** Sequence id of the last packet sent or received. */
  private sequenceId = 0;
  private plugin = "";
  private scramble: Uint8Array = new Uint8Array(0);
  /** Events to hand out before reading more (write + startTls come as a pair). */
  private readonly queued: ServerLoginEvent[] = [];

  constructor(private readonly options: ServerLoginOptions) {
    for (const [what, value] of [["user", options.user], ["database", options.database ?? ""]] as const) {
      // NUL-terminated on the wire: a NUL would end the field early and smuggle the rest in as the next one.
      if (value.includes("\0")) throw violation(`${what} contains a NUL byte`);
    }
  }

  get state(): ServerLoginState {
    return this.current;
  }

  push(chunk: Uint8Array): void {
    this.reader.push(chunk);
  }

  next(): ServerLoginEvent | undefined {
    const queued = this.queued.shift();
    if (queued !== undefined) return queued;
    switch (this.current) {
      case "tlsPending":
      case "ready":
      case "failed":
        return undefined;
      case "greeting":
      case "authenticating":
      case "publicKey": {
        const packet = this.reader.read();
        if (packet === undefined) return undefined;
        expectSequenceId(packet, this.current === "greeting" ? 0 : this.sequenceId + 1);
        this.sequenceId = packet.lastSequenceId;
        return this.current === "greeting" ? this.onGreeting(packet.payload) : this.onAuthPacket(packet);
      }
    }
  }

  /** After the TLS handshake that followed `startTls`: the HandshakeResponse41 to send over TLS. */
  tlsEstablished(): Uint8Array {
    if (this.current !== "tlsPending") {
      throw new MysqlProtocolError("INVALID_STATE", `tlsEstablished() in state ${this.current}`);
    }
    this.tls = true;
    this.current = "authenticating";
    return this.handshakeResponse();
  }

  /** After `ready`: server bytes that followed the OK, for the relay. */
  remaining(): Uint8Array[] {
    if (this.current !== "ready") throw new MysqlProtocolError("INVALID_STATE", `remaining() in state ${this.current}`);
    return this.reader.takeBuffered();
  }

  private onGreeting(payload: Uint8Array): ServerLoginEvent {
    if (payload[0] === PacketHeader.ERR) return this.fail(decodeErrPacket(payload));
    const greeting = decodeHandshakeV10(payload);
    this.greeting = greeting;
    if ((greeting.capabilities & REQUIRED) !== REQUIRED) {
      throw new MysqlProtocolError("UNSUPPORTED_CAPABILITY", "server lacks 4.1 protocol or pluggable authentication", {
        context: { capabilities: greeting.capabilities },
      });
    }
    const tlsMode = this.options.tls ?? "prefer";
    const serverTls = hasCapability(greeting.capabilities, Capability.CLIENT_SSL);
    if (tlsMode === "require" && !serverTls) {
      throw new MysqlProtocolError("TLS_REQUIRED", "the server does not offer TLS, and tls is required");
    }
    const wantTls = serverTls && tlsMode !== "disable";

    const requested = withoutCapabilities(this.options.clientCapabilities ?? DEFAULT_CLIENT_CAPABILITIES, NEVER_REQUESTED_CAPABILITIES);
    let caps = (requested | REQUIRED) & greeting.capabilities;
    if (wantTls) caps |= Capability.CLIENT_SSL;
    if (this.options.database !== undefined) caps |= Capability.CLIENT_CONNECT_WITH_DB;
    if (this.options.attributes !== undefined && this.options.attributes.length > 0) caps |= Capability.CLIENT_CONNECT_ATTRS;
    caps &= greeting.capabilities;
    this.capabilities = caps >>> 0;
    // MariaDB's extended word counts only when both sides clear CLIENT_LONG_PASSWORD ("CLIENT_MYSQL").
    this.mariadbCapabilities = hasCapability(this.capabilities, Capability.CLIENT_LONG_PASSWORD)
      ? 0
      : ((this.options.mariadbCapabilities ?? 0) & greeting.mariadbCapabilities) >>> 0;

    this.scramble = greeting.scramble;
    this.plugin = this.pluginAllowed(greeting.authPluginName) && greeting.authPluginName !== AuthPlugin.MYSQL_CLEAR_PASSWORD
      ? greeting.authPluginName
      : AuthPlugin.MYSQL_NATIVE_PASSWORD;

    this.current = "authenticating";
    if (wantTls) {
      this.current = "tlsPending";
      this.queued.push({ type: "startTls" });
      return {
        type: "write",
        bytes: this.packet(
          encodeSslRequest({
            capabilities: this.capabilities,
            mariadbCapabilities: this.mariadbCapabilities,
            maxPacketSize: this.options.maxPacketSize ?? DEFAULT_MAX_PACKET_SIZE,
            characterSet: this.options.characterSet ?? Collation.utf8mb4_general_ci,
          }),
        ),
      };
    }
    return { type: "write", bytes: this.handshakeResponse() };
  }

  private handshakeResponse(): Uint8Array {
    return this.packet(
      encodeHandshakeResponse41({
        capabilities: this.capabilities,
        mariadbCapabilities: this.mariadbCapabilities,
        maxPacketSize: this.options.maxPacketSize ?? DEFAULT_MAX_PACKET_SIZE,
        characterSet: this.options.characterSet ?? Collation.utf8mb4_general_ci,
        username: this.options.user,
        authResponse: this.pluginAnswer(this.plugin, this.scramble),
        database: this.options.database,
        authPluginName: this.plugin,
        attributes: this.options.attributes ?? [],
      }),
    );
  }

  private onAuthPacket(packet: Packet): ServerLoginEvent | undefined {
    const payload = packet.payload;
    switch (payload[0]) {
      case PacketHeader.OK: {
        if (this.current === "publicKey") throw violation("OK while waiting for the server's public key");
        const ok = decodeOkPacket(payload, this.capabilities);
        const greeting = this.greeting!;
        this.current = "ready";
        return {
          type: "ready",
          serverVersion: greeting.serverVersion,
          serverCapabilities: greeting.capabilities,
          serverMariadbCapabilities: greeting.mariadbCapabilities,
          capabilities: this.capabilities,
          mariadbCapabilities: this.mariadbCapabilities,
          statusFlags: ok.statusFlags,
          characterSet: greeting.characterSet,
          connectionId: greeting.connectionId,
          authPlugin: this.plugin,
          tls: this.tls,
          sequenceId: packet.lastSequenceId,
        };
      }
      case PacketHeader.ERR:
        return this.fail(decodeErrPacket(payload));
      case PacketHeader.EOF: {
        if (this.current === "publicKey") throw violation("AuthSwitchRequest while waiting for the server's public key");
        const request = decodeAuthSwitchRequest(payload);
        if (!this.pluginAllowed(request.pluginName)) {
          throw new MysqlProtocolError("UNSUPPORTED_AUTH", `server asked for authentication plugin ${request.pluginName}`, {
            context: { plugin: request.pluginName },
          });
        }
        this.plugin = request.pluginName;
        this.scramble = request.pluginData.slice();
        return { type: "write", bytes: this.packet(this.pluginAnswer(this.plugin, this.scramble)) };
      }
      case PacketHeader.AUTH_MORE_DATA:
        return this.onAuthMoreData(new PayloadReader(payload, "AuthMoreData"));
      default:
        throw violation(`unexpected packet 0x${(payload[0] ?? 0).toString(16)} during authentication`);
    }
  }

  private onAuthMoreData(r: PayloadReader): ServerLoginEvent | undefined {
    r.skip(1);
    if (this.plugin !== AuthPlugin.CACHING_SHA2_PASSWORD) throw violation(`AuthMoreData for plugin ${this.plugin}`);
    if (this.current === "publicKey") {
      const pem = r.restString();
      return { type: "write", bytes: this.packet(this.encryptedPassword(pem)) };
    }
    const status = r.u8("caching_sha2 status");
    if (status === CachingSha2.FAST_AUTH_SUCCESS) return this.next();
    if (status !== CachingSha2.PERFORM_FULL_AUTHENTICATION) throw violation(`caching_sha2_password status 0x${status.toString(16)}`);
    const password = this.options.password ?? "";
    if (this.tls) return { type: "write", bytes: this.packet(passwordWithNul(password)) };
    if (this.options.serverPublicKey !== undefined) {
      return { type: "write", bytes: this.packet(this.encryptedPassword(this.options.serverPublicKey)) };
    }
    if (this.options.requestServerPublicKey === true) {
      this.current = "publicKey";
      return { type: "write", bytes: this.packet(Uint8Array.of(CachingSha2.REQUEST_PUBLIC_KEY)) };
    }
    throw new MysqlProtocolError("TLS_REQUIRED", "caching_sha2_password full authentication needs TLS or the server's RSA public key", {
      context: { plugin: this.plugin },
    });
  }

  private encryptedPassword(pem: string): Uint8Array {
    this.current = "authenticating";
    try {
      return cachingSha2EncryptPassword(this.options.password ?? "", this.scramble, pem);
    } catch (cause) {
      throw new MysqlProtocolError("AUTH_FAILED", "could not encrypt the password with the server's public key", { cause });
    }
  }

  private pluginAllowed(plugin: string): boolean {
    return SUPPORTED_PLUGINS.includes(plugin) && (this.options.allowedAuth?.includes(plugin) ?? true);
  }

  private pluginAnswer(plugin: string, scramble: Uint8Array): Uint8Array {
    const password = this.options.password ?? "";
    switch (plugin) {
      case AuthPlugin.MYSQL_NATIVE_PASSWORD:
        return nativePasswordToken(password, scramble);
      case AuthPlugin.CACHING_SHA2_PASSWORD:
        return cachingSha2Token(password, scramble);
      case AuthPlugin.CLIENT_ED25519:
        return ed25519Sign(password, scramble);
      case AuthPlugin.MYSQL_CLEAR_PASSWORD:
        if (!this.tls && this.options.allowCleartextWithoutTls !== true) {
          throw new MysqlProtocolError("TLS_REQUIRED", "the server asked for the password in cleartext without TLS", {
            context: { plugin },
          });
        }
        return passwordWithNul(password);
      default:
        throw new MysqlProtocolError("UNSUPPORTED_AUTH", `authentication plugin ${plugin}`, { context: { plugin } });
    }
  }

  private fail(error: ServerErrorFields): ServerLoginEvent {
    this.current = "failed";
    return { type: "failed", error };
  }

  /** Frame a payload with the next sequence id. */
  private packet(payload: Uint8Array): Uint8Array {
    this.sequenceId = (this.sequenceId + 1) & 0xff;
    return encodePacket(this.sequenceId, payload);
  }
}

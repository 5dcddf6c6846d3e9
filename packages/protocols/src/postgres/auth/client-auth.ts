/**
 * Client-side authentication methods behind one interface: the connector answers whatever
 * Authentication* request the real server sends with the credential it holds.
 *
 * `PasswordAuthenticator` covers trust (no request), cleartext, MD5 and SCRAM-SHA-256. The
 * `allowed` list works like libpq's `require_auth`: a server (or something impersonating it)
 * cannot talk the connector into a weaker method, e.g. cleartext to harvest the password.
 */
import type { AuthenticationMessage } from "../backend-messages.js";
import { PostgresProtocolError } from "../errors.js";
import { encodePasswordMessage, encodeSASLInitialResponse, encodeSASLResponse } from "../frontend-messages.js";
import { md5PasswordResponse } from "./md5.js";
import { SCRAM_SHA_256 } from "./scram.js";
import type { ScramClientOptions } from "./scram-client.js";
import { ScramClient } from "./scram-client.js";

/** Authentication methods as named in pg_hba.conf / libpq require_auth. */
export type ClientAuthMethod = "trust" | "password" | "md5" | "scram-sha-256";
export const ALL_CLIENT_AUTH_METHODS: readonly ClientAuthMethod[] = ["trust", "password", "md5", "scram-sha-256"];

export interface ClientAuthenticator {
  /**
   * Answer one Authentication* request: the bytes to send, or undefined when nothing is sent
   * (AuthenticationOk, AuthenticationSASLFinal). Throws `UNSUPPORTED_AUTH` or `AUTH_FAILED`.
   */
  respond(request: AuthenticationMessage): Uint8Array | undefined;
  /** The method the server chose, once known ("trust" when it sent AuthenticationOk straight away). */
  readonly method: ClientAuthMethod | undefined;
}

export interface PasswordAuthenticatorOptions {
  readonly user: string;
  readonly password?: string;
  /** Methods the server may pick. Default: all of them. */
  readonly allowed?: readonly ClientAuthMethod[];
  /** SCRAM knobs (nonce for tests, iteration cap). */
  readonly scram?: Omit<ScramClientOptions, "password">;
}

export class PasswordAuthenticator implements ClientAuthenticator {
  private chosen: ClientAuthMethod | undefined;
  private scram: ScramClient | undefined;
  private readonly allowed: ReadonlySet<ClientAuthMethod>;

  constructor(private readonly options: PasswordAuthenticatorOptions) {
    this.allowed = new Set(options.allowed ?? ALL_CLIENT_AUTH_METHODS);
  }

  get method(): ClientAuthMethod | undefined {
    return this.chosen;
  }

  private choose(method: ClientAuthMethod): void {
    if (this.chosen !== undefined) {
      throw new PostgresProtocolError("PROTOCOL_VIOLATION", `server switched authentication from ${this.chosen} to ${method}`);
    }
    if (!this.allowed.has(method)) {
      throw new PostgresProtocolError("UNSUPPORTED_AUTH", `server requested "${method}" authentication, which is not allowed`, {
        context: { method, allowed: [...this.allowed] },
      });
    }
    this.chosen = method;
  }

  private password(): string {
    if (this.options.password === undefined) {
      throw new PostgresProtocolError("AUTH_FAILED", "server requested a password but none was supplied");
    }
    return this.options.password;
  }

  respond(request: AuthenticationMessage): Uint8Array | undefined {
    switch (request.type) {
      case "AuthenticationOk":
        if (this.chosen === undefined) this.choose("trust");
        if (this.chosen === "scram-sha-256" && this.scram?.verified !== true) {
          // A server that accepts us without proving it knows the verifier may be an impostor.
          throw new PostgresProtocolError("AUTH_FAILED", "server sent AuthenticationOk before completing SCRAM");
        }
        return undefined;
      case "AuthenticationCleartextPassword": {
        this.choose("password");
        const password = this.password();
        // NUL-terminated on the wire: the server would check only the part before the NUL.
        if (password.includes("\0")) throw new PostgresProtocolError("AUTH_FAILED", "the password contains a NUL byte, which cannot be sent");
        return encodePasswordMessage({ password });
      }
      case "AuthenticationMD5Password":
        this.choose("md5");
        return encodePasswordMessage({ password: md5PasswordResponse(this.options.user, this.password(), request.salt) });
      case "AuthenticationSASL": {
        if (!request.mechanisms.includes(SCRAM_SHA_256)) {
          throw new PostgresProtocolError("UNSUPPORTED_AUTH", `no supported SASL mechanism among ${request.mechanisms.join(", ")}`, {
            context: { mechanisms: request.mechanisms },
          });
        }
        this.choose("scram-sha-256");
        this.scram = new ScramClient({ ...this.options.scram, password: this.password() });
        return encodeSASLInitialResponse({ mechanism: SCRAM_SHA_256, data: this.scram.clientFirst() });
      }
      case "AuthenticationSASLContinue":
        if (this.scram === undefined) throw new PostgresProtocolError("PROTOCOL_VIOLATION", "SASLContinue without SASL");
        return encodeSASLResponse({ data: this.scram.serverFirst(request.data) });
      case "AuthenticationSASLFinal":
        if (this.scram === undefined) throw new PostgresProtocolError("PROTOCOL_VIOLATION", "SASLFinal without SASL");
        this.scram.serverFinal(request.data);
        return undefined;
      case "AuthenticationKerberosV5":
      case "AuthenticationGSS":
      case "AuthenticationGSSContinue":
      case "AuthenticationSSPI":
        throw new PostgresProtocolError("UNSUPPORTED_AUTH", `server requested ${request.type}, which is not supported`);
    }
  }
}

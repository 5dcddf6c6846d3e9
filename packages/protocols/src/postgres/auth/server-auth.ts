/**
 * Server-side authentication methods behind one interface, beside the client-side
 * `ClientAuthenticator` (client-auth.ts): the gateway's startup machine (`ClientStartup`) asks for
 * a method, and each method runs its own exchange of Authentication* requests and client answers.
 * A method is chosen in one exhaustive switch (`serverAuthenticator`), so a new one (or a
 * protocol's own set, for MySQL) is one more case, not another branch in the startup machine.
 * Pure: no I/O; the caller verifies a cleartext password itself (access keys, OIDC tokens).
 */
import { randomBytes } from "node:crypto";
import { encodeAuthentication } from "../backend-messages.js";
import { PostgresProtocolError } from "../errors.js";
import { decodePasswordMessage, decodeSASLInitialResponse, decodeSASLResponse } from "../frontend-messages.js";
import type { ScramVerifier } from "./scram.js";
import { scramMockVerifier } from "./scram.js";
import { SCRAM_SHA_256_PLUS, ScramServer } from "./scram-server.js";

/** The SCRAM mechanism the client chose: with channel binding (`-plus`, over TLS) or without. */
export type ScramMethod = "scram-sha-256" | "scram-sha-256-plus";

export interface RequestScram {
  /** The identity's verifier; undefined for an unknown identity (the exchange runs against a mock and fails). */
  readonly verifier?: ScramVerifier | undefined;
  /**
   * Or all of the identity's verifiers (several live passwords); the first one's salt and
   * iterations are announced, and the others must share them to match. Empty: as `verifier` undefined.
   */
  readonly verifiers?: readonly ScramVerifier[];
  /** Seed of the mock verifier, stable per gateway so repeated attempts look alike. Default: random per connection. */
  readonly mockSecret?: Uint8Array;
  /** Server nonce (tests). */
  readonly serverNonce?: string;
  /**
   * Over TLS: the `tls-server-end-point` data of the certificate the client was shown
   * (`tlsServerEndPoint()`); SCRAM-SHA-256-PLUS is then offered first, as Postgres does.
   */
  readonly channelBinding?: Uint8Array;
}

/** Which method to ask a client for: cleartext (over TLS, or loopback) or SCRAM-SHA-256(-PLUS). */
export type ServerAuthRequest = { readonly method: "password" } | ({ readonly method: "scram" } & RequestScram);

/** What the connection knows when a method starts. */
export interface ServerAuthContext {
  /** The user name from the StartupMessage (the mock SCRAM verifier is derived from it). */
  readonly user: string;
  readonly tls: boolean;
}

/** The startup machine's state while a method waits for the client's next message. */
export type ServerAuthWait = "password" | "saslInitial" | "saslResponse";

/** What a method makes of one client message. */
export type ServerAuthStep =
  /** Another round: send these bytes and wait (in `waitingFor`) for the client's next message. */
  | { readonly type: "write"; readonly bytes: Uint8Array }
  /** A cleartext password: the caller verifies it. */
  | { readonly type: "password"; readonly password: string }
  /** Proven; `serverFinal` goes out (as AuthenticationSASLFinal) before AuthenticationOk. */
  | { readonly type: "authenticated"; readonly method: ScramMethod; readonly verifier: number; readonly serverFinal: Uint8Array }
  | { readonly type: "authenticationFailed"; readonly method: ScramMethod; readonly reason: "invalid_proof" | "doomed" };

export interface ServerAuthenticator {
  /** The Authentication* request that opens the exchange. */
  readonly request: Uint8Array;
  /** What the exchange waits for next. */
  readonly waitingFor: ServerAuthWait;
  /** One client authentication message ('p', its body). Malformed: throws `PROTOCOL_VIOLATION`. */
  answer(body: Uint8Array): ServerAuthStep;
}

/** The one place a server-side method is chosen. */
export function serverAuthenticator(request: ServerAuthRequest, context: ServerAuthContext): ServerAuthenticator {
  switch (request.method) {
    case "password":
      return new CleartextPassword();
    case "scram":
      return new ScramExchange(request, context);
    default:
      return unknownMethod(request);
  }
}

function unknownMethod(request: never): never {
  throw new PostgresProtocolError("INVALID_STATE", `unknown authentication method ${JSON.stringify(request)}`);
}

/** AuthenticationCleartextPassword: one PasswordMessage, handed to the caller. */
class CleartextPassword implements ServerAuthenticator {
  readonly request = encodeAuthentication({ type: "AuthenticationCleartextPassword" });
  readonly waitingFor = "password";

  answer(body: Uint8Array): ServerAuthStep {
    return { type: "password", password: decodePasswordMessage(body).password };
  }
}

/** AuthenticationSASL: SASLInitialResponse → SASLContinue, SASLResponse → a verdict (scram-server.ts). */
class ScramExchange implements ServerAuthenticator {
  readonly request: Uint8Array;
  waitingFor: ServerAuthWait = "saslInitial";
  private readonly scram: ScramServer;

  constructor(request: RequestScram, context: ServerAuthContext) {
    if (request.channelBinding !== undefined && !context.tls) {
      throw new PostgresProtocolError("INVALID_STATE", "requestScram() with channel binding on a connection without TLS");
    }
    const given = request.verifiers ?? (request.verifier ? [request.verifier] : []);
    const [first, ...rest] = given;
    this.scram = new ScramServer(first ? [first, ...rest] : scramMockVerifier(context.user, request.mockSecret ?? randomBytes(32)), {
      doomed: first === undefined,
      ...(request.serverNonce === undefined ? {} : { serverNonce: request.serverNonce }),
      ...(request.channelBinding === undefined ? {} : { channelBinding: request.channelBinding }),
    });
    this.request = encodeAuthentication({ type: "AuthenticationSASL", mechanisms: this.scram.mechanisms });
  }

  answer(body: Uint8Array): ServerAuthStep {
    if (this.waitingFor === "saslInitial") {
      const { mechanism, data } = decodeSASLInitialResponse(body);
      const serverFirst = this.scram.clientFirst(mechanism, data);
      this.waitingFor = "saslResponse";
      return { type: "write", bytes: encodeAuthentication({ type: "AuthenticationSASLContinue", data: serverFirst }) };
    }
    const { data } = decodeSASLResponse(body);
    const method: ScramMethod = this.scram.mechanism === SCRAM_SHA_256_PLUS ? "scram-sha-256-plus" : "scram-sha-256";
    const result = this.scram.clientFinal(data);
    if (!result.ok) return { type: "authenticationFailed", method, reason: result.reason };
    return { type: "authenticated", method, verifier: result.verifier, serverFinal: result.serverFinal };
  }
}

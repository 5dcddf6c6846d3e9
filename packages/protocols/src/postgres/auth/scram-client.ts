/**
 * SCRAM-SHA-256, client side: the connector authenticating to a real server.
 *
 *   clientFirst()            → SASLInitialResponse data "n,,n=,r=<c-nonce>"
 *   serverFirst(SASLContinue) → SASLResponse data "c=biws,r=<nonce>,p=<proof>"
 *   serverFinal(SASLFinal)    → checks the server's signature; throws AUTH_FAILED if wrong
 *
 * The server-signature check proves the server knows the verifier, so a server that skips it
 * (AuthenticationOk before SASLFinal) must be refused by the caller — `ServerConnection` does.
 * No channel binding: the gs2 flag is "n".
 */
import { encodeUtf8 } from "../bytes.js";
import { PostgresProtocolError, violation } from "../errors.js";
import { saltedPasswords } from "./salted-password-cache.js";
import {
  SCRAM_SHA_256,
  constantTimeEqual,
  decodeBase64Strict,
  escapeSaslName,
  hmacSha256,
  isPrintableNonce,
  parseScramAttributes,
  scramNonce,
  sha256,
  xorBytes,
} from "./scram.js";

export interface ScramClientOptions {
  readonly password: string;
  /** Sent in `n=`; Postgres ignores it and libpq sends "". */
  readonly username?: string;
  /** Client nonce; random by default (tests inject one). */
  readonly nonce?: string;
  /**
   * Refuse a server-first-message asking for more PBKDF2 iterations than this, so a hostile
   * server cannot make the connector spin. Default 1,000,000 (Postgres' default is 4096).
   */
  readonly maxIterations?: number;
}

type State =
  | { readonly step: "initial" }
  | { readonly step: "first-sent"; readonly clientFirstBare: string; readonly nonce: string }
  | { readonly step: "final-sent"; readonly expectedSignature: Uint8Array }
  | { readonly step: "verified" };

const GS2_HEADER = "n,,";

export class ScramClient {
  readonly mechanism = SCRAM_SHA_256;
  private state: State = { step: "initial" };

  constructor(private readonly options: ScramClientOptions) {}

  /** True once the server's signature has been verified. */
  get verified(): boolean {
    return this.state.step === "verified";
  }

  clientFirst(): Uint8Array {
    if (this.state.step !== "initial") throw new PostgresProtocolError("INVALID_STATE", "SCRAM: client-first already sent");
    const nonce = this.options.nonce ?? scramNonce();
    const clientFirstBare = `n=${escapeSaslName(this.options.username ?? "")},r=${nonce}`;
    this.state = { step: "first-sent", clientFirstBare, nonce };
    return encodeUtf8(GS2_HEADER + clientFirstBare);
  }

  serverFirst(data: Uint8Array): Uint8Array {
    const state = this.state;
    if (state.step !== "first-sent") throw violation("SCRAM: unexpected SASLContinue");
    const serverFirst = Buffer.from(data).toString("utf8");
    const attrs = parseScramAttributes(serverFirst, "server-first-message");
    if (attrs[0]?.[0] === "m") throw violation("SCRAM: server requires an unsupported mandatory extension");
    const [r, s, i] = attrs;
    if (r?.[0] !== "r" || s?.[0] !== "s" || i?.[0] !== "i") throw violation("malformed SCRAM message (server-first-message)");
    const nonce = r[1];
    if (!nonce.startsWith(state.nonce) || nonce.length === state.nonce.length || !isPrintableNonce(nonce)) {
      throw violation("SCRAM: invalid server nonce");
    }
    const salt = decodeBase64Strict(s[1], "salt");
    if (!/^[1-9][0-9]{0,9}$/.test(i[1])) throw violation("malformed SCRAM message (iteration count)");
    const iterations = Number(i[1]);
    const max = this.options.maxIterations ?? 1_000_000;
    if (iterations > max) {
      throw new PostgresProtocolError("AUTH_FAILED", `SCRAM: server asks for ${iterations} iterations, above the limit ${max}`, {
        context: { iterations, max },
      });
    }

    const salted = saltedPasswords.get(this.options.password, salt, iterations);
    const clientKey = hmacSha256(salted, "Client Key");
    const storedKey = sha256(clientKey);
    const serverKey = hmacSha256(salted, "Server Key");
    const withoutProof = `c=${Buffer.from(GS2_HEADER).toString("base64")},r=${nonce}`;
    const authMessage = `${state.clientFirstBare},${serverFirst},${withoutProof}`;
    const proof = xorBytes(clientKey, hmacSha256(storedKey, authMessage));
    this.state = { step: "final-sent", expectedSignature: hmacSha256(serverKey, authMessage) };
    return encodeUtf8(`${withoutProof},p=${Buffer.from(proof).toString("base64")}`);
  }

  serverFinal(data: Uint8Array): void {
    const state = this.state;
    if (state.step !== "final-sent") throw violation("SCRAM: unexpected SASLFinal");
    const text = Buffer.from(data).toString("utf8");
    const attrs = parseScramAttributes(text, "server-final-message");
    const first = attrs[0];
    if (first?.[0] === "e") {
      throw new PostgresProtocolError("AUTH_FAILED", `SCRAM: server reported error "${first[1]}"`, { context: { error: first[1] } });
    }
    if (first?.[0] !== "v") throw violation("malformed SCRAM message (server-final-message)");
    const signature = decodeBase64Strict(first[1], "server signature");
    if (!constantTimeEqual(signature, state.expectedSignature)) {
      throw new PostgresProtocolError("AUTH_FAILED", "SCRAM: the server's signature is invalid (it does not know the password)");
    }
    this.state = { step: "verified" };
  }
}

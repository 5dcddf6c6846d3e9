/**
 * SCRAM-SHA-256, server side: verifies a client against a stored `ScramVerifier`.
 *
 *   client  SASLInitialResponse  "n,,n=,r=<c-nonce>"                  → clientFirst()
 *   server  SASLContinue         "r=<c-nonce><s-nonce>,s=<salt>,i=<n>" ←
 *   client  SASLResponse         "c=biws,r=<nonce>,p=<proof>"          → clientFinal()
 *   server  SASLFinal            "v=<server signature>"                ← when ok
 *
 * SCRAM-SHA-256-PLUS: given the connection's `tls-server-end-point` binding data (over TLS),
 * both `SCRAM-SHA-256-PLUS` and `SCRAM-SHA-256` are advertised, as Postgres does; a client that
 * picks PLUS sends `p=tls-server-end-point` and proves, in `c=`, that it saw the same server
 * certificate. A client that says `y` (it supports binding but thinks we do not) is then refused
 * as a downgrade (RFC 5802 §6). Without binding data only `SCRAM-SHA-256` is advertised, `p=`
 * is refused and `y` accepted, as it is true.
 * Malformed messages throw `PROTOCOL_VIOLATION` (the server answers 08P01 and closes); a wrong
 * password is a result, `{ ok: false }`, answered with 28P01.
 */
import { encodeUtf8 } from "../bytes.js";
import { PostgresProtocolError, violation } from "../errors.js";
import type { ScramVerifier } from "./scram.js";
import { TLS_SERVER_END_POINT } from "./channel-binding.js";
import {
  SCRAM_SHA_256,
  constantTimeEqual,
  decodeBase64Strict,
  hmacSha256,
  isPrintableNonce,
  parseScramAttributes,
  scramNonce,
  sha256,
  xorBytes,
} from "./scram.js";

export type ScramServerResult =
  /** `verifier`: the index of the verifier the proof matched. */
  | { readonly ok: true; readonly serverFinal: Uint8Array; readonly verifier: number }
  | { readonly ok: false; readonly reason: "invalid_proof" | "doomed" };

export interface ScramServerOptions {
  /** Fail at the end whatever the proof (an unknown user verified against a mock verifier). */
  readonly doomed?: boolean;
  /** The server's nonce part; random by default (tests inject one). */
  readonly serverNonce?: string;
  /**
   * The connection's `tls-server-end-point` data (channel-binding.ts): offer SCRAM-SHA-256-PLUS
   * beside SCRAM-SHA-256. Only over TLS.
   */
  readonly channelBinding?: Uint8Array;
}

export const SCRAM_SHA_256_PLUS = "SCRAM-SHA-256-PLUS";

type State =
  | { readonly step: "initial" }
  | {
      readonly step: "continue";
      readonly gs2Header: string;
      readonly clientFirstBare: string;
      readonly serverFirst: string;
      readonly nonce: string;
      /** What the client's `c=` must decode to: the gs2 header, plus the binding data under PLUS. */
      readonly expectedBinding: Uint8Array;
      readonly mechanism: string;
    }
  | { readonly step: "done" };

/**
 * Several verifiers may be given (one user's several passwords, e.g. access keys being
 * rotated): the first one's salt and iteration count are announced, and the proof is checked
 * against each verifier that shares them — the client's proof reveals ClientKey for whichever
 * StoredKey it was computed against.
 */
export class ScramServer {
  private state: State = { step: "initial" };
  private readonly verifiers: readonly ScramVerifier[];

  constructor(
    verifiers: ScramVerifier | readonly [ScramVerifier, ...ScramVerifier[]],
    private readonly options: ScramServerOptions = {},
  ) {
    this.verifiers = Array.isArray(verifiers) ? verifiers : [verifiers as ScramVerifier];
  }

  /** The mechanisms to list in AuthenticationSASL, most preferred first. */
  get mechanisms(): readonly string[] {
    return this.options.channelBinding === undefined ? [SCRAM_SHA_256] : [SCRAM_SHA_256_PLUS, SCRAM_SHA_256];
  }

  /** The mechanism the client chose (after clientFirst). */
  get mechanism(): string | undefined {
    return this.state.step === "continue" ? this.state.mechanism : undefined;
  }

  private get announced(): ScramVerifier {
    return this.verifiers[0]!;
  }

  /** Handle the SASLInitialResponse; returns the server-first-message for AuthenticationSASLContinue. */
  clientFirst(mechanism: string, data: Uint8Array | null): Uint8Array {
    if (this.state.step !== "initial") throw new PostgresProtocolError("INVALID_STATE", "SCRAM: client-first already handled");
    const binding = this.options.channelBinding;
    if (!this.mechanisms.includes(mechanism)) {
      throw violation("client selected an invalid SASL authentication mechanism", { mechanism });
    }
    if (data === null) throw violation("malformed SCRAM message (empty client-first-message)");
    const text = Buffer.from(data).toString("utf8");

    // gs2-header = gs2-cbind-flag "," [ authzid ] ","; gs2-cbind-flag = "p=" cb-name / "n" / "y"
    const flagEnd = text.indexOf(",");
    if (flagEnd < 0) throw violation("malformed SCRAM message (gs2 header)");
    const flag = text.slice(0, flagEnd);
    if (mechanism === SCRAM_SHA_256_PLUS) {
      if (flag !== `p=${TLS_SERVER_END_POINT}`) {
        throw violation(flag.startsWith("p=") ? "unsupported SCRAM channel-binding type" : "malformed SCRAM message (channel binding expected with SCRAM-SHA-256-PLUS)", { flag: flag.slice(0, 32) });
      }
    } else if (flag.startsWith("p=")) {
      throw violation("malformed SCRAM message (channel binding requested but SCRAM-SHA-256-PLUS was not selected)");
    } else if (flag === "y") {
      if (binding !== undefined) throw violation("SCRAM channel binding negotiation error (the client supports channel binding but thinks the server does not; this server does)");
    } else if (flag !== "n") throw violation("malformed SCRAM message (gs2 header)");
    const authzEnd = text.indexOf(",", flagEnd + 1);
    if (authzEnd < 0) throw violation("malformed SCRAM message (gs2 header)");
    if (authzEnd !== flagEnd + 1) throw violation("client uses authorization identity, but it is not supported");
    const gs2Header = text.slice(0, authzEnd + 1);
    const clientFirstBare = text.slice(authzEnd + 1);
    const expectedBinding = mechanism === SCRAM_SHA_256_PLUS ? Buffer.concat([Buffer.from(gs2Header, "utf8"), binding!]) : Buffer.from(gs2Header, "utf8");

    const attrs = parseScramAttributes(clientFirstBare, "client-first-message");
    if (attrs[0]?.[0] === "m") throw violation("malformed SCRAM message (mandatory extension not supported)");
    // The user name is ignored, as Postgres does: the user is the StartupMessage's.
    if (attrs[0]?.[0] !== "n" || attrs[1]?.[0] !== "r") throw violation("malformed SCRAM message (client-first-message)");
    const clientNonce = attrs[1][1];
    if (!isPrintableNonce(clientNonce)) throw violation("malformed SCRAM message (nonce)");

    const nonce = clientNonce + (this.options.serverNonce ?? scramNonce());
    const { salt, iterations } = this.announced;
    const serverFirst = `r=${nonce},s=${Buffer.from(salt).toString("base64")},i=${iterations}`;
    this.state = { step: "continue", gs2Header, clientFirstBare, serverFirst, nonce, expectedBinding, mechanism };
    return encodeUtf8(serverFirst);
  }

  /** Handle the SASLResponse; when ok, returns the server-final-message for AuthenticationSASLFinal. */
  clientFinal(data: Uint8Array): ScramServerResult {
    const state = this.state;
    if (state.step !== "continue") throw new PostgresProtocolError("INVALID_STATE", "SCRAM: client-final out of order");
    this.state = { step: "done" };
    const text = Buffer.from(data).toString("utf8");
    const proofAt = text.lastIndexOf(",p=");
    if (proofAt < 0) throw violation("malformed SCRAM message (missing proof)");
    const withoutProof = text.slice(0, proofAt);
    const attrs = parseScramAttributes(withoutProof, "client-final-message");
    if (attrs[0]?.[0] !== "c" || attrs[1]?.[0] !== "r") throw violation("malformed SCRAM message (client-final-message)");
    // c= is base64(gs2 header [+ binding data]); under PLUS a different server certificate seen
    // by the client (a man in the middle) shows here.
    const channelBinding = decodeBase64Strict(attrs[0][1], "channel binding");
    if (!constantTimeEqual(channelBinding, state.expectedBinding)) throw violation("SCRAM channel binding check failed");
    if (attrs[1][1] !== state.nonce) throw violation("SCRAM nonce mismatch");
    const proof = decodeBase64Strict(text.slice(proofAt + 3), "proof");
    if (proof.byteLength !== 32) throw violation("malformed SCRAM message (invalid proof length)");

    const authMessage = `${state.clientFirstBare},${state.serverFirst},${withoutProof}`;
    const { salt, iterations } = this.announced;
    let matched = -1;
    // Every candidate is checked (no early exit), so the time taken does not say which matched.
    for (const [i, verifier] of this.verifiers.entries()) {
      if (verifier.iterations !== iterations || !constantTimeEqual(verifier.salt, salt)) continue;
      const clientKey = xorBytes(proof, hmacSha256(verifier.storedKey, authMessage));
      if (constantTimeEqual(sha256(clientKey), verifier.storedKey) && matched < 0) matched = i;
    }
    if (this.options.doomed === true) return { ok: false, reason: "doomed" };
    if (matched < 0) return { ok: false, reason: "invalid_proof" };
    const serverSignature = hmacSha256(this.verifiers[matched]!.serverKey, authMessage);
    return { ok: true, serverFinal: encodeUtf8(`v=${Buffer.from(serverSignature).toString("base64")}`), verifier: matched };
  }
}

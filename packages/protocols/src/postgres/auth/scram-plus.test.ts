import { describe, expect, it } from "vitest";
import { PostgresProtocolError } from "../errors.js";
import { hmacSha256, saltedPassword, scramVerifier, sha256, xorBytes } from "./scram.js";
import { SCRAM_SHA_256_PLUS, ScramServer } from "./scram-server.js";

// SCRAM-SHA-256-PLUS with tls-server-end-point, driven by hand-built client messages (RFC 5802
// §3, §6–7; the binding data is what libpq and pg compute from the server certificate).

const PASSWORD = "correct horse";
const verifier = scramVerifier(PASSWORD, { iterations: 4096 });
const binding = sha256(new TextEncoder().encode("the certificate the client saw"));
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString("base64");

function violationOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    if (error instanceof PostgresProtocolError) return error.message;
    throw error;
  }
  return undefined;
}

/** A client's exchange: gs2 flag, mechanism, and the binding data it puts in c=. */
function exchange(server: ScramServer, options: { mechanism: string; flag: string; clientBinding?: Uint8Array; password?: string }) {
  const gs2 = `${options.flag},,`;
  const clientFirstBare = "n=,r=clientnonce123";
  const serverFirst = new TextDecoder().decode(server.clientFirst(options.mechanism, utf8(gs2 + clientFirstBare)));
  const attrs = Object.fromEntries(serverFirst.split(",").map((p) => [p[0], p.slice(2)]));
  const cbind = options.clientBinding === undefined ? utf8(gs2) : Buffer.concat([utf8(gs2), options.clientBinding]);
  const withoutProof = `c=${b64(cbind)},r=${attrs.r}`;
  const salted = saltedPassword(options.password ?? PASSWORD, Buffer.from(attrs.s!, "base64"), Number(attrs.i));
  const clientKey = hmacSha256(salted, "Client Key");
  const authMessage = `${clientFirstBare},${serverFirst},${withoutProof}`;
  const proof = xorBytes(clientKey, hmacSha256(sha256(clientKey), authMessage));
  return server.clientFinal(utf8(`${withoutProof},p=${b64(proof)}`));
}

describe("SCRAM-SHA-256-PLUS", () => {
  it("is offered first beside SCRAM-SHA-256 when the server has binding data, and not otherwise", () => {
    expect(new ScramServer(verifier, { channelBinding: binding }).mechanisms).toEqual(["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]);
    expect(new ScramServer(verifier).mechanisms).toEqual(["SCRAM-SHA-256"]);
  });

  it("authenticates a client that saw the same certificate", () => {
    const server = new ScramServer(verifier, { channelBinding: binding });
    const result = exchange(server, { mechanism: SCRAM_SHA_256_PLUS, flag: "p=tls-server-end-point", clientBinding: binding });
    expect(result.ok).toBe(true);
    expect(server.mechanism).toBeUndefined(); // done
  });

  it("refuses a client that saw another certificate (a man in the middle), even with the right password", () => {
    const server = new ScramServer(verifier, { channelBinding: binding });
    const other = sha256(utf8("the middleman's certificate"));
    expect(violationOf(() => exchange(server, { mechanism: SCRAM_SHA_256_PLUS, flag: "p=tls-server-end-point", clientBinding: other }))).toBe("SCRAM channel binding check failed");
  });

  it("still fails a wrong password under PLUS", () => {
    const server = new ScramServer(verifier, { channelBinding: binding });
    expect(exchange(server, { mechanism: SCRAM_SHA_256_PLUS, flag: "p=tls-server-end-point", clientBinding: binding, password: "wrong" })).toEqual({ ok: false, reason: "invalid_proof" });
  });

  it("lets a client without binding use SCRAM-SHA-256 (n), and refuses y as a downgrade when PLUS was offered", () => {
    expect(exchange(new ScramServer(verifier, { channelBinding: binding }), { mechanism: "SCRAM-SHA-256", flag: "n" }).ok).toBe(true);
    expect(violationOf(() => exchange(new ScramServer(verifier, { channelBinding: binding }), { mechanism: "SCRAM-SHA-256", flag: "y" }))).toMatch(/channel binding negotiation error/);
    // Without binding data, y is the truth and accepted.
    expect(exchange(new ScramServer(verifier), { mechanism: "SCRAM-SHA-256", flag: "y" }).ok).toBe(true);
  });

  it("refuses PLUS when not offered, other binding types, and PLUS without p=", () => {
    expect(violationOf(() => exchange(new ScramServer(verifier), { mechanism: SCRAM_SHA_256_PLUS, flag: "p=tls-server-end-point", clientBinding: binding }))).toMatch(/invalid SASL authentication mechanism/);
    expect(violationOf(() => exchange(new ScramServer(verifier, { channelBinding: binding }), { mechanism: SCRAM_SHA_256_PLUS, flag: "p=tls-unique", clientBinding: binding }))).toMatch(/unsupported SCRAM channel-binding type/);
    expect(violationOf(() => exchange(new ScramServer(verifier, { channelBinding: binding }), { mechanism: SCRAM_SHA_256_PLUS, flag: "n" }))).toMatch(/channel binding expected/);
  });
});

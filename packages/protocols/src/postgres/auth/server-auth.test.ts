// Server-side methods behind one interface: each exchange driven message by message, as the
// startup machine drives it, against the real client side of the same method.
import { describe, expect, it } from "vitest";
import { decodeAuthentication } from "../backend-messages.js";
import { PostgresProtocolError } from "../errors.js";
import { encodePasswordMessage, encodeSASLInitialResponse, encodeSASLResponse } from "../frontend-messages.js";
import { scramVerifier } from "./scram.js";
import { ScramClient } from "./scram-client.js";
import { serverAuthenticator, type ServerAuthRequest } from "./server-auth.js";

/** A message's body: past its type byte and length. */
const body = (message: Uint8Array) => message.subarray(5);

describe("serverAuthenticator", () => {
  it("password: asks for cleartext and hands the PasswordMessage's password to the caller", () => {
    const auth = serverAuthenticator({ method: "password" }, { user: "agent", tls: true });
    expect(decodeAuthentication(body(auth.request))).toEqual({ type: "AuthenticationCleartextPassword" });
    expect(auth.waitingFor).toBe("password");
    expect(auth.answer(body(encodePasswordMessage({ password: "gk_secret" })))).toEqual({ type: "password", password: "gk_secret" });
  });

  it("scram: a right password is proven over SASLContinue/SASLResponse, with the final signature the client checks", () => {
    const verifier = scramVerifier("right", { iterations: 4096 });
    const auth = serverAuthenticator({ method: "scram", verifier }, { user: "agent", tls: false });
    expect(decodeAuthentication(body(auth.request))).toEqual({ type: "AuthenticationSASL", mechanisms: ["SCRAM-SHA-256"] });
    const client = new ScramClient({ password: "right" });
    expect(auth.waitingFor).toBe("saslInitial");
    const cont = auth.answer(body(encodeSASLInitialResponse({ mechanism: "SCRAM-SHA-256", data: client.clientFirst() })));
    expect(cont.type).toBe("write");
    expect(auth.waitingFor).toBe("saslResponse");
    const serverFirst = decodeAuthentication(body((cont as { bytes: Uint8Array }).bytes));
    if (serverFirst.type !== "AuthenticationSASLContinue") throw new Error(`unexpected ${serverFirst.type}`);
    const verdict = auth.answer(body(encodeSASLResponse({ data: client.serverFirst(serverFirst.data) })));
    expect(verdict).toMatchObject({ type: "authenticated", method: "scram-sha-256", verifier: 0 });
    client.serverFinal((verdict as { serverFinal: Uint8Array }).serverFinal);
    expect(client.verified).toBe(true);
  });

  it("scram: an unknown identity runs against a mock verifier and fails as doomed; a wrong password as invalid_proof", () => {
    for (const [request, reason] of [
      [{ method: "scram" }, "doomed"],
      [{ method: "scram", verifier: scramVerifier("right", { iterations: 4096 }) }, "invalid_proof"],
    ] as [ServerAuthRequest, string][]) {
      const auth = serverAuthenticator(request, { user: "agent", tls: false });
      const client = new ScramClient({ password: "wrong" });
      const cont = auth.answer(body(encodeSASLInitialResponse({ mechanism: "SCRAM-SHA-256", data: client.clientFirst() })));
      const serverFirst = decodeAuthentication(body((cont as { bytes: Uint8Array }).bytes));
      if (serverFirst.type !== "AuthenticationSASLContinue") throw new Error(`unexpected ${serverFirst.type}`);
      expect(auth.answer(body(encodeSASLResponse({ data: client.serverFirst(serverFirst.data) })))).toEqual({ type: "authenticationFailed", method: "scram-sha-256", reason });
    }
  });

  it("scram with channel binding: offers PLUS first over TLS, and is refused without TLS", () => {
    const binding = new Uint8Array(32).fill(7);
    const auth = serverAuthenticator({ method: "scram", channelBinding: binding }, { user: "agent", tls: true });
    expect(decodeAuthentication(body(auth.request))).toEqual({ type: "AuthenticationSASL", mechanisms: ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"] });
    expect(() => serverAuthenticator({ method: "scram", channelBinding: binding }, { user: "agent", tls: false })).toThrow(PostgresProtocolError);
  });

  it("a method it does not know is an error, not a silent fallback", () => {
    expect(() => serverAuthenticator({ method: "md5" } as unknown as ServerAuthRequest, { user: "agent", tls: true })).toThrow(/unknown authentication method/);
  });
});

import { describe, expect, it } from "vitest";
import { PostgresProtocolError } from "../errors.js";
import {
  formatScramVerifier,
  parseScramVerifier,
  scramMockVerifier,
  scramVerifier,
} from "./scram.js";
import { ScramClient } from "./scram-client.js";
import { ScramServer } from "./scram-server.js";

const text = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);
const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);

/** RFC 7677 §3 test vector (SCRAM-SHA-256, user "user", password "pencil"). */
const RFC7677 = {
  password: "pencil",
  clientNonce: "rOprNGfwEbeRWgbNEkqO",
  serverNonce: "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
  clientFirst: "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
  serverFirst: "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
  clientFinal: "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
  serverFinal: "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
  salt: Buffer.from("W22ZaJ0SNY7soEsUEjb6gQ==", "base64"),
};

function errorCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    if (error instanceof PostgresProtocolError) return error.code;
    throw error;
  }
  return undefined;
}

describe("SCRAM-SHA-256 against the RFC 7677 test vector", () => {
  it("client side produces the vector's messages and accepts its server signature", () => {
    const client = new ScramClient({ password: RFC7677.password, username: "user", nonce: RFC7677.clientNonce });
    expect(text(client.clientFirst())).toBe(RFC7677.clientFirst);
    expect(text(client.serverFirst(utf8(RFC7677.serverFirst)))).toBe(RFC7677.clientFinal);
    client.serverFinal(utf8(RFC7677.serverFinal));
    expect(client.verified).toBe(true);
  });

  it("server side produces the vector's messages from a verifier", () => {
    const verifier = scramVerifier(RFC7677.password, { salt: RFC7677.salt, iterations: 4096 });
    const server = new ScramServer(verifier, { serverNonce: RFC7677.serverNonce });
    expect(text(server.clientFirst("SCRAM-SHA-256", utf8(RFC7677.clientFirst)))).toBe(RFC7677.serverFirst);
    const result = server.clientFinal(utf8(RFC7677.clientFinal));
    expect(result.ok && text(result.serverFinal)).toBe(RFC7677.serverFinal);
  });

  it("client refuses a forged server signature", () => {
    const client = new ScramClient({ password: RFC7677.password, username: "user", nonce: RFC7677.clientNonce });
    client.clientFirst();
    client.serverFirst(utf8(RFC7677.serverFirst));
    expect(errorCode(() => client.serverFinal(utf8("v=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")))).toBe("AUTH_FAILED");
    expect(client.verified).toBe(false);
  });
});

describe("SCRAM-SHA-256 client against server", () => {
  function exchange(clientPassword: string, verifier = scramVerifier("correct horse", { iterations: 4096 }), doomed = false) {
    const client = new ScramClient({ password: clientPassword });
    const server = new ScramServer(verifier, { doomed });
    const serverFirst = server.clientFirst("SCRAM-SHA-256", client.clientFirst());
    const result = server.clientFinal(client.serverFirst(serverFirst));
    if (result.ok) client.serverFinal(result.serverFinal);
    return { result, client };
  }

  it("succeeds with the right password, both sides verified", () => {
    const { result, client } = exchange("correct horse");
    expect(result.ok).toBe(true);
    expect(client.verified).toBe(true);
  });

  it("fails with a wrong password", () => {
    expect(exchange("correct horse!").result).toEqual({ ok: false, reason: "invalid_proof" });
  });

  it("a doomed exchange (unknown user) fails even with a matching proof", () => {
    const verifier = scramVerifier("x");
    expect(exchange("x", verifier, true).result).toEqual({ ok: false, reason: "doomed" });
  });

  it("a mock verifier is stable per user and secret", () => {
    const secret = new Uint8Array(32).fill(1);
    expect(scramMockVerifier("ghost", secret)).toEqual(scramMockVerifier("ghost", secret));
    expect(scramMockVerifier("ghost", secret).salt).not.toEqual(scramMockVerifier("other", secret).salt);
    expect(exchange("anything", scramMockVerifier("ghost", secret)).result.ok).toBe(false);
  });

  it("several verifiers sharing a salt (one user's keys): any of the passwords succeeds, and says which", () => {
    const salt = new Uint8Array(16).fill(7);
    const verifiers = [scramVerifier("old key", { salt, iterations: 1024 }), scramVerifier("new key", { salt, iterations: 1024 })] as const;
    for (const [i, password] of ["old key", "new key"].entries()) {
      const client = new ScramClient({ password });
      const server = new ScramServer(verifiers);
      const result = server.clientFinal(client.serverFirst(server.clientFirst("SCRAM-SHA-256", client.clientFirst())));
      expect(result).toMatchObject({ ok: true, verifier: i });
      if (result.ok) client.serverFinal(result.serverFinal);
      expect(client.verified).toBe(true);
    }
    const wrong = new ScramClient({ password: "no key" });
    const server = new ScramServer(verifiers);
    expect(server.clientFinal(wrong.serverFirst(server.clientFirst("SCRAM-SHA-256", wrong.clientFirst())))).toEqual({ ok: false, reason: "invalid_proof" });
  });

  it("a verifier with another salt than the announced one can never match", () => {
    const verifiers = [scramVerifier("a", { iterations: 1024 }), scramVerifier("b", { iterations: 1024 })] as const;
    const client = new ScramClient({ password: "b" });
    const server = new ScramServer(verifiers);
    expect(server.clientFinal(client.serverFirst(server.clientFirst("SCRAM-SHA-256", client.clientFirst()))).ok).toBe(false);
  });

  it("normalizes non-ASCII passwords with SASLprep on both sides", () => {
    const verifier = scramVerifier("I\u00adX", { iterations: 1024 });
    expect(exchange("IX", verifier).result.ok).toBe(true);
  });
});

describe("SCRAM server refuses malformed or unsupported client messages", () => {
  const verifier = scramVerifier("pw", { iterations: 1024 });
  const first = (data: string, mechanism = "SCRAM-SHA-256") =>
    errorCode(() => new ScramServer(verifier).clientFirst(mechanism, utf8(data)));

  it("rejects other mechanisms, channel binding, authzid, extensions and bad nonces", () => {
    expect(first("n,,n=,r=abc", "SCRAM-SHA-256-PLUS")).toBe("PROTOCOL_VIOLATION");
    expect(first("p=tls-server-end-point,,n=,r=abc")).toBe("PROTOCOL_VIOLATION");
    expect(first("n,a=admin,n=,r=abc")).toBe("PROTOCOL_VIOLATION");
    expect(first("n,,m=ext,n=,r=abc")).toBe("PROTOCOL_VIOLATION");
    expect(first("n,,n=,r=")).toBe("PROTOCOL_VIOLATION");
    expect(first("garbage")).toBe("PROTOCOL_VIOLATION");
    expect(first("y,,n=,r=abc")).toBeUndefined(); // client supports binding, we don't offer it: fine
  });

  it("rejects a final message with the wrong nonce or channel binding", () => {
    const client = new ScramClient({ password: "pw" });
    const server = new ScramServer(verifier);
    const serverFirst = server.clientFirst("SCRAM-SHA-256", client.clientFirst());
    const final = text(client.serverFirst(serverFirst));
    expect(errorCode(() => server.clientFinal(utf8(final.replace("r=", "r=x"))))).toBe("PROTOCOL_VIOLATION");
    const server2 = new ScramServer(verifier);
    const client2 = new ScramClient({ password: "pw" });
    server2.clientFirst("SCRAM-SHA-256", client2.clientFirst());
    expect(errorCode(() => server2.clientFinal(utf8("c=eSws,r=zzz,p=AAAA")))).toBe("PROTOCOL_VIOLATION");
  });

  it("client refuses a server nonce that does not extend its own, and absurd iteration counts", () => {
    const client = new ScramClient({ password: "pw", nonce: "abc" });
    client.clientFirst();
    expect(errorCode(() => client.serverFirst(utf8("r=xyz123,s=c2FsdA==,i=4096")))).toBe("PROTOCOL_VIOLATION");
    const greedy = new ScramClient({ password: "pw", nonce: "abc", maxIterations: 10_000 });
    greedy.clientFirst();
    expect(errorCode(() => greedy.serverFirst(utf8("r=abc123,s=c2FsdA==,i=2000000000")))).toBe("AUTH_FAILED");
  });
});

describe("SCRAM verifier text form", () => {
  it("round-trips the pg_authid format", () => {
    const v = scramVerifier("pw", { iterations: 4096 });
    const formatted = formatScramVerifier(v);
    expect(formatted).toMatch(/^SCRAM-SHA-256\$4096:[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+:[A-Za-z0-9+/=]+$/);
    const parsed = parseScramVerifier(formatted);
    expect(Buffer.from(parsed.storedKey)).toEqual(Buffer.from(v.storedKey));
    expect(Buffer.from(parsed.serverKey)).toEqual(Buffer.from(v.serverKey));
    expect(Buffer.from(parsed.salt)).toEqual(Buffer.from(v.salt));
    expect(() => parseScramVerifier("md5abc")).toThrow(RangeError);
  });
});

/**
 * SCRAM channel binding type `tls-server-end-point` (RFC 5929 §4.1), the one Postgres and libpq
 * use for SCRAM-SHA-256-PLUS: the binding data is a hash of the server's certificate (DER),
 * with the hash function of the certificate's signature algorithm — except MD5 and SHA-1,
 * which are replaced by SHA-256. Both ends compute it from the certificate the TLS handshake
 * showed, so a man in the middle with a certificate of its own cannot relay the exchange.
 *
 *   Certificate ::= SEQUENCE { tbsCertificate SEQUENCE, signatureAlgorithm AlgorithmIdentifier, signatureValue BIT STRING }
 *   AlgorithmIdentifier ::= SEQUENCE { algorithm OBJECT IDENTIFIER, parameters ANY OPTIONAL }
 *
 * Pure: node:crypto for hashing only.
 */
import { createHash } from "node:crypto";

export const TLS_SERVER_END_POINT = "tls-server-end-point";

/** Signature algorithm OID → the hash RFC 5929 binds with (MD5 and SHA-1 become SHA-256). */
const HASH_OF_SIGNATURE: Readonly<Record<string, string>> = {
  "1.2.840.113549.1.1.4": "sha256", // md5WithRSAEncryption
  "1.2.840.113549.1.1.5": "sha256", // sha1WithRSAEncryption
  "1.2.840.113549.1.1.14": "sha224", // sha224WithRSAEncryption
  "1.2.840.113549.1.1.11": "sha256", // sha256WithRSAEncryption
  "1.2.840.113549.1.1.12": "sha384", // sha384WithRSAEncryption
  "1.2.840.113549.1.1.13": "sha512", // sha512WithRSAEncryption
  "1.2.840.10045.4.1": "sha256", // ecdsa-with-SHA1
  "1.2.840.10045.4.3.1": "sha224", // ecdsa-with-SHA224
  "1.2.840.10045.4.3.2": "sha256", // ecdsa-with-SHA256
  "1.2.840.10045.4.3.3": "sha384", // ecdsa-with-SHA384
  "1.2.840.10045.4.3.4": "sha512", // ecdsa-with-SHA512
};

/**
 * The `tls-server-end-point` binding data of a certificate, or undefined when its signature
 * algorithm names no single hash (Ed25519, RSASSA-PSS...) or the DER cannot be read: such a
 * server cannot offer SCRAM-SHA-256-PLUS (Postgres cannot either).
 */
export function tlsServerEndPoint(certificateDer: Uint8Array): Uint8Array | undefined {
  const oid = signatureAlgorithmOid(certificateDer);
  const hash = oid === undefined ? undefined : HASH_OF_SIGNATURE[oid];
  if (hash === undefined) return undefined;
  return new Uint8Array(createHash(hash).update(certificateDer).digest());
}

/** The outer signatureAlgorithm's OID, dotted; undefined for anything not shaped like a certificate. */
export function signatureAlgorithmOid(der: Uint8Array): string | undefined {
  const certificate = readTlv(der, 0, 0x30);
  if (!certificate) return undefined;
  const tbs = readTlv(der, certificate.valueAt, 0x30);
  if (!tbs) return undefined;
  const algorithm = readTlv(der, tbs.end, 0x30);
  if (!algorithm) return undefined;
  const oid = readTlv(der, algorithm.valueAt, 0x06);
  if (!oid || oid.end > algorithm.end) return undefined;
  return decodeOid(der.subarray(oid.valueAt, oid.end));
}

/** One DER tag-length-value at `at` with tag `tag`; lengths over 4 bytes or past the end are refused. */
function readTlv(der: Uint8Array, at: number, tag: number): { valueAt: number; end: number } | undefined {
  if (der[at] !== tag) return undefined;
  let i = at + 1;
  const first = der[i++];
  if (first === undefined) return undefined;
  let length = first;
  if (first >= 0x80) {
    const bytes = first & 0x7f;
    if (bytes === 0 || bytes > 4) return undefined;
    length = 0;
    for (let k = 0; k < bytes; k++) {
      const b = der[i++];
      if (b === undefined) return undefined;
      length = length * 256 + b;
    }
  }
  const end = i + length;
  if (end > der.byteLength) return undefined;
  return { valueAt: i, end };
}

function decodeOid(bytes: Uint8Array): string | undefined {
  if (bytes.byteLength === 0) return undefined;
  const first = bytes[0]!;
  const parts = [Math.min(2, Math.floor(first / 40)), first - Math.min(2, Math.floor(first / 40)) * 40];
  let value = 0;
  for (let i = 1; i < bytes.byteLength; i++) {
    const b = bytes[i]!;
    value = value * 128 + (b & 0x7f);
    if (b < 0x80) {
      parts.push(value);
      value = 0;
    }
  }
  return parts.join(".");
}

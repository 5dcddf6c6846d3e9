import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generate } from "selfsigned";

/**
 * A test OpenID provider's HTTPS identity: a fresh directory, a self-signed certificate for localhost
 * and 127.0.0.1 (its own CA), and that certificate as a file for the gateway's `identity.oidc.ca`.
 */
export async function issuerTls(prefix: string, commonName: string): Promise<{ dir: string; cert: string; key: string; caFile: string }> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const tls = await generate([{ name: "commonName", value: commonName }], {
    keyType: "ec",
    curve: "P-256",
    algorithm: "sha256",
    notBeforeDate: new Date(Date.now() - 60_000),
    notAfterDate: new Date(Date.now() + 86_400_000),
    extensions: [
      { name: "basicConstraints", cA: true },
      { name: "keyUsage", digitalSignature: true, keyCertSign: true },
      { name: "extKeyUsage", serverAuth: true },
      { name: "subjectAltName", altNames: [{ type: 2, value: "localhost" }, { type: 7, ip: "127.0.0.1" }] },
    ],
  });
  const caFile = join(dir, "issuer-ca.pem");
  writeFileSync(caFile, tls.cert);
  return { dir, cert: tls.cert, key: tls.private, caFile };
}

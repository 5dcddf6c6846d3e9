import { mkdirSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { createSecureContext, type SecureContext } from "node:tls";
import { generate } from "selfsigned";
import { GatewayError } from "./errors.js";

export interface TlsMaterial {
  cert: string;
  key: string;
  /** Where it came from, for the start-up log. */
  source: "configured" | "generated" | "data-dir";
  context: SecureContext;
}

const CERT_FILE = "gateway.crt";
const KEY_FILE = "gateway.key";

/**
 * The configured certificate, else the self-signed one kept in
 * <dataDir>/tls (generated at first start, valid ten years, for this host's
 * name, localhost and the loopback addresses). Clients that need to verify
 * it (sslmode=verify-full) can be given <dataDir>/tls/gateway.crt as root.
 */
export async function loadTlsMaterial(dataDir: string, configured: { cert: string; key: string } | undefined, key: string): Promise<TlsMaterial> {
  if (configured) {
    try {
      const material = { cert: readFileSync(configured.cert, "utf8"), key: readFileSync(configured.key, "utf8") };
      return { ...material, source: "configured", context: createSecureContext(material) };
    } catch (cause) {
      throw new GatewayError("CONFIG_INVALID", `${key}: cannot load the certificate or key: ${(cause as Error).message}`, { cause });
    }
  }
  const dir = join(dataDir, "tls");
  const certPath = join(dir, CERT_FILE);
  const keyPath = join(dir, KEY_FILE);
  if (existsSync(certPath) && existsSync(keyPath)) {
    const material = { cert: readFileSync(certPath, "utf8"), key: readFileSync(keyPath, "utf8") };
    return { ...material, source: "data-dir", context: createSecureContext(material) };
  }
  const now = new Date();
  const generated = await generate([{ name: "commonName", value: "gatehouse gateway" }], {
    keyType: "ec",
    curve: "P-256",
    algorithm: "sha256",
    notBeforeDate: new Date(now.getTime() - 60_000),
    notAfterDate: new Date(now.getTime() + 10 * 365 * 86_400_000),
    extensions: [
      { name: "basicConstraints", cA: false },
      { name: "keyUsage", digitalSignature: true, keyEncipherment: true },
      { name: "extKeyUsage", serverAuth: true },
      {
        name: "subjectAltName",
        altNames: [
          { type: 2, value: "localhost" },
          { type: 2, value: hostname() },
          { type: 7, ip: "127.0.0.1" },
          { type: 7, ip: "::1" },
        ],
      },
    ],
  });
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileSync(keyPath, generated.private, { mode: 0o600 });
  writeFileSync(certPath, generated.cert, { mode: 0o644 });
  const material = { cert: generated.cert, key: generated.private };
  return { ...material, source: "generated", context: createSecureContext(material) };
}

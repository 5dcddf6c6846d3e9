import { X509Certificate } from "node:crypto";
import { tlsServerEndPoint } from "@gatehouse/protocols/postgres";

/**
 * The `tls-server-end-point` binding data of the listener's certificate (the first in `pem`,
 * the one clients are shown), for SCRAM-SHA-256-PLUS; undefined when its signature algorithm
 * has no single hash (Ed25519, RSASSA-PSS): then only SCRAM-SHA-256 is offered over TLS.
 */
export function certificateBinding(pem: string): Uint8Array | undefined {
  return tlsServerEndPoint(new Uint8Array(new X509Certificate(pem).raw));
}

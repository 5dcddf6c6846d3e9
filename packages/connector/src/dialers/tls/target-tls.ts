import { readFileSync } from "node:fs";
import type { Socket } from "node:net";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import type { ReadFailures } from "@gatehouse/protocols/drive";
import { ConnectorError } from "../../errors.js";

// TLS between the connector and a resource, for dialers whose protocol upgrades a plain socket
// in the middle of its handshake (Postgres after 'S', MySQL after the SSLRequest).

/** `target.options.tls`: libpq's sslmode names, used for every protocol's connector-to-resource TLS. */
export type TargetTls = "disable" | "prefer" | "require" | "verify-full";

export function parseTargetTls(value: string | undefined, where: string): TargetTls {
  const mode = value ?? "prefer";
  if (mode === "disable" || mode === "prefer" || mode === "require" || mode === "verify-full") return mode;
  throw new ConnectorError("PROTOCOL_UNSUPPORTED", `${where}: unknown tls mode "${mode}"`);
}

/**
 * TLS over `socket` under the handshake's deadline. Only `verify-full` checks the certificate
 * (against `ca` when given): `prefer`/`require` mean encryption, as in libpq.
 */
export async function upgradeTargetTls(
  socket: Socket | TLSSocket,
  host: string,
  mode: TargetTls,
  ca: string | undefined,
  deadline: AbortSignal,
  failures: ReadFailures,
  where: string,
): Promise<TLSSocket> {
  const secure = tlsConnect({
    socket,
    servername: isIpLiteral(host) ? undefined : host,
    rejectUnauthorized: mode === "verify-full",
    ...(mode === "verify-full" && ca ? { ca: readFileSync(ca) } : {}),
  });
  try {
    await new Promise<void>((resolve, reject) => {
      const onAbort = () => reject(failures.timedOut());
      if (deadline.aborted) return onAbort();
      deadline.addEventListener("abort", onAbort, { once: true });
      secure.once("secureConnect", () => (deadline.removeEventListener("abort", onAbort), resolve()));
      secure.once("error", (err) => {
        deadline.removeEventListener("abort", onAbort);
        reject(new ConnectorError("TARGET_UNREACHABLE", `${where}: TLS with the server failed: ${err.message}`, { cause: err }));
      });
    });
  } catch (error) {
    secure.destroy();
    throw error;
  }
  return secure;
}

function isIpLiteral(host: string): boolean {
  return /^[\d.]+$/.test(host) || host.includes(":");
}

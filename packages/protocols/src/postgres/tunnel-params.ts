/**
 * What the gateway and the connector tell each other about a Postgres stream, in the
 * tunnel's string maps (OpenStream.params and StreamOpened.params). One module owns the key
 * names so the two sides cannot drift apart.
 *
 *   gateway → connector (OpenStream.params)
 *     startup.<name>   a client startup parameter to forward (application_name, options…)
 *     cancel.pid       present on a cancel stream: the real server's process id …
 *     cancel.key       … and its secret key (hex); the connector sends a CancelRequest and ends
 *   connector → gateway (StreamOpened.params)
 *     server.<name>    a ParameterStatus the server reported, in order
 *     backend.pid      the server's BackendKeyData …
 *     backend.key      … (hex), kept at the gateway for cancels, never shown to the client
 *     auth             how the connector authenticated (scram-sha-256, md5, password, trust)
 *     tls              "on" or "off" between connector and server
 */
import type { BackendKey } from "./client-startup.js";
import type { StartupParams } from "./frontend-messages.js";

export interface PostgresDialRequest {
  readonly startup: StartupParams;
  readonly cancel?: BackendKey;
}

export interface PostgresDialResult {
  readonly parameters: Readonly<Record<string, string>>;
  readonly backendKey: BackendKey | undefined;
  readonly auth: string;
  readonly tls: boolean;
}

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString("hex");
const unhex = (text: string): Uint8Array => new Uint8Array(Buffer.from(text, "hex"));

export function encodeDialRequest(request: PostgresDialRequest): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.startup)) out[`startup.${name}`] = value;
  if (request.cancel) {
    out["cancel.pid"] = String(request.cancel.processId);
    out["cancel.key"] = hex(request.cancel.secretKey);
  }
  return out;
}

export function decodeDialRequest(params: Readonly<Record<string, string>>): PostgresDialRequest {
  const startup: Record<string, string> = {};
  for (const [key, value] of Object.entries(params)) {
    if (key.startsWith("startup.")) startup[key.slice(8)] = value;
  }
  const pid = params["cancel.pid"];
  const key = params["cancel.key"];
  if (pid !== undefined && key !== undefined && /^\d+$/.test(pid) && /^([0-9a-f]{2})+$/.test(key)) {
    return { startup, cancel: { processId: Number(pid), secretKey: unhex(key) } };
  }
  return { startup };
}

export function encodeDialResult(result: PostgresDialResult): Record<string, string> {
  const out: Record<string, string> = { auth: result.auth, tls: result.tls ? "on" : "off" };
  for (const [name, value] of Object.entries(result.parameters)) out[`server.${name}`] = value;
  if (result.backendKey) {
    out["backend.pid"] = String(result.backendKey.processId);
    out["backend.key"] = hex(result.backendKey.secretKey);
  }
  return out;
}

export function decodeDialResult(params: Readonly<Record<string, string>>): PostgresDialResult {
  const parameters: Record<string, string> = {};
  for (const [key, value] of Object.entries(params)) {
    if (key.startsWith("server.")) parameters[key.slice(7)] = value;
  }
  const pid = params["backend.pid"];
  const key = params["backend.key"];
  const backendKey = pid !== undefined && key !== undefined ? { processId: Number(pid), secretKey: unhex(key) } : undefined;
  return { parameters, backendKey, auth: params.auth ?? "unknown", tls: params.tls === "on" };
}

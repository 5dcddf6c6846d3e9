import { Duplex } from "node:stream";
import type { OpenStream } from "@gatehouse/proto";
import { KUBE_PARAMS, KUBE_TARGET_OPTIONS } from "@gatehouse/protocols/kubernetes";
import { ConnectorError } from "../../errors.js";
import { formatTarget } from "../tcp/tcp-dialer.js";
import type { DialContext, DialResult, Dialer } from "../types.js";
import { ClusterAccessCache } from "./cluster-access.js";
import { RequestSocket } from "./request-socket.js";

// The connector's side of Kubernetes (protocols/src/kubernetes/README.md is the contract). The
// gateway terminates kubectl's HTTPS; here each request stream becomes one HTTPS request to the
// API server at the connection's target, made as the connector (its kubeconfig or service
// account) and, unless the connection says otherwise, impersonating the gateway's identity.

/** Headers a client may never send the cluster: its own credential, any impersonation, and what each connection sets for itself. */
const NEVER_RELAYED = /^(authorization|impersonate-.*|host|connection|keep-alive|proxy-.*|te|trailer|transfer-encoding)$/i;

export function createKubernetesDialer(clusters: ClusterAccessCache = new ClusterAccessCache()): Dialer {
  return (open, ctx) => (open.params?.[KUBE_PARAMS.method] === undefined ? dialSession(open, clusters) : dialRequest(open, ctx, clusters));
}

/** A session's main stream: checks the kubeconfig can be used, then stands for the session (no bytes). */
async function dialSession(open: OpenStream, clusters: ClusterAccessCache): Promise<DialResult> {
  const options = open.target?.options ?? {};
  const access = await clusters.get(options[KUBE_TARGET_OPTIONS.kubeconfig], options[KUBE_TARGET_OPTIONS.context]);
  await access.credentialHeaders();
  return { socket: idleStream(), params: { "k8s.credentials": access.source } };
}

async function dialRequest(open: OpenStream, ctx: DialContext, clusters: ClusterAccessCache): Promise<DialResult> {
  const host = open.target?.host ?? "";
  const port = open.target?.port || 443;
  const where = formatTarget(host, port);
  const params = open.params ?? {};
  const options = open.target?.options ?? {};
  const access = await clusters.get(options[KUBE_TARGET_OPTIONS.kubeconfig], options[KUBE_TARGET_OPTIONS.context]);
  const method = params[KUBE_PARAMS.method]!;
  const path = params[KUBE_PARAMS.path] ?? "/";
  if (!/^[A-Z]{1,16}$/.test(method) || !path.startsWith("/")) throw new ConnectorError("PROTOCOL_ERROR", `malformed kubernetes request: ${JSON.stringify(method)} ${JSON.stringify(path.slice(0, 64))}`);
  const clientHeaders = parsePairs(params[KUBE_PARAMS.headers]);
  const upgrade = clientHeaders.some(([name]) => name.toLowerCase() === "upgrade");
  const headers: string[] = ["Host", access.hostHeader];
  for (const [name, value] of clientHeaders) {
    if (NEVER_RELAYED.test(name) && !(upgrade && /^connection$/i.test(name))) continue;
    headers.push(name, value);
  }
  for (const [name, value] of Object.entries(await access.credentialHeaders())) {
    if (options[KUBE_TARGET_OPTIONS.impersonate] !== "false" && /^impersonate-/i.test(name)) continue;
    for (const v of Array.isArray(value) ? value : [value]) headers.push(name, v);
  }
  if (options[KUBE_TARGET_OPTIONS.impersonate] !== "false") {
    const user = params[KUBE_PARAMS.user] ?? "";
    if (user === "") throw new ConnectorError("PROTOCOL_ERROR", "kubernetes request names no identity to impersonate");
    headers.push("Impersonate-User", user);
    for (const group of parseStrings(params[KUBE_PARAMS.groups])) headers.push("Impersonate-Group", group);
  }
  ctx.logger.debug({ method, path: path.slice(0, 256), target: where }, "kubernetes request");
  const socket = new RequestSocket({ host, port, method, path: access.pathPrefix + path, headers, upgrade, agent: access.agent, serverName: access.serverName, connectTimeoutMs: ctx.timeoutMs, where });
  ctx.signal.addEventListener("abort", () => socket.destroy(), { once: true });
  return { socket, quiet: true };
}

/** A stream that carries nothing and ends when the gateway ends it. */
function idleStream(): Duplex {
  return new Duplex({
    allowHalfOpen: false,
    read() {},
    write(_chunk, _encoding, callback) {
      callback(new ConnectorError("PROTOCOL_ERROR", "the kubernetes session stream carries no bytes; each request has a stream of its own"));
    },
    final(callback) {
      this.push(null);
      callback();
    },
  });
}

function parsePairs(json: string | undefined): [string, string][] {
  try {
    const parsed = JSON.parse(json ?? "[]") as unknown;
    if (Array.isArray(parsed) && parsed.every((p) => Array.isArray(p) && p.length === 2 && typeof p[0] === "string" && typeof p[1] === "string")) return parsed as [string, string][];
  } catch {
    // fall through
  }
  throw new ConnectorError("PROTOCOL_ERROR", "kubernetes request headers are not [name, value] pairs");
}

function parseStrings(json: string | undefined): string[] {
  try {
    const parsed = JSON.parse(json ?? "[]") as unknown;
    return Array.isArray(parsed) ? parsed.filter((g): g is string => typeof g === "string") : [];
  } catch {
    return [];
  }
}


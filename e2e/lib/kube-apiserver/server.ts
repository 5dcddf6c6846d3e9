// A small Kubernetes API server for tests, faithful where kubectl looks: discovery, Table
// output, CRUD with patches, watches, logs (-f), exec (with or without a TTY), port-forward (SPDY,
// plain or tunneled in a WebSocket), SelfSubjectAccessReview, bearer tokens, impersonation and
// RBAC. It records every request it serves so tests see what kubectl sends.
import { createServer, type Server } from "node:https";
import type { IncomingMessage, ServerResponse } from "node:http";
import { apiVersionOf, findResourceType, type ResourceType } from "./catalog.js";
import { allowed, authenticate, type EffectiveUser, type RbacRule, type TokenUser } from "./auth.js";
import * as discovery from "./discovery.js";
import { fieldMatcher, labelMatcher } from "./selectors.js";
import { jsonPatch, mergePatch, strategicMergePatch } from "./patch.js";
import * as status from "./status.js";
import { table, wantsTable } from "./table.js";
import { selfSignedCertificate } from "./tls.js";
import { decodeSelfSubjectAccessReview } from "./protobuf.js";
import { acceptWebSocket } from "./websocket.js";
import { EXEC_PROTOCOLS, runExec } from "./exec.js";
import { PORTFORWARD_PROTOCOL, PORTFORWARD_TUNNEL_PROTOCOLS, portForwardSession, type PortForwardTarget } from "./portforward.js";
import type { Duplex } from "node:stream";

type Obj = Record<string, any>;

export interface RecordedRequest {
  method: string;
  /** Path and query exactly as sent. */
  url: string;
  headers: Record<string, string | string[] | undefined>;
  status?: number;
  /** Port-forward upgrades: the SPDY streams kubectl opened on the connection, with their headers. */
  streams?: { id: number; headers: Record<string, string[]> }[];
}

export interface KubeApiServerOptions {
  tokens: Record<string, TokenUser>;
  rbac: RbacRule[];
  /** Objects present at start (namespaces default, kube-system are always there). */
  objects?: Obj[];
  /** A pod's log lines ("namespace/name" → lines); `logs -f` then adds a line every `followEveryMs`. */
  logs?: Record<string, string[]>;
  followEveryMs?: number;
  /**
   * Pod ports `kubectl port-forward` reaches: "namespace/name" → { pod port: TCP port on 127.0.0.1 }.
   * A port not listed is a port nothing listens on in the pod (connection refused, as the kubelet reports it).
   */
  portForward?: Record<string, Record<number, number>>;
}

export interface KubeApiServer {
  url: string;
  caPem: string;
  requests: RecordedRequest[];
  /** A kubeconfig (YAML) for a token, with the CA inline. */
  kubeconfig(token: string, namespace?: string): string;
  close(): Promise<void>;
}

interface Watcher {
  type: ResourceType;
  namespace: string;
  matches: (o: Obj) => boolean;
  table: boolean;
  send: (event: string, o: Obj) => void;
}

const storeKey = (t: ResourceType, ns: string, name: string) => `${t.group}/${t.resource}/${ns}/${name}`;

export async function startKubeApiServer(options: KubeApiServerOptions): Promise<KubeApiServer> {
  const { cert, key } = selfSignedCertificate();
  const requests: RecordedRequest[] = [];
  const objects = new Map<string, Obj>();
  const watchers = new Set<Watcher>();
  let revision = 100;
  const followEveryMs = options.followEveryMs ?? 100;

  function put(t: ResourceType, o: Obj, event: "ADDED" | "MODIFIED"): Obj {
    // Like the API server, a Secret's stringData is write-only: folded into data as base64.
    if (t.resource === "secrets" && o.stringData) {
      o.data = { ...o.data, ...Object.fromEntries(Object.entries(o.stringData as Record<string, string>).map(([k, v]) => [k, Buffer.from(v).toString("base64")])) };
      delete o.stringData;
    }
    o.metadata.resourceVersion = String(++revision);
    objects.set(storeKey(t, o.metadata.namespace ?? "", o.metadata.name), o);
    for (const w of watchers) if (w.type === t && (w.namespace === "" || w.namespace === o.metadata.namespace) && w.matches(o)) w.send(event, o);
    return o;
  }
  function remove(t: ResourceType, o: Obj): void {
    objects.delete(storeKey(t, o.metadata.namespace ?? "", o.metadata.name));
    o.metadata.resourceVersion = String(++revision);
    for (const w of watchers) if (w.type === t && (w.namespace === "" || w.namespace === o.metadata.namespace) && w.matches(o)) w.send("DELETED", o);
  }
  function created(t: ResourceType, body: Obj, ns: string): Obj {
    const o: Obj = { ...structuredClone(body), kind: t.kind, apiVersion: apiVersionOf(t) };
    o.metadata = { ...o.metadata, ...(t.namespaced ? { namespace: ns } : {}), uid: crypto.randomUUID(), creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, "Z") };
    if (t.resource === "pods") o.status = { phase: "Running", containerStatuses: (o.spec?.containers ?? []).map((c: Obj) => ({ name: c.name, ready: true, restartCount: 0 })) };
    if (t.resource === "namespaces") o.status = { phase: "Active" };
    if (t.resource === "secrets") o.type ??= "Opaque";
    return o;
  }
  const nsType = findResourceType("", "v1", "namespaces")!;
  for (const name of ["default", "kube-system"]) put(nsType, created(nsType, { metadata: { name } }, ""), "ADDED");
  for (const o of options.objects ?? []) {
    const [group, version] = String(o.apiVersion).includes("/") ? String(o.apiVersion).split("/") : ["", String(o.apiVersion)];
    const t = findResourceType(group!, version!, String(o.kind).toLowerCase() + "s")!;
    put(t, created(t, o, o.metadata?.namespace ?? "default"), "ADDED");
  }

  const server: Server = createServer({ cert, key }, (req, res) => {
    const entry: RecordedRequest = { method: req.method ?? "", url: req.url ?? "", headers: { ...req.headers } };
    requests.push(entry);
    res.on("finish", () => (entry.status = res.statusCode));
    readBody(req)
      .then((body) => serve(req, res, body.toString("utf8"), body))
      .catch((e: unknown) => send(res, 500, status.failure(500, "InternalError", String(e))));
  });

  function send(res: ServerResponse, code: number, body: unknown, contentType = "application/json"): void {
    if (res.headersSent) return void res.end();
    const text = JSON.stringify(body);
    res.writeHead(code, { "content-type": contentType, "content-length": Buffer.byteLength(text) });
    res.end(text);
  }
  const sendStatus = (res: ServerResponse, s: status.StatusBody) => send(res, s.code, s);

  function serve(req: IncomingMessage, res: ServerResponse, body: string, bytes: Buffer): void {
    const url = new URL(req.url ?? "/", "https://k8s.invalid");
    const who = authenticate(req.headers, options.tokens);
    if (!who.ok) {
      if (who.status === 401) return sendStatus(res, status.unauthorized());
      return sendStatus(res, status.forbidden({ user: who.user, verb: "impersonate", resource: who.impersonated.resource, group: "", name: who.impersonated.name }));
    }
    const parts = url.pathname.split("/").filter(Boolean);
    const accept = req.headers.accept;
    const address = `127.0.0.1:${(server.address() as { port: number }).port}`;
    if (url.pathname === "/version") return send(res, 200, discovery.version());
    if (url.pathname === "/api") return discovery.wantsAggregated(accept) ? send(res, 200, discovery.aggregatedCore(), discovery.AGGREGATED_CONTENT_TYPE) : send(res, 200, discovery.legacyCore(address));
    if (url.pathname === "/apis") return discovery.wantsAggregated(accept) ? send(res, 200, discovery.aggregatedGroups(), discovery.AGGREGATED_CONTENT_TYPE) : send(res, 200, discovery.legacyGroups());
    if (url.pathname === "/openapi/v3") return send(res, 200, discovery.openapiRoot());
    if (url.pathname.startsWith("/openapi/v3/")) return sendOr404(res, discovery.openapiGroupVersion(url.pathname.slice("/openapi/v3/".length)));
    if (parts[0] === "api" && parts.length === 2) return sendOr404(res, discovery.resourceList("", parts[1]!));
    if (parts[0] === "apis" && parts.length === 3) return sendOr404(res, discovery.resourceList(parts[1]!, parts[2]!));
    if (parts[0] !== "api" && parts[0] !== "apis") return sendStatus(res, status.failure(404, "NotFound", "the server could not find the requested resource"));

    // /api/v1/... or /apis/GROUP/VERSION/..., then [namespaces/NS/]RESOURCE[/NAME[/SUB]]
    const group = parts[0] === "api" ? "" : parts[1]!;
    const rest = parts.slice(parts[0] === "api" ? 2 : 3);
    const ver = parts[0] === "api" ? parts[1]! : parts[2]!;
    let ns = "";
    if (rest[0] === "namespaces" && rest.length > 2 && rest[2] !== "status" && rest[2] !== "finalize") {
      ns = rest[1]!;
      rest.splice(0, 2);
    }
    const [resource, name, sub] = rest;
    const t = findResourceType(group, ver, resource ?? "");
    if (!t) return sendStatus(res, status.failure(404, "NotFound", "the server could not find the requested resource"));
    const watch = ["1", "true"].includes(url.searchParams.get("watch") ?? "");
    const method = req.method ?? "GET";
    const verb = method === "GET" ? (name ? "get" : watch ? "watch" : "list") : method === "POST" ? "create" : method === "PUT" ? "update" : method === "PATCH" ? "patch" : method === "DELETE" ? (name ? "delete" : "deletecollection") : "";
    const rbacResource = sub ? `${resource}/${sub}` : resource!;
    const rbacVerb = sub === "exec" || sub === "attach" || sub === "portforward" ? "create" : verb;
    // Every authenticated user may ask what it may do (system:basic-user in a real cluster).
    const selfReview = t.resource === "selfsubjectaccessreviews" && verb === "create";
    if (!selfReview && !allowed(options.rbac, who.who, rbacVerb, rbacResource, t.namespaced ? ns : undefined)) {
      return sendStatus(res, status.forbidden({ user: who.who.user, verb: rbacVerb, resource: resource!, subresource: sub, group, namespace: ns || undefined, name }));
    }
    if (t.resource === "selfsubjectaccessreviews") return accessReview(res, who.who, String(req.headers["content-type"] ?? ""), bytes);
    if (t.namespaced && ns !== "" && !objects.has(storeKey(nsType, "", ns)) && verb === "create") return sendStatus(res, status.notFound("namespaces", "", ns));
    const existing = name ? objects.get(storeKey(t, ns, name)) : undefined;
    const dryRun = url.searchParams.has("dryRun");

    if (sub === "log") {
      if (!existing) return sendStatus(res, status.notFound(t.resource, t.group, name!));
      return streamLog(req, res, `${ns}/${name}`, url.searchParams.get("follow") === "true");
    }
    if (sub !== undefined && sub !== "status" && sub !== "scale") return sendStatus(res, status.badRequest(`subresource ${sub} needs an upgrade`));

    switch (verb) {
      case "get":
        if (!existing) return sendStatus(res, status.notFound(t.resource, t.group, name!));
        return send(res, 200, wantsTable(accept) ? table(t, [existing], existing.metadata.resourceVersion) : existing);
      case "list":
      case "deletecollection": {
        const selected = select(t, ns, url.searchParams);
        if (verb === "deletecollection" && !dryRun) for (const o of selected) remove(t, o);
        if (wantsTable(accept)) return send(res, 200, table(t, selected, String(revision)));
        return send(res, 200, { kind: `${t.kind}List`, apiVersion: apiVersionOf(t), metadata: { resourceVersion: String(revision) }, items: selected });
      }
      case "watch":
        return streamWatch(req, res, t, ns, url.searchParams, wantsTable(accept));
      case "create": {
        const o = parseJson(body);
        if (!o?.metadata?.name) return sendStatus(res, status.failure(422, "Invalid", `${t.kind} "" is invalid: metadata.name: Required value: name or generateName is required`));
        if (objects.has(storeKey(t, ns, o.metadata.name))) return sendStatus(res, status.alreadyExists(t.resource, t.group, o.metadata.name));
        const made = created(t, o, ns);
        return send(res, 201, dryRun ? made : put(t, made, "ADDED"));
      }
      case "update": {
        const o = parseJson(body);
        if (!existing) return sendStatus(res, status.notFound(t.resource, t.group, name!));
        if (o?.metadata?.resourceVersion && o.metadata.resourceVersion !== existing.metadata.resourceVersion) return sendStatus(res, status.conflict(t.resource, t.group, name!));
        const next = { ...o, kind: t.kind, apiVersion: apiVersionOf(t), metadata: { ...o.metadata, uid: existing.metadata.uid, creationTimestamp: existing.metadata.creationTimestamp, namespace: existing.metadata.namespace } };
        return send(res, 200, dryRun ? next : put(t, next, "MODIFIED"));
      }
      case "patch": {
        const contentType = String(req.headers["content-type"] ?? "").split(";")[0]!;
        const patchBody = parseJson(body);
        if (patchBody === undefined) return sendStatus(res, status.badRequest("the body of the request was in an unknown format"));
        const base = existing ?? (contentType === "application/apply-patch+yaml" ? created(t, { metadata: { name } }, ns) : undefined);
        if (!base) return sendStatus(res, status.notFound(t.resource, t.group, name!));
        let next: Obj;
        try {
          next = contentType === "application/json-patch+json" ? jsonPatch(base, patchBody) as Obj
            : contentType === "application/merge-patch+json" ? mergePatch(base, patchBody) as Obj
            : contentType === "application/strategic-merge-patch+json" || contentType === "application/apply-patch+yaml" ? strategicMergePatch(base, patchBody) as Obj
            : (undefined as never);
        } catch (e) {
          return sendStatus(res, status.failure(422, "Invalid", String((e as Error).message)));
        }
        if (next === undefined) return sendStatus(res, status.failure(415, "UnsupportedMediaType", `the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml, application/strategic-merge-patch+json`));
        next.metadata = { ...next.metadata, uid: base.metadata.uid, creationTimestamp: base.metadata.creationTimestamp, name: base.metadata.name };
        return send(res, existing ? 200 : 201, dryRun ? next : put(t, next, existing ? "MODIFIED" : "ADDED"));
      }
      case "delete":
        if (!existing) return sendStatus(res, status.notFound(t.resource, t.group, name!));
        if (!dryRun) remove(t, existing);
        return send(res, 200, existing);
      default:
        return sendStatus(res, status.methodNotAllowed());
    }
  }

  function sendOr404(res: ServerResponse, doc: unknown): void {
    if (doc === undefined) return sendStatus(res, status.failure(404, "NotFound", "the server could not find the requested resource"));
    send(res, 200, doc);
  }

  function select(t: ResourceType, ns: string, q: URLSearchParams): Obj[] {
    const byLabel = labelMatcher(q.get("labelSelector") ?? undefined);
    const byField = fieldMatcher(q.get("fieldSelector") ?? undefined);
    const prefix = ns === "" ? `${t.group}/${t.resource}/` : `${t.group}/${t.resource}/${ns}/`;
    return [...objects.entries()].filter(([k, o]) => k.startsWith(prefix) && byLabel(o) && byField(o)).map(([, o]) => o).sort((a, b) => `${a.metadata.namespace}/${a.metadata.name}`.localeCompare(`${b.metadata.namespace}/${b.metadata.name}`));
  }

  function accessReview(res: ServerResponse, who: EffectiveUser, contentType: string, body: Buffer): void {
    let review: Obj;
    try {
      review = contentType.startsWith("application/vnd.kubernetes.protobuf") ? decodeSelfSubjectAccessReview(body) : parseJson(body.toString("utf8")) ?? {};
    } catch (e) {
      return sendStatus(res, status.badRequest(String((e as Error).message)));
    }
    const a = review.spec?.resourceAttributes ?? {};
    const resource = a.subresource ? `${a.resource}/${a.subresource}` : String(a.resource ?? "");
    const ok = allowed(options.rbac, who, String(a.verb ?? ""), resource, a.namespace || undefined);
    send(res, 201, { ...review, kind: "SelfSubjectAccessReview", apiVersion: "authorization.k8s.io/v1", metadata: { creationTimestamp: null }, status: { allowed: ok, ...(ok ? { reason: "allowed by the test RBAC table" } : {}) } });
  }

  function streamWatch(req: IncomingMessage, res: ServerResponse, t: ResourceType, ns: string, q: URLSearchParams, asTable: boolean): void {
    res.writeHead(200, { "content-type": "application/json", "transfer-encoding": "chunked" });
    const byLabel = labelMatcher(q.get("labelSelector") ?? undefined);
    const byField = fieldMatcher(q.get("fieldSelector") ?? undefined);
    const w: Watcher = {
      type: t,
      namespace: ns,
      matches: (o) => byLabel(o) && byField(o),
      table: asTable,
      send: (type, o) => res.write(JSON.stringify({ type, object: asTable ? table(t, [o], o.metadata.resourceVersion) : o }) + "\n"),
    };
    // resourceVersion "" or "0": start with the current state, as a real watch does.
    const rv = q.get("resourceVersion");
    if (!rv || rv === "0") for (const o of select(t, ns, q)) w.send("ADDED", o);
    watchers.add(w);
    const timeout = Number(q.get("timeoutSeconds") ?? 0);
    const timer = timeout > 0 ? setTimeout(() => res.end(), timeout * 1000) : undefined;
    const stop = () => {
      watchers.delete(w);
      if (timer) clearTimeout(timer);
    };
    req.socket.on("close", stop);
    res.on("close", stop);
  }

  function streamLog(req: IncomingMessage, res: ServerResponse, pod: string, follow: boolean): void {
    res.writeHead(200, { "content-type": "text/plain", "transfer-encoding": "chunked" });
    const lines = options.logs?.[pod] ?? [];
    // Written as the client reads, in pieces of up to 64 KiB, as the kubelet streams a container's log:
    // a large log is not all buffered at once (and one write per line would cost the server more than the reader).
    let next = 0;
    const pump = () => {
      while (next < lines.length) {
        let piece = "";
        while (next < lines.length && piece.length < 64 * 1024) piece += lines[next++] + "\n";
        if (!res.write(piece)) return void res.once("drain", pump);
      }
      if (follow) followLog();
      else res.end();
    };
    const followLog = () => {
      // A log that grows until the client goes (`logs -f` stopped by Ctrl-C).
      let n = 0;
      const timer = setInterval(() => res.write(`tick ${++n}\n`), followEveryMs);
      const stop = () => clearInterval(timer);
      req.socket.on("close", stop);
      res.on("close", stop);
    };
    pump();
  }

  // Upgrades: exec over WebSocket; port-forward as SPDY/3.1, either tunneled in a WebSocket
  // (subprotocol SPDY/3.1+portforward.k8s.io, what kubectl 1.32 asks first) or after
  // `Upgrade: SPDY/3.1` (its fallback). Anything else is refused with 400, which kubectl reports.
  const upgraded = new Set<Duplex>();
  const forwardTarget = (ns: string, name: string, pod: Obj, entry: RecordedRequest): PortForwardTarget => {
    entry.streams = [];
    return { pod: `${ns}/${name}`, uid: pod.metadata.uid, ports: options.portForward?.[`${ns}/${name}`] ?? {}, onStream: (id, headers) => entry.streams!.push({ id, headers: { ...headers } }) };
  };
  server.on("upgrade", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const entry: RecordedRequest = { method: req.method ?? "", url: req.url ?? "", headers: { ...req.headers } };
    requests.push(entry);
    socket.on("error", () => undefined);
    upgraded.add(socket);
    socket.on("close", () => upgraded.delete(socket));
    const refuse = (s: status.StatusBody) => {
      entry.status = s.code;
      const text = JSON.stringify(s);
      socket.end(`HTTP/1.1 ${s.code} ${s.reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`);
    };
    const who = authenticate(req.headers, options.tokens);
    if (!who.ok) return refuse(who.status === 401 ? status.unauthorized() : status.forbidden({ user: who.user, verb: "impersonate", resource: who.impersonated.resource, group: "", name: who.impersonated.name }));
    const url = new URL(req.url ?? "/", "https://k8s.invalid");
    const m = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/(exec|attach|portforward)$/.exec(url.pathname);
    if (!m) return refuse(status.badRequest("upgrade is only served for pods/exec, pods/attach and pods/portforward"));
    const [, ns, name, sub] = m as unknown as [string, string, string, string];
    if (!allowed(options.rbac, who.who, "create", `pods/${sub}`, ns)) return refuse(status.forbidden({ user: who.who.user, verb: "create", resource: "pods", subresource: sub, group: "", namespace: ns, name }));
    const pod = objects.get(storeKey(findResourceType("", "v1", "pods")!, ns, name));
    if (!pod) return refuse(status.notFound("pods", "", name));
    const upgrade = String(req.headers.upgrade ?? "").toLowerCase();
    if (sub === "portforward" && upgrade === "websocket") {
      const peer = acceptWebSocket(req, socket, head, PORTFORWARD_TUNNEL_PROTOCOLS);
      entry.status = peer ? 101 : 400;
      if (!peer) return;
      const session = portForwardSession({ write: (b) => peer.send(b), end: () => peer.close() }, forwardTarget(ns, name, pod, entry));
      peer.onMessage((b) => session.receive(b));
      peer.onClose(() => session.closed());
      return;
    }
    if (sub === "portforward" && upgrade === "spdy/3.1") {
      // httpstream.Handshake: the client names the protocols it speaks in X-Stream-Protocol-Version.
      const offered = ([] as string[]).concat(req.headers["x-stream-protocol-version"] ?? []).flatMap((v) => v.split(",")).map((v) => v.trim()).filter(Boolean);
      if (!offered.includes(PORTFORWARD_PROTOCOL)) {
        entry.status = 403;
        const text = offered.length === 0 ? "unable to upgrade: X-Stream-Protocol-Version is required\n" : `unable to upgrade: unable to negotiate protocol: client supports [${offered.join(" ")}], server accepts [${PORTFORWARD_PROTOCOL}]\n`;
        return void socket.end(`HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain; charset=utf-8\r\nX-Accepted-Stream-Protocol-Versions: ${PORTFORWARD_PROTOCOL}\r\nX-Content-Type-Options: nosniff\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`);
      }
      entry.status = 101;
      socket.write(`HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: ${PORTFORWARD_PROTOCOL}\r\nDate: ${new Date().toUTCString()}\r\n\r\n`);
      const session = portForwardSession({ write: (b) => void socket.write(b), end: () => void socket.end() }, forwardTarget(ns, name, pod, entry));
      socket.on("data", (b: Buffer) => session.receive(b));
      socket.on("close", () => session.closed());
      if (head.length > 0) session.receive(head);
      return;
    }
    if (sub !== "exec") return refuse(status.badRequest(`${sub} is not served by this test server (upgrade ${String(req.headers.upgrade)}, protocols ${String(req.headers["sec-websocket-protocol"] ?? req.headers["x-stream-protocol-version"])})`));
    const peer = acceptWebSocket(req, socket, head, EXEC_PROTOCOLS);
    entry.status = peer ? 101 : 400;
    if (peer) runExec(peer, url.searchParams);
  });

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as { port: number }).port;
  const url = `https://127.0.0.1:${port}`;
  return {
    url,
    caPem: cert,
    requests,
    kubeconfig: (token, namespace = "default") => [
      "apiVersion: v1",
      "kind: Config",
      "clusters:",
      "- name: test",
      "  cluster:",
      `    server: ${url}`,
      `    certificate-authority-data: ${Buffer.from(cert).toString("base64")}`,
      "users:",
      "- name: test",
      "  user:",
      `    token: ${token}`,
      "contexts:",
      "- name: test",
      "  context:",
      "    cluster: test",
      "    user: test",
      `    namespace: ${namespace}`,
      "current-context: test",
      "",
    ].join("\n"),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        for (const s of upgraded) s.destroy();
        server.close(() => resolve());
      }),
  };
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}

function parseJson(text: string): any {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

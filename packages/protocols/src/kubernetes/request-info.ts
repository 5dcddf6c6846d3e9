// What a Kubernetes API request does, decided from its method, path and query the way the API
// server's own RequestInfoFactory does (k8s.io/apiserver/pkg/endpoints/request/requestinfo.go),
// so the record names the same verb, resource and namespace the cluster's RBAC sees.

/** The record's verb: RequestInfoFactory's verb, with the streaming subresources named for what they do. */
export type RecordVerb =
  | "get" | "list" | "watch" | "create" | "update" | "patch" | "delete" | "deletecollection"
  | "exec" | "attach" | "portforward" | "proxy" | "logs";

export interface KubeRequestInfo {
  isResourceRequest: boolean;
  /** For non-resource URLs (/version, /apis, /healthz): the lower-case HTTP method. */
  verb: RecordVerb | string;
  /** The verb RBAC checks (RequestInfoFactory's own: `create` for exec over POST, `get` for logs). */
  kubernetesVerb: string;
  path: string;
  apiPrefix: string;
  apiGroup: string;
  apiVersion: string;
  resource: string;
  subresource: string;
  namespace: string;
  name: string;
  labelSelector?: string;
  fieldSelector?: string;
  /** `dryRun=All` on a mutating request. */
  dryRun: boolean;
  /** exec/attach: the `command` query values; logs: `container`, `follow`. */
  command?: string[];
  container?: string;
  follow?: boolean;
}

export interface KubeRequest {
  method: string;
  /** Path and query as sent, e.g. `/api/v1/namespaces/prod/pods?labelSelector=app%3Dweb`. */
  url: string;
}

const API_PREFIXES = new Set(["api", "apis"]);
const GROUPLESS_PREFIXES = new Set(["api"]);
const SPECIAL_VERBS = new Set(["proxy", "watch"]);
const SPECIAL_VERBS_NO_SUBRESOURCES = new Set(["proxy"]);
const NAMESPACE_SUBRESOURCES = new Set(["status", "finalize"]);

function methodVerb(method: string): string {
  switch (method.toUpperCase()) {
    case "POST": return "create";
    case "GET": case "HEAD": return "get";
    case "PUT": return "update";
    case "PATCH": return "patch";
    case "DELETE": return "delete";
    default: return "";
  }
}

/** Go's strconv.ParseBool, which the query parameter codec uses for `watch`. */
function truthy(value: string | null): boolean {
  return value !== null && ["1", "t", "T", "TRUE", "true", "True"].includes(value);
}

/** `metadata.name=web-1` (or `==`) as the only requirement names the object (RequiresExactMatch). */
function exactName(fieldSelector: string | undefined): string | undefined {
  if (!fieldSelector) return undefined;
  for (const term of fieldSelector.split(",")) {
    const m = /^\s*metadata\.name\s*==?\s*(.*?)\s*$/.exec(term);
    // IsValidPathSegmentName: a name that cannot be a path segment is not taken.
    if (m && m[1] !== "" && m[1] !== "." && m[1] !== ".." && !/[/%]/.test(m[1]!)) return m[1];
  }
  return undefined;
}

/** A malformed escape (`%zz`) stays as sent: the parser never throws on a client's path. */
function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

export function requestInfo(req: KubeRequest): KubeRequestInfo {
  // Split by hand: `new URL("//api/v1/pods", base)` would read "api" as a host.
  const q = req.url.indexOf("?");
  const pathname = q < 0 ? req.url : req.url.slice(0, q);
  const query = new URLSearchParams(q < 0 ? "" : req.url.slice(q + 1));
  const info: KubeRequestInfo = {
    isResourceRequest: false,
    verb: req.method.toLowerCase(),
    kubernetesVerb: req.method.toLowerCase(),
    path: pathname,
    apiPrefix: "",
    apiGroup: "",
    apiVersion: "",
    resource: "",
    subresource: "",
    namespace: "",
    name: "",
    dryRun: query.getAll("dryRun").some((v) => v !== ""),
  };
  const labelSelector = query.get("labelSelector");
  const fieldSelector = query.get("fieldSelector");
  if (labelSelector) info.labelSelector = labelSelector;
  if (fieldSelector) info.fieldSelector = fieldSelector;

  // splitPath: trim slashes, split on "/"; an empty path has no parts.
  const trimmed = pathname.replace(/^\/+|\/+$/g, "");
  let parts = trimmed === "" ? [] : trimmed.split("/").map(decodeSegment);
  if (parts.length < 3 || !API_PREFIXES.has(parts[0]!)) return info;
  const apiPrefix = parts[0]!;
  parts = parts.slice(1);
  let apiGroup = "";
  if (!GROUPLESS_PREFIXES.has(apiPrefix)) {
    if (parts.length < 3) return info; // /apis/apps/v1 is discovery, not a resource
    apiGroup = parts[0]!;
    parts = parts.slice(1);
  }
  const apiVersion = parts[0]!;
  parts = parts.slice(1);

  let verb: string;
  if (SPECIAL_VERBS.has(parts[0]!)) {
    // /api/v1/watch/namespaces/prod/pods: the legacy watch form; kubernetes rejects a bare /watch.
    if (parts.length < 2) return info;
    verb = parts[0]!;
    parts = parts.slice(1);
  } else verb = methodVerb(req.method);

  Object.assign(info, { isResourceRequest: true, apiPrefix, apiGroup, apiVersion });
  if (parts[0] === "namespaces") {
    if (parts.length > 1) {
      info.namespace = parts[1]!;
      // /namespaces/prod/pods → the pods of prod; /namespaces/prod/status → the namespace's status.
      if (parts.length > 2 && !NAMESPACE_SUBRESOURCES.has(parts[2]!)) parts = parts.slice(2);
    }
  }
  if (parts.length >= 3 && !SPECIAL_VERBS_NO_SUBRESOURCES.has(verb)) info.subresource = parts[2]!;
  if (parts.length >= 2) info.name = parts[1]!;
  if (parts.length >= 1) info.resource = parts[0]!;

  if (info.name === "" && verb === "get") {
    verb = truthy(query.get("watch")) ? "watch" : "list";
    const name = exactName(fieldSelector ?? undefined);
    if (name !== undefined) info.name = name;
  }
  if (info.name === "" && verb === "delete") verb = "deletecollection";
  info.kubernetesVerb = verb;
  info.verb = recordVerb(verb, info.subresource);

  if (info.subresource === "exec" || info.subresource === "attach") {
    info.command = query.getAll("command");
  }
  const container = query.get("container");
  if (container) info.container = container;
  if (info.subresource === "log") info.follow = truthy(query.get("follow"));
  return info;
}

function recordVerb(verb: string, subresource: string): string {
  switch (subresource) {
    case "log": return "logs";
    case "exec": return "exec";
    case "attach": return "attach";
    case "portforward": return "portforward";
    case "proxy": return "proxy";
    default: return verb;
  }
}

/** Cluster-scoped kinds kubectl users meet; a list of anything else without a namespace is `-A`. */
const CLUSTER_SCOPED = new Set([
  "namespaces", "nodes", "persistentvolumes", "clusterroles", "clusterrolebindings", "customresourcedefinitions",
  "storageclasses", "priorityclasses", "apiservices", "certificatesigningrequests", "selfsubjectaccessreviews",
  "selfsubjectrulesreviews", "subjectaccessreviews", "tokenreviews", "validatingwebhookconfigurations",
  "mutatingwebhookconfigurations", "ingressclasses", "runtimeclasses", "csidrivers", "csinodes", "volumeattachments",
]);

/** A shell word as sh would read it back: bare when safe, else single-quoted. */
function shellWord(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * The request as a kubectl-like command line for the record: `delete pods/web-1 -n prod`,
 * `exec pods/web-1 -n prod -c app -- sh -c 'echo hi'`, `get deployments.apps -A -l app=web --watch`.
 */
export function commandLine(info: KubeRequestInfo): string {
  if (!info.isResourceRequest) return `${info.verb} --raw ${info.path}`;
  const type = info.apiGroup === "" ? info.resource : `${info.resource}.${info.apiGroup}`;
  const target = info.name === "" ? type : `${type}/${info.name}`;
  const words: string[] = [];
  const streaming = ["logs", "exec", "attach", "portforward", "proxy"].includes(info.verb);
  switch (info.verb) {
    case "list": case "watch": words.push("get", target); break;
    case "update": words.push("replace", target); break;
    case "deletecollection": words.push("delete", target); break;
    case "portforward": words.push("port-forward", target); break;
    default: words.push(info.verb, target);
  }
  if (info.subresource !== "" && !streaming) words.push(`--subresource=${info.subresource}`);
  if (info.namespace !== "" && !(info.resource === "namespaces")) words.push("-n", info.namespace);
  else if (info.namespace === "" && info.name === "" && !CLUSTER_SCOPED.has(info.resource) && ["list", "watch", "deletecollection"].includes(info.verb)) words.push("-A");
  if (info.container) words.push("-c", info.container);
  if (info.labelSelector) words.push("-l", info.labelSelector);
  if (info.fieldSelector) words.push(`--field-selector=${info.fieldSelector}`);
  if (info.verb === "deletecollection" && !info.labelSelector && !info.fieldSelector) words.push("--all");
  if (info.verb === "watch") words.push("--watch");
  if (info.follow) words.push("-f");
  if (info.dryRun) words.push("--dry-run=server");
  const line = words.map(shellWord).join(" ");
  return info.command && info.command.length > 0 ? `${line} -- ${info.command.map(shellWord).join(" ")}` : line;
}

// Kubernetes `Status` bodies: what the API server answers on every error, and what kubectl
// prints ("Error from server (NotFound): pods \"x\" not found").

export interface StatusBody {
  kind: "Status";
  apiVersion: "v1";
  metadata: Record<string, never>;
  status: "Success" | "Failure";
  message?: string;
  reason?: string;
  details?: { name?: string; group?: string; kind?: string; causes?: { reason?: string; message?: string; field?: string }[] };
  code: number;
}

export function failure(code: number, reason: string, message: string, details?: StatusBody["details"]): StatusBody {
  return { kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message, reason, ...(details ? { details } : {}), code };
}

export function success(details?: StatusBody["details"]): StatusBody {
  return { kind: "Status", apiVersion: "v1", metadata: {}, status: "Success", ...(details ? { details } : {}), code: 200 };
}

/** `pods "web-1"` or `pods.apps "web"`: how Kubernetes names a resource in messages. */
function qualified(resource: string, group: string): string {
  return group === "" ? resource : `${resource}.${group}`;
}

export const notFound = (resource: string, group: string, name: string): StatusBody =>
  failure(404, "NotFound", `${qualified(resource, group)} "${name}" not found`, { name, group: group || undefined, kind: resource });

export const alreadyExists = (resource: string, group: string, name: string): StatusBody =>
  failure(409, "AlreadyExists", `${qualified(resource, group)} "${name}" already exists`, { name, group: group || undefined, kind: resource });

export const conflict = (resource: string, group: string, name: string): StatusBody =>
  failure(409, "Conflict", `Operation cannot be fulfilled on ${qualified(resource, group)} "${name}": the object has been modified; please apply your changes to the latest version and try again`, { name, group: group || undefined, kind: resource });

export const unauthorized = (): StatusBody => failure(401, "Unauthorized", "Unauthorized");

export const badRequest = (message: string): StatusBody => failure(400, "BadRequest", message);

export const methodNotAllowed = (): StatusBody => failure(405, "MethodNotAllowed", "the server does not allow this method on the requested resource");

/**
 * 403 in the API server's own wording (k8s.io/apiserver `forbiddenMessage`), e.g.
 * `pods "web-1" is forbidden: User "alice" cannot get resource "pods" in API group "" in the namespace "prod"`.
 */
export function forbidden(a: { user: string; verb: string; resource: string; subresource?: string; group: string; namespace?: string; name?: string }): StatusBody {
  const res = a.subresource ? `${a.resource}/${a.subresource}` : a.resource;
  const subject = a.name ? `${qualified(a.resource, a.group)} "${a.name}"` : qualified(a.resource, a.group);
  const scope = a.namespace ? `in the namespace "${a.namespace}"` : "at the cluster scope";
  const message = `${subject} is forbidden: User "${a.user}" cannot ${a.verb} resource "${res}" in API group "${a.group}" ${scope}`;
  return failure(403, "Forbidden", message, { name: a.name, group: a.group || undefined, kind: a.resource });
}

// The resource types this test API server serves, with what discovery says about them.
// kubectl learns everything it knows (names, short names, scope, verbs) from discovery, so
// this table is the single source both discovery documents and the router are built from.

export interface ResourceType {
  group: string; // "" for the core group
  version: string;
  resource: string; // plural, as in URLs
  singular: string;
  kind: string;
  namespaced: boolean;
  shortNames: string[];
  verbs: string[];
  subresources: string[];
  categories: string[];
}

const CRUD = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

export const RESOURCE_TYPES: readonly ResourceType[] = [
  { group: "", version: "v1", resource: "pods", singular: "pod", kind: "Pod", namespaced: true, shortNames: ["po"], verbs: CRUD, subresources: ["log", "exec", "attach", "portforward", "status"], categories: ["all"] },
  { group: "", version: "v1", resource: "configmaps", singular: "configmap", kind: "ConfigMap", namespaced: true, shortNames: ["cm"], verbs: CRUD, subresources: [], categories: [] },
  { group: "", version: "v1", resource: "secrets", singular: "secret", kind: "Secret", namespaced: true, shortNames: [], verbs: CRUD, subresources: [], categories: [] },
  { group: "", version: "v1", resource: "services", singular: "service", kind: "Service", namespaced: true, shortNames: ["svc"], verbs: CRUD, subresources: ["status"], categories: ["all"] },
  { group: "", version: "v1", resource: "namespaces", singular: "namespace", kind: "Namespace", namespaced: false, shortNames: ["ns"], verbs: ["create", "delete", "get", "list", "patch", "update", "watch"], subresources: ["status", "finalize"], categories: [] },
  { group: "apps", version: "v1", resource: "deployments", singular: "deployment", kind: "Deployment", namespaced: true, shortNames: ["deploy"], verbs: CRUD, subresources: ["status", "scale"], categories: ["all"] },
  { group: "authorization.k8s.io", version: "v1", resource: "selfsubjectaccessreviews", singular: "selfsubjectaccessreview", kind: "SelfSubjectAccessReview", namespaced: false, shortNames: [], verbs: ["create"], subresources: [], categories: [] },
];

export const GROUPS: readonly { name: string; version: string }[] = [
  { name: "apps", version: "v1" },
  { name: "authorization.k8s.io", version: "v1" },
];

export function findResourceType(group: string, version: string, resource: string): ResourceType | undefined {
  return RESOURCE_TYPES.find((t) => t.group === group && t.version === version && t.resource === resource);
}

export function apiVersionOf(t: ResourceType): string {
  return t.group === "" ? t.version : `${t.group}/${t.version}`;
}

/** The kind a subresource answers with (what real servers advertise in discovery). */
export function subresourceKind(t: ResourceType, sub: string): { group: string; version: string; kind: string } {
  if (sub === "scale") return { group: "autoscaling", version: "v1", kind: "Scale" };
  if (sub === "status") return { group: t.group, version: t.version, kind: t.kind };
  if (sub === "portforward" || sub === "exec" || sub === "attach") return { group: "", version: "v1", kind: "PodExecOptions" };
  return { group: "", version: "v1", kind: "Pod" };
}

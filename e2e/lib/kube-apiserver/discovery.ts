// Discovery documents: legacy (/api, /api/v1, /apis, /apis/GROUP/VERSION) and aggregated
// (apidiscovery.k8s.io/v2), which kubectl 1.30+ asks for first in its Accept header.
import { GROUPS, RESOURCE_TYPES, subresourceKind } from "./catalog.js";

export const AGGREGATED_CONTENT_TYPE = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

export const wantsAggregated = (accept: string | undefined): boolean => (accept ?? "").includes("as=APIGroupDiscoveryList") && (accept ?? "").includes("v=v2;");

export const version = () => ({ major: "1", minor: "32", gitVersion: "v1.32.0-gatehouse-test", gitCommit: "0", gitTreeState: "clean", buildDate: "2026-01-01T00:00:00Z", goVersion: "go1.23", compiler: "gc", platform: "linux/amd64" });

export function legacyCore(serverAddress: string) {
  return { kind: "APIVersions", versions: ["v1"], serverAddressByClientCIDRs: [{ clientCIDR: "0.0.0.0/0", serverAddress }] };
}

export function legacyGroups() {
  return {
    kind: "APIGroupList",
    apiVersion: "v1",
    groups: GROUPS.map((g) => ({ name: g.name, versions: [{ groupVersion: `${g.name}/${g.version}`, version: g.version }], preferredVersion: { groupVersion: `${g.name}/${g.version}`, version: g.version } })),
  };
}

export function resourceList(group: string, version: string) {
  const types = RESOURCE_TYPES.filter((t) => t.group === group && t.version === version);
  if (types.length === 0) return undefined;
  const resources = types.flatMap((t) => [
    { name: t.resource, singularName: t.singular, namespaced: t.namespaced, kind: t.kind, verbs: t.verbs, ...(t.shortNames.length ? { shortNames: t.shortNames } : {}), ...(t.categories.length ? { categories: t.categories } : {}) },
    ...t.subresources.map((s) => ({ name: `${t.resource}/${s}`, singularName: "", namespaced: t.namespaced, kind: subresourceKind(t, s).kind, verbs: s === "log" ? ["get"] : s === "status" || s === "scale" ? ["get", "patch", "update"] : ["create", "get"] })),
  ]);
  return { kind: "APIResourceList", apiVersion: "v1", groupVersion: group === "" ? version : `${group}/${version}`, resources };
}

function groupDiscovery(name: string, version: string) {
  const resources = RESOURCE_TYPES.filter((t) => t.group === name && t.version === version).map((t) => ({
    resource: t.resource,
    responseKind: { group: t.group, version: t.version, kind: t.kind },
    scope: t.namespaced ? "Namespaced" : "Cluster",
    singularResource: t.singular,
    verbs: t.verbs,
    ...(t.shortNames.length ? { shortNames: t.shortNames } : {}),
    ...(t.categories.length ? { categories: t.categories } : {}),
    ...(t.subresources.length ? { subresources: t.subresources.map((s) => ({ subresource: s, responseKind: subresourceKind(t, s), verbs: s === "log" ? ["get"] : ["create", "get"] })) } : {}),
  }));
  return { metadata: name === "" ? { creationTimestamp: null } : { name, creationTimestamp: null }, versions: [{ version, resources, freshness: "Current" }] };
}

export function aggregatedCore() {
  return { kind: "APIGroupDiscoveryList", apiVersion: "apidiscovery.k8s.io/v2", metadata: {}, items: [groupDiscovery("", "v1")] };
}

export function aggregatedGroups() {
  return { kind: "APIGroupDiscoveryList", apiVersion: "apidiscovery.k8s.io/v2", metadata: {}, items: GROUPS.map((g) => groupDiscovery(g.name, g.version)) };
}

/**
 * OpenAPI v3, only as far as kubectl reads it: `apply`/`create` (`--validate=strict`, the default)
 * look for a PATCH operation of the object's group-version-kind that takes `fieldValidation`, and
 * then leave validation to the server. Without it kubectl wants the full v2 schema.
 */
export function openapiRoot() {
  const gvs = ["api/v1", ...GROUPS.map((g) => `apis/${g.name}/${g.version}`)];
  return { paths: Object.fromEntries(gvs.map((gv) => [gv, { serverRelativeURL: `/openapi/v3/${gv}?hash=1` }])) };
}

export function openapiGroupVersion(gv: string) {
  const types = RESOURCE_TYPES.filter((t) => (t.group === "" ? `api/${t.version}` : `apis/${t.group}/${t.version}`) === gv);
  if (types.length === 0) return undefined;
  const paths = Object.fromEntries(
    types.map((t) => [
      `/${gv}/${t.namespaced ? "namespaces/{namespace}/" : ""}${t.resource}/{name}`,
      { patch: { "x-kubernetes-group-version-kind": { group: t.group, version: t.version, kind: t.kind }, parameters: [{ name: "fieldValidation", in: "query", schema: { type: "string" } }, { name: "dryRun", in: "query", schema: { type: "string" } }], responses: {} } },
    ]),
  );
  return { openapi: "3.0.0", info: { title: "Kubernetes", version: "v1.32.0" }, paths, components: { schemas: {} } };
}

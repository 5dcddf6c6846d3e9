// `meta.k8s.io/v1` Table rendering: what `kubectl get` asks for and prints as columns.
import type { ResourceType } from "./catalog.js";

type Obj = Record<string, any>;
const col = (name: string, type = "string", format = "") => ({ name, type, format, description: "", priority: 0 });

function age(created: string | undefined): string {
  const s = Math.max(0, Math.round((Date.now() - Date.parse(created ?? "")) / 1000));
  return Number.isFinite(s) ? (s < 120 ? `${s}s` : `${Math.floor(s / 60)}m`) : "<unknown>";
}

function columns(t: ResourceType): { defs: ReturnType<typeof col>[]; cells: (o: Obj) => unknown[] } {
  switch (t.resource) {
    case "pods":
      return {
        defs: [col("Name", "string", "name"), col("Ready"), col("Status"), col("Restarts", "string"), col("Age")],
        cells: (o) => {
          const n = (o.spec?.containers ?? []).length;
          return [o.metadata.name, `${n}/${n}`, o.status?.phase ?? "Pending", "0", age(o.metadata.creationTimestamp)];
        },
      };
    case "configmaps":
      return { defs: [col("Name", "string", "name"), col("Data", "integer"), col("Age")], cells: (o) => [o.metadata.name, Object.keys(o.data ?? {}).length, age(o.metadata.creationTimestamp)] };
    case "secrets":
      return { defs: [col("Name", "string", "name"), col("Type"), col("Data", "integer"), col("Age")], cells: (o) => [o.metadata.name, o.type ?? "Opaque", Object.keys(o.data ?? {}).length, age(o.metadata.creationTimestamp)] };
    case "namespaces":
      return { defs: [col("Name", "string", "name"), col("Status"), col("Age")], cells: (o) => [o.metadata.name, o.status?.phase ?? "Active", age(o.metadata.creationTimestamp)] };
    case "deployments":
      return {
        defs: [col("Name", "string", "name"), col("Ready"), col("Up-to-date", "integer"), col("Available", "integer"), col("Age")],
        cells: (o) => [o.metadata.name, `${o.spec?.replicas ?? 1}/${o.spec?.replicas ?? 1}`, o.spec?.replicas ?? 1, o.spec?.replicas ?? 1, age(o.metadata.creationTimestamp)],
      };
    default:
      return { defs: [col("Name", "string", "name"), col("Age")], cells: (o) => [o.metadata.name, age(o.metadata.creationTimestamp)] };
  }
}

export const wantsTable = (accept: string | undefined): boolean => (accept ?? "").includes("as=Table");

export function table(t: ResourceType, objects: Obj[], resourceVersion: string) {
  const { defs, cells } = columns(t);
  return {
    kind: "Table",
    apiVersion: "meta.k8s.io/v1",
    metadata: { resourceVersion },
    columnDefinitions: defs,
    rows: objects.map((o) => ({ cells: cells(o), object: { kind: "PartialObjectMetadata", apiVersion: "meta.k8s.io/v1", metadata: o.metadata } })),
  };
}

import { Deployment, StatefulSet } from "kubernetes-models/apps/v1";
import { ConfigMap, Namespace, Secret, Service } from "kubernetes-models/v1";
import type { K8sObject } from "./kubernetes-objects.js";

// Validates rendered objects against the Kubernetes OpenAPI schemas that `kubernetes-models` ships
// (one JSON schema per kind, checked with ajv). A kind not listed here is a problem, not a pass: add
// its model when the manifests gain one.

interface Validatable {
  validate(): void;
}

const MODELS: Record<string, new (data: never) => Validatable> = {
  "v1/Namespace": Namespace,
  "v1/ConfigMap": ConfigMap,
  "v1/Secret": Secret,
  "v1/Service": Service,
  "apps/v1/Deployment": Deployment,
  "apps/v1/StatefulSet": StatefulSet,
};

/** The schema's complaints about one object, each prefixed with its kind and name; empty when valid. */
export function kubernetesModelProblems(object: K8sObject): string[] {
  const label = `${object.kind} ${object.metadata?.name ?? "(no name)"}`;
  const Model = MODELS[`${object.apiVersion}/${object.kind}`];
  if (!Model) return [`${label}: no model for ${object.apiVersion} ${object.kind} in this test`];
  try {
    new Model(asApiServerReads(object) as never).validate();
    return [];
  } catch (error) {
    return [`${label}: ${(error as Error).message}`];
  }
}

/**
 * kustomize wraps a long Secret value's base64 over several lines; the API server decodes it with Go's
 * base64 decoder, which skips newlines, while the schema's "byte" format does not. Validate the value
 * the API server stores.
 */
function asApiServerReads(object: K8sObject): K8sObject {
  if (object.kind !== "Secret" || typeof object.data !== "object" || object.data === null) return object;
  const data = Object.fromEntries(Object.entries(object.data as Record<string, string>).map(([k, v]) => [k, v.replace(/[\r\n]/g, "")]));
  return { ...object, data };
}

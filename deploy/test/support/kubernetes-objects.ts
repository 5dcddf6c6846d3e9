import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { parseAllDocuments } from "yaml";

// The rendered manifests as plain objects, and what a pod would see of them: its files (ConfigMap and
// Secret volumes written under a local directory at their mount paths) and its environment (values
// and secretKeyRefs resolved). Only the fields the deployment tests read are typed.

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [key: string]: unknown;
}

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string }; configMapKeyRef?: { name: string; key: string } };
}

export interface Probe {
  httpGet?: { path: string; port: number | string; scheme?: string };
}

export interface SecurityContext {
  runAsNonRoot?: boolean;
  runAsUser?: number;
  readOnlyRootFilesystem?: boolean;
  allowPrivilegeEscalation?: boolean;
  capabilities?: { drop?: string[]; add?: string[] };
  seccompProfile?: { type: string };
}

export interface Container {
  name: string;
  image: string;
  args?: string[];
  command?: string[];
  env?: EnvVar[];
  ports?: { name?: string; containerPort: number }[];
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  startupProbe?: Probe;
  securityContext?: SecurityContext;
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
}

export interface Volume {
  name: string;
  configMap?: { name: string; items?: { key: string; path: string }[] };
  secret?: { secretName: string; items?: { key: string; path: string }[] };
  emptyDir?: object;
  persistentVolumeClaim?: { claimName: string };
}

export interface PodSpec {
  containers: Container[];
  volumes?: Volume[];
  securityContext?: SecurityContext & { fsGroup?: number };
  terminationGracePeriodSeconds?: number;
}

export interface Workload extends K8sObject {
  spec: {
    replicas?: number;
    selector: { matchLabels: Record<string, string> };
    template: { metadata: { labels: Record<string, string> }; spec: PodSpec };
    volumeClaimTemplates?: { metadata: { name: string } }[];
  };
}

export interface ServiceObject extends K8sObject {
  spec: { selector?: Record<string, string>; clusterIP?: string; ports: { name?: string; port: number; targetPort?: number | string }[] };
}

/** `kubectl kustomize DIR`, parsed; throws with kubectl's stderr when it fails. */
export function renderKustomization(dir: string): K8sObject[] {
  const run = spawnSync("kubectl", ["kustomize", dir], { encoding: "utf8" });
  if (run.status !== 0) throw new Error(`kubectl kustomize ${dir} failed (${String(run.status)}): ${run.stderr}`);
  return parseAllDocuments(run.stdout).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`kubectl kustomize printed invalid YAML: ${doc.errors[0]!.message}`);
    return doc.toJS() as K8sObject;
  });
}

export function kubectlAvailable(): boolean {
  return spawnSync("kubectl", ["version", "--client"], { encoding: "utf8" }).status === 0;
}

/** The files of a ConfigMap or Secret, by key, as bytes. */
export function objectFiles(object: K8sObject): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  const data = (object.data ?? {}) as Record<string, string>;
  for (const [key, value] of Object.entries(data)) files.set(key, object.kind === "Secret" ? Buffer.from(value, "base64") : Buffer.from(value));
  for (const [key, value] of Object.entries((object.stringData ?? {}) as Record<string, string>)) files.set(key, Buffer.from(value));
  return files;
}

export function find<T extends K8sObject = K8sObject>(objects: readonly K8sObject[], kind: string, name: string): T | undefined {
  return objects.find((o) => o.kind === kind && o.metadata.name === name) as T | undefined;
}

/**
 * Writes what `container` would find at its ConfigMap and Secret mounts under `root` (root + mountPath +
 * key), makes its other mounts as empty directories, and returns the problems met: a volume or key that
 * is not in the rendered objects.
 */
export function materializeMounts(objects: readonly K8sObject[], pod: PodSpec, container: Container, root: string): string[] {
  const problems: string[] = [];
  for (const mount of container.volumeMounts ?? []) {
    const volume = pod.volumes?.find((v) => v.name === mount.name);
    const at = join(root, mount.mountPath);
    mkdirSync(at, { recursive: true });
    if (!volume) continue; // a volumeClaimTemplate: an empty volume of its own
    const source = volume.configMap
      ? { kind: "ConfigMap", name: volume.configMap.name, items: volume.configMap.items }
      : volume.secret
        ? { kind: "Secret", name: volume.secret.secretName, items: volume.secret.items }
        : undefined;
    if (!source) continue;
    const object = find(objects, source.kind, source.name);
    if (!object) {
      problems.push(`${container.name}: volume ${volume.name} names ${source.kind} ${source.name}, which is not rendered`);
      continue;
    }
    const files = objectFiles(object);
    const items = source.items ?? [...files.keys()].map((key) => ({ key, path: key }));
    for (const item of items) {
      const content = files.get(item.key);
      if (content === undefined) {
        problems.push(`${container.name}: volume ${volume.name} wants key ${item.key} of ${source.kind} ${source.name}, which has none`);
        continue;
      }
      mkdirSync(dirname(join(at, item.path)), { recursive: true });
      writeFileSync(join(at, item.path), content);
    }
  }
  return problems;
}

/** The container's environment as the kubelet would set it; a missing Secret or key is a problem. */
export function resolveEnv(objects: readonly K8sObject[], container: Container): { env: Record<string, string>; problems: string[] } {
  const env: Record<string, string> = {};
  const problems: string[] = [];
  for (const variable of container.env ?? []) {
    const ref = variable.valueFrom?.secretKeyRef ?? variable.valueFrom?.configMapKeyRef;
    if (!ref) {
      env[variable.name] = variable.value ?? "";
      continue;
    }
    const kind = variable.valueFrom?.secretKeyRef ? "Secret" : "ConfigMap";
    const object = find(objects, kind, ref.name);
    const value = object ? objectFiles(object).get(ref.key) : undefined;
    if (value === undefined) problems.push(`${container.name}: ${variable.name} refers to key ${ref.key} of ${kind} ${ref.name}, which is not rendered`);
    else env[variable.name] = value.toString("utf8");
  }
  return { env, problems };
}

/** A container path → where materializeMounts put it under `root` (paths outside every mount stay as they are). */
export function pathInPod(container: Container, root: string): (path: string) => string {
  const mounts = (container.volumeMounts ?? []).map((m) => m.mountPath);
  return (path) => (mounts.some((m) => path === m || path.startsWith(`${m}/`)) ? join(root, path) : path);
}

/** A probe's or Service's port (a number, or a container port's name) as a number. */
export function portNumber(container: Container, port: number | string | undefined): number | undefined {
  if (typeof port === "number") return port;
  return container.ports?.find((p) => p.name === port)?.containerPort;
}

export function matchesLabels(selector: Record<string, string> | undefined, labels: Record<string, string>): boolean {
  if (!selector || Object.keys(selector).length === 0) return false;
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

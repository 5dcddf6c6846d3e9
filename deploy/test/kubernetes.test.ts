import { X509Certificate, createPrivateKey } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadConfigFile, sha256Hex, type GatewayConfig } from "@gatehouse/gateway";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkConnector } from "./support/connector-environment.js";
import { commandLineProblem } from "./support/gatehouse-cli.js";
import { kubernetesModelProblems } from "./support/kubernetes-models.js";
import {
  find,
  kubectlAvailable,
  matchesLabels,
  materializeMounts,
  objectFiles,
  pathInPod,
  portNumber,
  renderKustomization,
  resolveEnv,
  type Container,
  type K8sObject,
  type SecurityContext,
  type ServiceObject,
  type Workload,
} from "./support/kubernetes-objects.js";
import { repoPath } from "./support/repo.js";

// deploy/kubernetes rendered as `kubectl kustomize` renders it with its defaults, every object
// validated against the Kubernetes schemas (kubernetes-models), and the gateway's and the connector's
// pods checked against what the programs themselves accept: the gateway config in the ConfigMap loads
// with the gateway's loader, and the files it names are mounted; probes, Services and ports match its
// listeners; the connector's settings parse with the connector's parser and its token, allow-list,
// credentials and gateway URL fit that config; every Secret key referenced exists.

const KUSTOMIZATION = repoPath("deploy", "kubernetes");
const haveKubectl = kubectlAvailable();

describe.skipIf(!haveKubectl)("deploy/kubernetes (kubectl kustomize)", () => {
  let objects: K8sObject[];
  let gateway: Workload;
  let gatewayContainer: Container;
  let connector: Workload;
  let connectorContainer: Container;
  let config: GatewayConfig;
  let root: string;

  beforeAll(() => {
    objects = renderKustomization(KUSTOMIZATION);
    gateway = single(objects, "StatefulSet");
    gatewayContainer = gateway.spec.template.spec.containers[0]!;
    connector = single(objects, "Deployment");
    connectorContainer = connector.spec.template.spec.containers[0]!;
    root = mkdtempSync(join(tmpdir(), "gatehouse-deploy-k8s-"));
    // The gateway's config, as the pod reads it: the file its --config names, in its mounted ConfigMap.
    const gatewayFiles = join(root, "gateway");
    const problems = materializeMounts(objects, gateway.spec.template.spec, gatewayContainer, gatewayFiles);
    if (problems.length > 0) throw new Error(problems.join("\n"));
    config = loadConfigFile(join(gatewayFiles, argAfter(gatewayContainer, "--config")));
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it("renders every object valid against the Kubernetes schemas", () => {
    expect(objects.map((o) => o.kind).sort()).toEqual(
      ["ConfigMap", "ConfigMap", "Deployment", "Namespace", "Secret", "Secret", "Secret", "Secret", "Service", "Service", "Service", "Service", "Service", "StatefulSet"],
    );
    expect(objects.flatMap(kubernetesModelProblems)).toEqual([]);
    // The validator refuses a wrong type, so a pass above means something.
    const broken = structuredClone(connector);
    (broken.spec as Record<string, unknown>).replicas = "two";
    expect(kubernetesModelProblems(broken).join("\n")).toMatch(/replicas/);
  });

  it("puts everything in one namespace", () => {
    const namespace = single(objects, "Namespace").metadata.name;
    expect(objects.filter((o) => o.kind !== "Namespace").every((o) => o.metadata.namespace === namespace)).toBe(true);
  });

  it("runs the gatehouse image with real command lines", () => {
    for (const container of [gatewayContainer, connectorContainer]) {
      expect(container.command, "the image's entrypoint is gatehouse").toBeUndefined();
      expect(commandLineProblem(container.args ?? [])).toBeNull();
    }
    expect(gatewayContainer.args?.[0]).toBe("gateway");
    expect(connectorContainer.args?.[0]).toBe("connector");
  });

  describe("the gateway", () => {
    it("reads its config from a ConfigMap that the gateway's own loader accepts", () => {
      const mount = gatewayContainer.volumeMounts!.find((m) => argAfter(gatewayContainer, "--config").startsWith(`${m.mountPath}/`))!;
      const volume = gateway.spec.template.spec.volumes!.find((v) => v.name === mount.name)!;
      expect(volume.configMap?.name).toMatch(/^gatehouse-gateway-config/);
      expect(config.connections.map((c) => c.name)).toEqual(["app"]);
    });

    it("probes /readyz for readiness and /healthz for liveness on the API listener", () => {
      const scheme = config.api.tls ? "HTTPS" : "HTTP";
      const { readinessProbe, livenessProbe, startupProbe } = gatewayContainer;
      expect(readinessProbe?.httpGet?.path).toBe("/readyz");
      expect(livenessProbe?.httpGet?.path).toBe("/healthz");
      for (const probe of [readinessProbe, livenessProbe, startupProbe]) {
        expect(portNumber(gatewayContainer, probe?.httpGet?.port)).toBe(config.listen.api.port);
        expect(probe?.httpGet?.scheme ?? "HTTP").toBe(scheme);
      }
    });

    it("has one Service per listener, each reaching that listener's port, and no port without a listener", () => {
      const labels = gateway.spec.template.metadata.labels;
      const services = objects.filter((o): o is ServiceObject => o.kind === "Service" && matchesLabels((o as ServiceObject).spec.selector, labels));
      const listeners = Object.entries(config.listen).filter(([, at]) => at !== undefined) as [string, { port: number }][];
      const containerPorts = (gatewayContainer.ports ?? []).map((p) => p.containerPort).sort();
      expect(containerPorts).toEqual(listeners.map(([, at]) => at.port).sort());
      for (const [name, at] of listeners) {
        const serving = services.filter((s) => s.spec.clusterIP !== "None" && s.spec.ports.some((p) => portNumber(gatewayContainer, p.targetPort ?? p.port) === at.port));
        expect(serving.map((s) => s.metadata.name), `listen.${name}`).toEqual([`gatehouse-${name}`]);
      }
      // The StatefulSet's governing Service exists and is headless.
      const governing = find<ServiceObject>(objects, "Service", (gateway.spec as { serviceName?: string }).serviceName ?? "");
      expect(governing?.spec.clusterIP).toBe("None");
    });

    it("keeps its data directory on its own volume claim, and writes nowhere else but /tmp", () => {
      const mounts = gatewayContainer.volumeMounts ?? [];
      const data = mounts.find((m) => m.mountPath === config.dataDir);
      expect(data, `a mount at dataDir ${config.dataDir}`).toBeDefined();
      expect(gateway.spec.volumeClaimTemplates?.map((t) => t.metadata.name)).toEqual([data!.name]);
      const writable = mounts.filter((m) => !m.readOnly).map((m) => m.mountPath).sort();
      expect(writable).toEqual([config.dataDir, "/tmp"].sort());
    });

    it("finds every file its config names in a mounted Secret, with a TLS key that belongs to its certificate", () => {
      const files = join(root, "gateway");
      const inPod = pathInPod(gatewayContainer, files);
      const named = [config.api.tls?.cert, config.api.tls?.key, config.postgres.tls?.cert, config.postgres.tls?.key, config.store.password?.replace(/^file:/, "")];
      for (const path of named.filter((p): p is string => p !== undefined)) expect(existsSync(inPod(path)), path).toBe(true);
      const cert = new X509Certificate(readFileSync(inPod(config.api.tls!.cert)));
      expect(cert.checkPrivateKey(createPrivateKey(readFileSync(inPod(config.api.tls!.key))))).toBe(true);
      expect(config.store.password).toMatch(/^file:/);
      expect(readFileSync(inPod(config.store.password!.slice("file:".length)), "utf8").trim()).not.toBe("");
      expect(new URL(config.store.url!).password, "no password in store.url: it comes from the Secret").toBe("");
    });

    it("gives open sessions their shutdown grace before the kubelet kills the pod", () => {
      // The gateway ends and seals sessions about 2 s after shutdown.graceMs.
      expect(gateway.spec.template.spec.terminationGracePeriodSeconds! * 1000).toBeGreaterThanOrEqual(config.shutdown.graceMs + 5_000);
    });

    it("has the admin token's hash in its config and the token in a Secret for the CLI", () => {
      const secret = objects.find((o) => o.kind === "Secret" && o.metadata.name.startsWith("gatehouse-admin-token"))!;
      const token = objectFiles(secret).get("token")!.toString("utf8").trim();
      expect(sha256Hex(token)).toBe(config.api.adminTokenSha256);
    });
  });

  describe("the connector", () => {
    it("has settings the connector accepts, its token's hash in the gateway config, and its connections' targets and credentials", async () => {
      const files = join(root, "connector");
      const problems = materializeMounts(objects, connector.spec.template.spec, connectorContainer, files);
      const { env, problems: envProblems } = resolveEnv(objects, connectorContainer);
      expect([...problems, ...envProblems]).toEqual([]);
      const inPod = pathInPod(connectorContainer, files);
      const localEnv = Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v.startsWith("/") ? inPod(v) : v]));
      const check = await checkConnector(connectorContainer.args!.slice(1), localEnv, config, inPod);
      expect(check.problems).toEqual([]);
      expect(check.connections.map((c) => c.name)).toEqual(["app"]);
      expect(connector.spec.template.spec.terminationGracePeriodSeconds! * 1000).toBeGreaterThan(check.settings!.drainTimeoutMs);
    });

    it("dials the API Service by a name its certificate holds, and trusts that certificate", () => {
      const { env } = resolveEnv(objects, connectorContainer);
      const url = new URL(env.GATEHOUSE_GATEWAY_URL!);
      expect(url.protocol).toBe("https:");
      const [serviceName, namespace] = url.hostname.split(".");
      const api = find<ServiceObject>(objects, "Service", serviceName!)!;
      expect(api.metadata.namespace).toBe(namespace);
      const port = api.spec.ports.find((p) => p.port === Number(url.port))!;
      expect(portNumber(gatewayContainer, port.targetPort)).toBe(config.listen.api.port);
      const inPod = pathInPod(gatewayContainer, join(root, "gateway"));
      const cert = new X509Certificate(readFileSync(inPod(config.api.tls!.cert)));
      expect(cert.checkHost(url.hostname)).toBe(url.hostname);
      const ca = new X509Certificate(readFileSync(pathInPod(connectorContainer, join(root, "connector"))(env.GATEHOUSE_GATEWAY_CA!)));
      expect(cert.checkIssued(ca) && cert.verify(ca.publicKey)).toBe(true);
    });
  });

  it("runs both pods as non-root, read-only, without capabilities, under the runtime's seccomp profile", () => {
    for (const workload of [gateway, connector]) {
      const pod = workload.spec.template.spec;
      const name = workload.metadata.name;
      for (const container of pod.containers) {
        const effective: SecurityContext = { ...pod.securityContext, ...container.securityContext };
        expect(effective.runAsNonRoot, name).toBe(true);
        expect(effective.runAsUser, name).toBeGreaterThan(0);
        expect(effective.readOnlyRootFilesystem, name).toBe(true);
        expect(effective.allowPrivilegeEscalation, name).toBe(false);
        expect(effective.capabilities?.drop, name).toContain("ALL");
        expect(effective.capabilities?.add ?? [], name).toEqual([]);
        expect(effective.seccompProfile?.type, name).toBe("RuntimeDefault");
      }
    }
  });

  it("refers only to Secrets, ConfigMaps and keys that it renders", () => {
    const problems: string[] = [];
    for (const workload of [gateway, connector]) {
      const pod = workload.spec.template.spec;
      for (const container of pod.containers) {
        const scratch = mkdtempSync(join(tmpdir(), "gatehouse-deploy-refs-"));
        try {
          problems.push(...materializeMounts(objects, pod, container, scratch), ...resolveEnv(objects, container).problems);
        } finally {
          rmSync(scratch, { recursive: true, force: true });
        }
      }
      for (const volume of pod.volumes ?? []) {
        const name = volume.secret?.secretName ?? volume.configMap?.name;
        const kind = volume.secret ? "Secret" : "ConfigMap";
        if (name && !find(objects, kind, name)) problems.push(`${workload.metadata.name}: volume ${volume.name}: no ${kind} ${name}`);
      }
    }
    expect(problems).toEqual([]);
  });
});

if (!haveKubectl) console.warn("deploy/kubernetes: skipped, kubectl (whose built-in kustomize renders the manifests) is not installed");

function single<T extends K8sObject = Workload>(objects: readonly K8sObject[], kind: string): T {
  const found = objects.filter((o) => o.kind === kind);
  if (found.length !== 1) throw new Error(`expected one ${kind}, rendered ${found.length}`);
  return found[0] as T;
}

function argAfter(container: Container, flag: string): string {
  const args = container.args ?? [];
  const value = args[args.indexOf(flag) + 1];
  if (!args.includes(flag) || !value) throw new Error(`${container.name}: no ${flag} VALUE in its args`);
  return value;
}


import { statSync } from "node:fs";
import { Agent, type RequestOptions } from "node:https";
import { KubeConfig } from "@kubernetes/client-node";
import { ConnectorError } from "../../errors.js";

/** How often a kubeconfig file is checked for changes (ms): a rotated client certificate is picked up. */
const RECHECK_MS = 5_000;

/**
 * What the connector needs to reach one cluster as itself: `@kubernetes/client-node`'s KubeConfig
 * (a kubeconfig file and context, or the pod's service account), which supplies the CA, the
 * client certificate or token (exec plugins and rotating service-account tokens included), and
 * one keep-alive agent with that TLS, so requests reuse connections to the API server.
 */
export class ClusterAccess {
  private constructor(
    readonly kubeConfig: KubeConfig,
    readonly agent: Agent,
    /** The name the API server's certificate is checked against (tls-server-name, else the server URL's host). */
    readonly serverName: string | undefined,
    /** The server URL's host (with port), sent as Host: the API server may sit behind a name-routed proxy. */
    readonly hostHeader: string,
    /** The server URL's path, before every request's own (a cluster behind a proxy: https://rancher/k8s/clusters/c-1). */
    readonly pathPrefix: string,
    readonly source: string,
    private readonly mtimeMs: number,
    private checkedAtMs: number,
  ) {}

  static async load(kubeconfig: string | undefined, context: string | undefined): Promise<ClusterAccess> {
    const kc = new KubeConfig();
    const source = kubeconfig ?? "in-cluster service account";
    let mtimeMs = 0;
    try {
      if (kubeconfig === undefined) {
        if (!process.env.KUBERNETES_SERVICE_HOST) throw new Error("no target.kubeconfig, and not running in a cluster (KUBERNETES_SERVICE_HOST is unset)");
        kc.loadFromCluster();
      } else {
        mtimeMs = statSync(kubeconfig).mtimeMs;
        kc.loadFromFile(kubeconfig);
      }
      if (context !== undefined) kc.setCurrentContext(context);
    } catch (error) {
      throw new ConnectorError("CREDENTIAL_UNAVAILABLE", `kubeconfig ${source}${context ? ` (context ${context})` : ""} cannot be used: ${(error as Error).message}`, { cause: error });
    }
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new ConnectorError("CREDENTIAL_UNAVAILABLE", `kubeconfig ${source}: its current context names no cluster`);
    const server = URL.parse(cluster.server);
    if (!server || server.protocol !== "https:") throw new ConnectorError("CREDENTIAL_UNAVAILABLE", `kubeconfig ${source}: cluster server "${cluster.server}" is not an https:// URL`);
    const tls: RequestOptions = {};
    await kc.applyToHTTPSOptions(tls);
    const hostname = server.hostname.replace(/^\[(.*)\]$/, "$1");
    const serverName = cluster.tlsServerName ?? (/^[\d.]+$|:/.test(hostname) ? undefined : hostname);
    const agent = new Agent({
      keepAlive: true,
      ...(tls.ca !== undefined ? { ca: tls.ca } : {}),
      ...(tls.cert !== undefined ? { cert: tls.cert } : {}),
      ...(tls.key !== undefined ? { key: tls.key } : {}),
      ...(tls.rejectUnauthorized !== undefined ? { rejectUnauthorized: tls.rejectUnauthorized } : {}),
      ...(serverName !== undefined ? { servername: serverName } : {}),
    });
    return new ClusterAccess(kc, agent, serverName, server.host, server.pathname.replace(/\/+$/, ""), source, mtimeMs, Date.now());
  }

  /** The headers that make a request the connector's own (Authorization, a kubeconfig's as-user), fresh for each request. */
  async credentialHeaders(): Promise<Record<string, string | string[]>> {
    const options: RequestOptions = {};
    try {
      await this.kubeConfig.applyToHTTPSOptions(options);
    } catch (error) {
      throw new ConnectorError("CREDENTIAL_UNAVAILABLE", `kubeconfig ${this.source}: no credential for the cluster: ${(error as Error).message}`, { cause: error });
    }
    const headers = (options.headers ?? {}) as Record<string, string | string[]>;
    if (options.auth) headers.Authorization = `Basic ${Buffer.from(options.auth).toString("base64")}`;
    return headers;
  }

  /** Whether the kubeconfig file changed since it was read (checked at most every few seconds). */
  stale(kubeconfig: string | undefined): boolean {
    if (kubeconfig === undefined || Date.now() - this.checkedAtMs < RECHECK_MS) return false;
    this.checkedAtMs = Date.now();
    try {
      return statSync(kubeconfig).mtimeMs !== this.mtimeMs;
    } catch {
      return true;
    }
  }
}

/** One ClusterAccess per kubeconfig and context, loaded on first use and again when its file changes. */
export class ClusterAccessCache {
  private readonly entries = new Map<string, Promise<ClusterAccess>>();

  get(kubeconfig: string | undefined, context: string | undefined): Promise<ClusterAccess> {
    const key = JSON.stringify([kubeconfig ?? null, context ?? null]);
    const cached = this.entries.get(key);
    if (cached) {
      return cached.then((access) => {
        if (!access.stale(kubeconfig)) return access;
        // Requests still running on the old agent (a watch) finish there.
        if (this.entries.get(key) === cached) this.entries.delete(key);
        return this.get(kubeconfig, context);
      });
    }
    const loading = ClusterAccess.load(kubeconfig, context);
    this.entries.set(key, loading);
    loading.catch(() => this.entries.get(key) === loading && this.entries.delete(key));
    return loading;
  }
}

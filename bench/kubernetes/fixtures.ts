// What run.ts and api-server.ts agree on: the API server's tokens, the pods it serves, the settings it takes.

export const TOKENS = {
  /** The connector's kubeconfig: a token that may impersonate (the gateway's identity). */
  connector: "connector-token",
  /** What the direct path sends (full RBAC, no impersonation). */
  direct: "direct-token",
} as const;

/** The pod the GET workload reads, and the pod whose log is the big one. */
export const GET_POD = { namespace: "default", name: "web-1" };
export const BIG_LOG_POD = { namespace: "default", name: "big-log" };

/** What api-server.ts takes, as JSON in BENCH_KUBE_SERVER. */
export interface ServerSettings {
  /** Size of the big log, in bytes (rounded down to whole lines). */
  logBytes: number;
  /** Length of one log line, its newline included. */
  logLineBytes: number;
  /** Pods besides web-1 and big-log, spread over a few namespaces (what `kubectl get pods -A` lists). */
  extraPods: number;
}

/** What api-server.ts prints, one JSON line, once it listens. */
export interface ServerReady {
  url: string;
  caPem: string;
  pid: number;
  logBytes: number;
  logLines: number;
}

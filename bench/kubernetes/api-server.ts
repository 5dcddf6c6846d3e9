// The bench's Kubernetes API server, in a process of its own (started by run.ts): e2e's test API
// server (e2e/lib/kube-apiserver) with the bench's tokens, pods and one large pod log. Its own
// process, so that its CPU time is counted apart from the gateway's, the connector's and the load
// generator's, and it does not share an event loop with the client that drives it.
//
// Settings come as JSON in BENCH_KUBE_SERVER (see ServerSettings). Prints one JSON line on stdout
// when it listens ({ url, caPem, pid, logBytes, logLines }), then runs until stdin closes or a
// SIGTERM/SIGINT.
import { startKubeApiServer } from "../../e2e/lib/kube-apiserver/index.js";
import { BIG_LOG_POD, GET_POD, TOKENS, type ServerReady, type ServerSettings } from "./fixtures.js";

const settings: ServerSettings = { logBytes: 100_000_000, logLineBytes: 1000, extraPods: 10, ...(JSON.parse(process.env.BENCH_KUBE_SERVER ?? "{}") as Partial<ServerSettings>) };

// A log line as a container writes one: a timestamp, a level, a message padded to the line's length.
// Every line is the same string (the array holds references to one), so 100 MB of log costs the
// server one line of memory until it writes them.
const prefix = "2026-12-05T08:00:00.000000000Z INFO request served path=/api/v1/items status=200 ";
const line = (prefix + "x".repeat(Math.max(0, settings.logLineBytes - 1 - prefix.length))).slice(0, settings.logLineBytes - 1);
const logLines = Math.floor(settings.logBytes / settings.logLineBytes);

const namespaces = ["prod", "staging", "monitoring"];
const pod = (name: string, namespace: string, app: string) => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name, namespace, labels: { app } },
  spec: { containers: [{ name: app, image: `registry.example.com/${app}:1.0` }] },
});

const api = await startKubeApiServer({
  tokens: {
    [TOKENS.connector]: { user: "gatehouse-connector", canImpersonate: true },
    [TOKENS.direct]: { user: "bench-direct" },
  },
  rbac: [{ subjects: ["gatehouse-connector", "bench-direct", "agent"], verbs: ["*"], resources: ["*"] }],
  objects: [
    ...namespaces.map((name) => ({ apiVersion: "v1", kind: "Namespace", metadata: { name } })),
    pod(GET_POD.name, GET_POD.namespace, "web"),
    pod(BIG_LOG_POD.name, BIG_LOG_POD.namespace, "chatty"),
    ...Array.from({ length: settings.extraPods }, (_, i) => pod(`app-${i}`, namespaces[i % namespaces.length]!, `app${i}`)),
  ],
  logs: { [`${GET_POD.namespace}/${GET_POD.name}`]: ["hello", "world"], [`${BIG_LOG_POD.namespace}/${BIG_LOG_POD.name}`]: new Array<string>(logLines).fill(line) },
});

const ready: ServerReady = { url: api.url, caPem: api.caPem, pid: process.pid, logBytes: logLines * settings.logLineBytes, logLines };
process.stdout.write(JSON.stringify(ready) + "\n");

let closing = false;
const close = () => {
  if (closing) return;
  closing = true;
  void api.close().finally(() => process.exit(0));
};
process.stdin.on("end", close).on("close", close).resume();
process.on("SIGTERM", close);
process.on("SIGINT", close);

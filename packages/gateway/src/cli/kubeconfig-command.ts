import { writeFileSync } from "node:fs";
import { userInfo } from "node:os";
import { stringify } from "yaml";
import { ApiClient, resolveApiTarget, type KubernetesEndpoint } from "./api-client.js";
import { parseCommand, UsageError, write, type CommandContext } from "./command.js";
import { parseHostPort, reachableAddress } from "./ssh-config-command.js";

export const KUBECONFIG_HELP = `Usage:
  gatehouse kubeconfig --connection NAME [--identity NAME] [--gateway HOST:PORT]
                       [--context NAME] [--namespace NS] [--command PATH]
                       [--out FILE]

Writes a kubeconfig that reaches kubernetes connection NAME through the
gateway's Kubernetes listener: its server is https://HOST:PORT/k8s/NAME with
the gateway's certificate as certificate-authority-data, and its user runs
"gatehouse token --exec-credential" as a kubectl exec credential plugin, so
kubectl gets a fresh credential itself for each run:
  - an OIDC access token (client credentials) when GATEHOUSE_OIDC_ISSUER,
    GATEHOUSE_CLIENT_ID and GATEHOUSE_CLIENT_SECRET are set where kubectl
    runs (see gatehouse token --help);
  - else the identity's access key from GATEHOUSE_ACCESS_KEY.
No secret is written into the file.

  KUBECONFIG=agent.kubeconfig kubectl get pods -A

Options:
  --connection NAME   the kubernetes connection to reach (required)
  --identity NAME     the identity kubectl acts as (default: your login name)
  --gateway HOST:PORT where clients reach the Kubernetes listener (default:
                      its listen.kubernetes address; a wildcard address is
                      replaced by the API's host name)
  --context NAME      the kubeconfig context's name (default: the connection's)
  --namespace NS      the context's default namespace
  --command PATH      the gatehouse command kubectl runs (default: gatehouse,
                      found on PATH)
  --out FILE          write the file (mode 0600) instead of printing it
  --api URL           the gateway's API (default: the one started from this
                      directory, found in DATA_DIR/gateway.json; or
                      GATEHOUSE_GATEWAY_URL)
  --data-dir DIR      where to look for it (default ./data)
  --ca FILE           PEM CA of the API's certificate (or GATEHOUSE_CA)
The admin token comes from GATEHOUSE_ADMIN_TOKEN, else DATA_DIR/admin-token.`;

export async function kubeconfigCommand(ctx: CommandContext): Promise<number> {
  const { values } = parseCommand(ctx.argv, {
    connection: { type: "string" },
    identity: { type: "string" },
    gateway: { type: "string" },
    context: { type: "string" },
    namespace: { type: "string" },
    command: { type: "string" },
    out: { type: "string" },
    api: { type: "string" },
    "data-dir": { type: "string" },
    ca: { type: "string" },
  });
  if (values.help) {
    write(ctx.stdout, KUBECONFIG_HELP);
    return 0;
  }
  if (!values.connection) throw new UsageError("kubeconfig needs --connection NAME");
  const identity = values.identity ?? userInfo().username;
  if (!/^[A-Za-z0-9][A-Za-z0-9._@-]{0,62}$/.test(identity)) throw new UsageError(`--identity: "${identity}" is not an identity name`);
  const given = values.gateway === undefined ? undefined : parseHostPort(values.gateway, "--gateway");
  const client = new ApiClient(resolveApiTarget({ gateway: values.api, dataDir: values["data-dir"], ca: values.ca, env: ctx.env }));
  const endpoint = await client.kubernetesEndpoint();
  const at = given ?? reachableAddress(endpoint.listen, client.url, "listen.kubernetes");
  const text = kubeconfigFor({
    connection: values.connection,
    identity,
    host: at.host,
    port: at.port,
    endpoint,
    context: values.context ?? values.connection,
    ...(values.namespace ? { namespace: values.namespace } : {}),
    command: values.command ?? "gatehouse",
  });
  if (values.out) {
    writeFileSync(values.out, text, { mode: 0o600 });
    write(ctx.stderr, `wrote ${values.out}: KUBECONFIG=${values.out} kubectl get pods -A`);
  } else {
    write(ctx.stdout, text.trimEnd());
  }
  return 0;
}

/** The kubeconfig (YAML) for one connection and identity (pure, for tests). */
export function kubeconfigFor(options: {
  connection: string;
  identity: string;
  host: string;
  port: number;
  endpoint: Pick<KubernetesEndpoint, "certificatePem" | "pathPrefix">;
  context: string;
  namespace?: string;
  command: string;
}): string {
  const host = options.host.includes(":") ? `[${options.host}]` : options.host;
  const server = `https://${host}:${options.port}${options.endpoint.pathPrefix}${encodeURIComponent(options.connection)}`;
  const cluster = `gatehouse-${options.connection}`;
  const user = `gatehouse-${options.identity}`;
  const config = {
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: cluster, cluster: { server, "certificate-authority-data": Buffer.from(options.endpoint.certificatePem).toString("base64") } }],
    users: [
      {
        name: user,
        user: {
          exec: {
            apiVersion: "client.authentication.k8s.io/v1",
            command: options.command,
            args: ["token", "--exec-credential", "--identity", options.identity],
            interactiveMode: "Never",
            provideClusterInfo: false,
            installHint: "gatehouse is the gatehouse CLI (packages/cli); set GATEHOUSE_ACCESS_KEY, or the GATEHOUSE_OIDC_* and GATEHOUSE_CLIENT_* variables of gatehouse token",
          },
        },
      },
    ],
    contexts: [{ name: options.context, context: { cluster, user, ...(options.namespace ? { namespace: options.namespace } : {}) } }],
    "current-context": options.context,
  };
  return `# gatehouse: connection ${options.connection} as identity ${options.identity}, through the gateway at ${host}:${options.port}\n${stringify(config)}`;
}

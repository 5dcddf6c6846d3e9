import { userInfo } from "node:os";
import { ApiClient, resolveApiTarget, type SshHostKey } from "./api-client.js";
import { parseCommand, UsageError, write, type CommandContext } from "./command.js";

export const SSH_CONFIG_HELP = `Usage:
  gatehouse ssh-config --connection NAME [--identity NAME] [--host ALIAS]
                       [--gateway HOST:PORT] [--key FILE] [--json]

Prints an OpenSSH "Host" block that reaches connection NAME through the
gateway's SSH listener, and the known_hosts line of the gateway's host key.
Put the block in ~/.ssh/config and the line in ~/.ssh/known_hosts; then
"ssh ALIAS", "scp FILE ALIAS:", "sftp ALIAS", "rsync -e ssh ... ALIAS:" and
"ssh -L ... ALIAS" go through the gateway with no wrapper. The block sets
StrictHostKeyChecking yes: ssh never trusts the gateway's key on first use.

Options:
  --connection NAME   the connection to reach (required)
  --identity NAME     the identity to log in as (default: your login name, as
                      ssh itself defaults the user)
  --host ALIAS        the Host alias (default: the connection's name)
  --gateway HOST:PORT where clients reach the gateway's SSH listener (default:
                      its listen.ssh address; a wildcard address is replaced by
                      the API's host name)
  --key FILE          the private key to offer (IdentityFile, IdentitiesOnly)
  --json              print { config, knownHosts, fingerprint, hostName, port, user }
  --api URL           the gateway's API (default: the one started from this
                      directory, found in DATA_DIR/gateway.json; or
                      GATEHOUSE_GATEWAY_URL)
  --data-dir DIR      where to look for it (default ./data)
  --ca FILE           PEM CA of the API's certificate (or GATEHOUSE_CA)
The admin token comes from GATEHOUSE_ADMIN_TOKEN, else DATA_DIR/admin-token.`;

/** What ssh_config takes unquoted: no spaces, no patterns, no quotes. */
const PLAIN_WORD = /^[A-Za-z0-9._@%+:\-[\]]+$/;

export interface SshClientConfig {
  config: string;
  knownHosts: string;
  fingerprint: string;
  hostName: string;
  port: number;
  user: string;
}

export async function sshConfigCommand(ctx: CommandContext): Promise<number> {
  const { values } = parseCommand(ctx.argv, {
    connection: { type: "string" },
    identity: { type: "string" },
    host: { type: "string" },
    gateway: { type: "string" },
    key: { type: "string" },
    json: { type: "boolean" },
    api: { type: "string" },
    "data-dir": { type: "string" },
    ca: { type: "string" },
  });
  if (values.help) {
    write(ctx.stdout, SSH_CONFIG_HELP);
    return 0;
  }
  if (!values.connection) throw new UsageError("ssh-config needs --connection NAME");
  const identity = values.identity ?? userInfo().username;
  const alias = values.host ?? values.connection;
  for (const [flag, value] of [["--connection", values.connection], ["--identity", identity], ["--host", alias]] as const) {
    if (!PLAIN_WORD.test(value) || /[[\]:]/.test(value)) throw new UsageError(`${flag}: "${value}" cannot be written in an ssh config (letters, digits, '.', '_', '@', '-' only)`);
  }
  if (values.key !== undefined && /[\s"]/.test(values.key)) throw new UsageError(`--key: "${values.key}" has a space or a quote; give a path without`);
  const given = values.gateway === undefined ? undefined : parseHostPort(values.gateway, "--gateway");
  const client = new ApiClient(resolveApiTarget({ gateway: values.api, dataDir: values["data-dir"], ca: values.ca, env: ctx.env }));
  const hostKey = await client.sshHostKey();
  const at = given ?? reachableAddress(hostKey.listen, client.url, "listen.ssh");
  const out = sshClientConfig({ alias, connection: values.connection, identity, hostName: at.host, port: at.port, hostKey, ...(values.key === undefined ? {} : { keyFile: values.key }) });
  if (values.json) write(ctx.stdout, JSON.stringify(out, null, 2));
  else write(ctx.stdout, `${out.config}\n\n# known_hosts (add to ~/.ssh/known_hosts):\n${out.knownHosts}`);
  return 0;
}

/** The Host block and known_hosts line for one connection (pure, for tests and the API alike). */
export function sshClientConfig(options: {
  alias: string;
  connection: string;
  identity: string;
  hostName: string;
  port: number;
  hostKey: Pick<SshHostKey, "publicKey" | "fingerprint">;
  keyFile?: string;
}): SshClientConfig {
  const user = `${options.identity}@${options.connection}`;
  const lines = [
    `# gatehouse: connection ${options.connection} as identity ${options.identity}, through the gateway at ${hostPort(options.hostName, options.port)}`,
    `Host ${options.alias}`,
    `    HostName ${options.hostName}`,
    `    Port ${options.port}`,
    `    User ${user}`,
    ...(options.keyFile === undefined ? [] : [`    IdentityFile ${options.keyFile}`, "    IdentitiesOnly yes"]),
    `    # The gateway's host key is ${options.hostKey.fingerprint}: ssh checks it against the known_hosts`,
    "    # line printed with this block (kept in ~/.ssh/known_hosts, or in a file named here by",
    "    # UserKnownHostsFile), and refuses a gateway without it rather than trust it on first use.",
    "    StrictHostKeyChecking yes",
  ];
  // ssh looks the host up as "[host]:port" unless the port is 22, in lower case.
  const host = options.hostName.toLowerCase();
  const knownHostsName = options.port === 22 ? host : `[${host}]:${options.port}`;
  const keyLine = options.hostKey.publicKey.trim().split(/\s+/).slice(0, 2).join(" ");
  return { config: lines.join("\n"), knownHosts: `${knownHostsName} ${keyLine}`, fingerprint: options.hostKey.fingerprint, hostName: options.hostName, port: options.port, user };
}

/**
 * A listener's address as configured (`listen`: "host:port"), its wildcard host replaced by the host
 * clients already reach the API at. `key` names the setting for an error (listen.ssh, listen.kubernetes).
 */
export function reachableAddress(listenText: string, apiUrl: string, key: string): { host: string; port: number } {
  const listen = parseHostPort(listenText, `the gateway's ${key}`);
  if (listen.host === "" || listen.host === "0.0.0.0" || listen.host === "::") {
    return { host: new URL(apiUrl).hostname.replace(/^\[(.*)\]$/, "$1"), port: listen.port };
  }
  return listen;
}

/** "host:port", "[v6]:port", or "host" (port 22). */
export function parseHostPort(text: string, what: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]*))(?::(\d{1,5}))?$/.exec(text.trim());
  const host = match?.[1] ?? match?.[2];
  const port = match?.[3] === undefined ? 22 : Number(match[3]);
  if (!match || host === undefined || port < 1 || port > 65_535 || (host === "" && match[3] === undefined)) {
    throw new UsageError(`${what}: expected HOST:PORT, got "${text}"`);
  }
  return { host, port };
}

function hostPort(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

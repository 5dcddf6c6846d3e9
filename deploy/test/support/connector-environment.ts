import { ConnectorError, parseConnectorSettings, resolveCredential, type ConnectorSettings } from "@gatehouse/connector";
import { sha256Hex, type ConnectionConfig, type GatewayConfig } from "@gatehouse/gateway";

// What a deployment file gives a connector (its arguments and environment), checked with the
// connector's own settings parser and credential resolver against the gateway config it serves:
// the settings parse; every GATEHOUSE_* variable is one the connector reads; its token is the one the
// gateway holds the hash of; its allow-list admits every target of its connections; and each of
// those connections' credentials resolves here, while no other variable is set for nothing.

/** A value no connector setting accepts: any variable the connector reads is then named in a problem. */
const GARBAGE = "\u0001not-a-valid-value";

export interface ConnectorCheck {
  problems: string[];
  /** The parsed settings, when they parse. */
  settings?: ConnectorSettings;
  /** The connections of the gateway config this connector serves (by name). */
  connections: ConnectionConfig[];
}

/**
 * `args` are the arguments after `connector`; `env` the container's environment with every path
 * already mapped to where the container's files are here (`localPath` maps a `file:` credential's).
 */
export async function checkConnector(
  args: readonly string[],
  env: Record<string, string>,
  config: GatewayConfig,
  localPath: (containerPath: string) => string,
): Promise<ConnectorCheck> {
  const problems: string[] = [];
  let settings: ConnectorSettings;
  try {
    settings = parseConnectorSettings(args, env);
  } catch (error) {
    if (!(error instanceof ConnectorError)) throw error;
    return { problems: error.problems.length > 0 ? [...error.problems] : [error.message], connections: [] };
  }

  for (const name of Object.keys(env).filter((n) => n.startsWith("GATEHOUSE_"))) {
    const named = problemsWith(args, { ...env, [name]: GARBAGE }).some((p) => p.includes(name));
    if (!named) problems.push(`${name}: the connector does not read this variable (a value it cannot take went unnoticed)`);
  }

  // A name may be listed with several hashes (a token rotation): the token must match one of them.
  const registered = config.connectors.filter((c) => c.name === settings.name);
  if (registered.length === 0) problems.push(`the connector's name "${settings.name}" is not in the gateway's connectors`);
  else if (!registered.some((c) => c.tokenSha256.toLowerCase() === sha256Hex(settings.token))) {
    problems.push(`the connector's token does not hash to any tokenSha256 of "${settings.name}" in the gateway config`);
  }

  const connections = config.connections.filter((c) => c.connector === settings.name);
  const referenced = new Set<string>();
  for (const connection of connections) {
    const { host, port } = connection.target;
    if (!settings.allow.match({ host, port })) problems.push(`connection ${connection.name}: ${host}:${port} is not on the connector's allow-list`);
    for (const ref of [connection.credential?.password, connection.credential?.privateKey]) {
      if (ref === undefined) continue;
      if (ref.startsWith("env:")) referenced.add(ref.slice("env:".length));
      const local = ref.startsWith("file:") ? `file:${localPath(ref.slice("file:".length))}` : ref;
      try {
        await resolveCredential(local, env);
      } catch (error) {
        problems.push(`connection ${connection.name}: ${(error as Error).message}`);
      }
    }
  }
  for (const name of Object.keys(env).filter((n) => !n.startsWith("GATEHOUSE_"))) {
    if (!referenced.has(name)) problems.push(`${name}: set for the connector, but no connection of "${settings.name}" has a credential env:${name}`);
  }
  return { problems, settings, connections };
}

function problemsWith(args: readonly string[], env: Record<string, string>): readonly string[] {
  try {
    parseConnectorSettings(args, env);
    return [];
  } catch (error) {
    if (error instanceof ConnectorError) return error.problems;
    throw error;
  }
}

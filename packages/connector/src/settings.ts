import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { parseArgs } from "node:util";
import { parse as parseYaml } from "yaml";
import type { AllowList } from "./allow-list.js";
import { BACKOFF_DEFAULTS } from "./backoff.js";
import { ConnectorError } from "./errors.js";
import {
  configFileSchema,
  givenSettingsSchema,
  LOG_LEVELS,
  SETTINGS_DEFAULTS,
  type ConfigFileKey,
  type LogLevel,
} from "./settings-schema.js";

export { LOG_LEVELS, SETTINGS_DEFAULTS, TUNNEL_PATH } from "./settings-schema.js";
export type { LogLevel } from "./settings-schema.js";

/**
 * Everything the connector is configured with, read once at start by `parseConnectorSettings` (the only code
 * that reads the environment or the config file) and passed down typed.
 */
export interface ConnectorSettings {
  /** The first tunnel endpoint: ws(s)://host[:port][/base]/v1/tunnel (`gatewayUrls[0]`). */
  readonly gatewayUrl: URL;
  /**
   * Every gateway this connector holds a tunnel to (at least one, no duplicates). A URL whose host is a name
   * gets one tunnel per address the name resolves to (see `resolveIntervalMs`).
   */
  readonly gatewayUrls: readonly URL[];
  /**
   * How often each gateway name is resolved again, in ms: new addresses get a tunnel, vanished ones are drained.
   * 0: no fan-out; each URL gets one tunnel that dials the name (resolved by each dial).
   */
  readonly resolveIntervalMs: number;
  /** Sent as `Gatehouse-Connector`; the gateway matches it with the token. */
  readonly name: string;
  /** Sent as `Authorization: Bearer`; never logged. */
  readonly token: string;
  readonly allow: AllowList;
  /** PEM to trust for the gateway's certificate instead of the system CAs; null = system CAs. */
  readonly gatewayCa: string | null;
  /** How long a drain (SIGTERM) waits for open streams before closing them, in ms. */
  readonly drainTimeoutMs: number;
  /** How long a dialer may take to reach a target (TCP connect), in ms. */
  readonly dialTimeoutMs: number;
  readonly logLevel: LogLevel;
  /** Reconnect backoff, in ms (not exposed as options; see backoff.ts). */
  readonly backoff: { readonly baseMs: number; readonly capMs: number; readonly resetAfterMs: number };
  /** The environment `env:NAME` credential references are resolved from. */
  readonly credentialEnv: Readonly<Record<string, string | undefined>>;
}

/** One option as it can be given: a flag, a variable, a config-file key. */
const OPTIONS = {
  gateway: { flag: "gateway", env: "GATEHOUSE_GATEWAY_URL" },
  name: { flag: "name", env: "GATEHOUSE_CONNECTOR_NAME" },
  token: { flag: "token", env: "GATEHOUSE_CONNECTOR_TOKEN" },
  tokenFile: { flag: "token-file", env: "GATEHOUSE_CONNECTOR_TOKEN_FILE" },
  allow: { flag: "allow", env: "GATEHOUSE_ALLOW" },
  ca: { flag: "ca", env: "GATEHOUSE_GATEWAY_CA" },
  drainTimeout: { flag: "drain-timeout", env: "GATEHOUSE_DRAIN_TIMEOUT" },
  dialTimeout: { flag: "dial-timeout", env: "GATEHOUSE_DIAL_TIMEOUT" },
  resolveInterval: { flag: "resolve-interval", env: "GATEHOUSE_RESOLVE_INTERVAL" },
  logLevel: { flag: "log-level", env: "GATEHOUSE_LOG_LEVEL" },
} as const satisfies Record<ConfigFileKey, { flag: string; env: string }>;
type Key = ConfigFileKey;
const CONFIG_OPTION = { flag: "config", env: "GATEHOUSE_CONNECTOR_CONFIG" } as const;

/** The `--help` text of `gatehouse connector`. */
export const CONNECTOR_HELP = `Usage: gatehouse connector [options]

Runs a connector: dials out to the gateway over one WebSocket and serves the streams it opens by
connecting to targets on the allow-list with credentials resolved here. Every option can also be
given as an environment variable or as a key in the --config file (flags > environment > file).

  --gateway URL          GATEHOUSE_GATEWAY_URL        gateway base URL, https:// or wss:// (ws:// or
                                                      http:// only to a loopback host); /v1/tunnel is
                                                      appended. Repeat it (or separate URLs with
                                                      commas) for several gateways: a tunnel to each.
                                                      A name resolving to several addresses gets a
                                                      tunnel per address. Required.
  --name NAME            GATEHOUSE_CONNECTOR_NAME     this connector's name at the gateway. Required.
  --token TOKEN          GATEHOUSE_CONNECTOR_TOKEN    the connector token (prefer the variable or
                                                      --token-file: flags show in ps).
  --token-file PATH      GATEHOUSE_CONNECTOR_TOKEN_FILE  file holding the token. One of the two is required.
  --allow LIST           GATEHOUSE_ALLOW              comma-separated host:port targets this connector
                                                      may dial (repeatable). host: name, IP, CIDR or *;
                                                      IPv6 in brackets. port: N, A-B or *. Required.
  --ca PATH              GATEHOUSE_GATEWAY_CA         PEM CA to trust for the gateway's certificate
                                                      instead of the system CAs. Default: system CAs.
  --drain-timeout SEC    GATEHOUSE_DRAIN_TIMEOUT      on SIGTERM/SIGINT, how long to let open streams
                                                      finish. Default: ${SETTINGS_DEFAULTS.drainTimeoutSeconds}.
  --dial-timeout SEC     GATEHOUSE_DIAL_TIMEOUT       how long to wait for a target to accept a
                                                      connection. Default: ${SETTINGS_DEFAULTS.dialTimeoutSeconds}.
  --resolve-interval SEC GATEHOUSE_RESOLVE_INTERVAL   how often gateway names are resolved again (new
                                                      addresses get a tunnel, vanished ones are
                                                      drained); 0 dials each name as given, one tunnel
                                                      per URL. Default: ${SETTINGS_DEFAULTS.resolveIntervalSeconds}.
  --log-level LEVEL      GATEHOUSE_LOG_LEVEL          ${LOG_LEVELS.join(", ")}. Default: ${SETTINGS_DEFAULTS.logLevel}.
  --config PATH          GATEHOUSE_CONNECTOR_CONFIG   YAML file with the keys gateway (a URL or a
                                                      list), name, token, tokenFile, allow (a list),
                                                      ca, drainTimeout, dialTimeout, resolveInterval,
                                                      logLevel.
  -h, --help                                          print this help.
`;

/** A value and where it came from, so errors can name the flag, the variable or the key. */
interface Sourced<T> {
  value: T;
  label: string;
  /** Directory relative paths are resolved against (the config file's, else the working directory). */
  baseDir: string;
}

type Layer = Partial<Record<Key, Sourced<string | string[]>>>;

/** The input of `givenSettingsSchema`: the chosen value of each option that was given, as text. */
interface Given {
  gateway?: string[];
  name?: string;
  token?: { from: "value"; value: string } | { from: "file"; path: string };
  allow?: string[];
  ca?: string;
  drainTimeout?: string;
  dialTimeout?: string;
  resolveInterval?: string;
  logLevel?: string;
}

/**
 * Reads the connector's settings from its arguments (after the `connector` subcommand), its environment and
 * the optional config file, and validates them with `givenSettingsSchema`. Throws a CONFIG_INVALID
 * ConnectorError whose `problems` list every bad or missing option by flag, variable or key; the token never
 * appears in a message.
 */
export function parseConnectorSettings(argv: readonly string[], env: NodeJS.ProcessEnv): ConnectorSettings {
  const problems: string[] = [];
  const cwd = process.cwd();

  const flags = readFlags(argv, cwd, problems);
  const fromEnv = readEnv(env, cwd);
  const configPath = flags.config ?? envValue(env, CONFIG_OPTION.env, cwd);
  const fromFile = configPath === undefined ? {} : readConfigFile(configPath, problems);

  const { given, labels, reported } = pickGiven([flags.layer, fromEnv, fromFile], problems);
  const result = givenSettingsSchema.safeParse(given);
  if (!result.success) {
    for (const issue of result.error.issues) {
      const key = issue.path[0] as Key;
      if (reported.has(key)) continue;
      problems.push(given[key as keyof Given] === undefined ? requiredProblem(key) : `${labels[key]}: ${issue.message}`);
    }
  }
  if (!result.success || problems.length > 0) {
    throw new ConnectorError("CONFIG_INVALID", `invalid connector settings:\n  - ${problems.join("\n  - ")}`, {
      problems,
    });
  }
  const settings = result.data;
  return {
    gatewayUrl: settings.gateway[0]!,
    gatewayUrls: settings.gateway,
    resolveIntervalMs: settings.resolveInterval,
    name: settings.name,
    token: settings.token,
    allow: settings.allow,
    gatewayCa: settings.ca ?? null,
    drainTimeoutMs: settings.drainTimeout,
    dialTimeoutMs: settings.dialTimeout,
    logLevel: settings.logLevel,
    backoff: { ...BACKOFF_DEFAULTS },
    credentialEnv: env,
  };
}

/**
 * One value per option from the layers, flags > environment > file, option by option, with the label of where
 * it came from. token and tokenFile are one choice: the highest layer that sets either decides, so a file's
 * token does not shadow a token-file flag. Paths are resolved against the directory of where they were given.
 */
function pickGiven(
  layers: readonly Layer[],
  problems: string[],
): { given: Given; labels: Partial<Record<Key, string>>; reported: Set<Key> } {
  const given: Given = {};
  const labels: Partial<Record<Key, string>> = {};
  const reported = new Set<Key>();
  const pick = (key: Key): Sourced<string | string[]> | undefined => layers.find((l) => l[key] !== undefined)?.[key];
  const text = (value: string | string[]): string => ([] as string[]).concat(value).join(",");
  for (const key of ["gateway", "name", "allow", "ca", "drainTimeout", "dialTimeout", "resolveInterval", "logLevel"] as const) {
    const found = pick(key);
    if (found === undefined) continue;
    labels[key] = found.label;
    if (key === "allow" || key === "gateway") given[key] = ([] as string[]).concat(found.value);
    else if (key === "ca") given.ca = resolve(found.baseDir, text(found.value));
    else given[key] = text(found.value);
  }
  const tokenLayer = layers.find((l) => l.token !== undefined || l.tokenFile !== undefined);
  const token = tokenLayer?.token;
  const tokenFile = tokenLayer?.tokenFile;
  if (token !== undefined && tokenFile !== undefined) {
    problems.push(`${token.label} and ${tokenFile.label}: give the token one way, not both`);
    reported.add("token");
  } else if (token !== undefined) {
    labels.token = token.label;
    given.token = { from: "value", value: text(token.value) };
  } else if (tokenFile !== undefined) {
    labels.token = tokenFile.label;
    given.token = { from: "file", path: resolve(tokenFile.baseDir, text(tokenFile.value)) };
  }
  return { given, labels, reported };
}

function requiredProblem(key: Key): string {
  if (key === "token" || key === "tokenFile") {
    return `a connector token is required: --token / ${OPTIONS.token.env} / "token", or --token-file / ${OPTIONS.tokenFile.env} / "tokenFile"`;
  }
  return `--${OPTIONS[key].flag} / ${OPTIONS[key].env} / "${key}" in the config file is required`;
}

function readFlags(
  argv: readonly string[],
  cwd: string,
  problems: string[],
): { layer: Layer; config: Sourced<string> | undefined } {
  const options = {
    ...Object.fromEntries(
      Object.values(OPTIONS).map((o) => [o.flag, { type: "string" as const, multiple: o.flag === "allow" || o.flag === "gateway" }]),
    ),
    [CONFIG_OPTION.flag]: { type: "string" as const },
    help: { type: "boolean" as const, short: "h" },
  };
  let values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  try {
    values = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    // parseArgs explains unknown options, missing values and stray arguments well; keep its words.
    problems.push((err as Error).message);
    return { layer: {}, config: undefined };
  }
  const layer: Layer = {};
  for (const key of Object.keys(OPTIONS) as Key[]) {
    const v = values[OPTIONS[key].flag];
    if (v === undefined || typeof v === "boolean") continue;
    const value = Array.isArray(v) ? v.map(String) : v;
    layer[key] = { value, label: `--${OPTIONS[key].flag}`, baseDir: cwd };
  }
  const config = values[CONFIG_OPTION.flag];
  return {
    layer,
    config: typeof config === "string" ? { value: config, label: `--${CONFIG_OPTION.flag}`, baseDir: cwd } : undefined,
  };
}

function envValue(env: NodeJS.ProcessEnv, name: string, cwd: string): Sourced<string> | undefined {
  const value = env[name];
  // An empty variable counts as unset: that is what `FOO= cmd` and most orchestrators mean by it.
  return value === undefined || value === "" ? undefined : { value, label: name, baseDir: cwd };
}

function readEnv(env: NodeJS.ProcessEnv, cwd: string): Layer {
  const layer: Layer = {};
  for (const key of Object.keys(OPTIONS) as Key[]) {
    const found = envValue(env, OPTIONS[key].env, cwd);
    if (found !== undefined) layer[key] = found;
  }
  return layer;
}

function readConfigFile(source: Sourced<string>, problems: string[]): Layer {
  const path = resolve(source.baseDir, source.value);
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    problems.push(`${source.label}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    return {};
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    problems.push(`${path}: not valid YAML: ${(err as Error).message}`);
    return {};
  }
  if (doc === null || doc === undefined) return {};
  const known = Object.keys(configFileSchema.shape) as Key[];
  const result = configFileSchema.safeParse(doc);
  // A mistyped or unknown key is reported and left out; the file's other keys still count.
  const mistyped = new Set<PropertyKey>();
  for (const issue of result.error?.issues ?? []) {
    const key = issue.path[0];
    if (issue.code === "unrecognized_keys") {
      for (const unknown of issue.keys) problems.push(`"${unknown}" in ${path}: unknown key (known: ${known.join(", ")})`);
    } else if (key === undefined) {
      problems.push(`${path}: ${issue.message}`);
      return {};
    } else {
      mistyped.add(key);
      problems.push(`"${String(key)}" in ${path}: ${issue.message}`);
    }
  }
  const values = doc as Record<string, unknown>;
  const layer: Layer = {};
  for (const key of known) {
    const value = values[key];
    if (value === null || value === undefined || mistyped.has(key)) continue;
    const given = Array.isArray(value) ? value.map(String) : String(value);
    layer[key] = { value: given, label: `"${key}" in ${path}`, baseDir: dirname(path) };
  }
  return layer;
}

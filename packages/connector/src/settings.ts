import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { parseArgs } from "node:util";
import { parse as parseYaml } from "yaml";
import { AllowList, parseAllowEntry, parseIp, type AllowRule } from "./allow-list.js";
import { BACKOFF_DEFAULTS } from "./backoff.js";
import { ConnectorError } from "./errors.js";

/**
 * Everything the connector is configured with, read once at start by `parseConnectorSettings` (the only code
 * that reads the environment or the config file) and passed down typed.
 */
export interface ConnectorSettings {
  /** The tunnel endpoint: ws(s)://host[:port][/base]/v1/tunnel. */
  readonly gatewayUrl: URL;
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

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Defaults of the optional settings, in the settings' own units. */
export const SETTINGS_DEFAULTS = {
  drainTimeoutSeconds: 30,
  dialTimeoutSeconds: 10,
  logLevel: "info",
} as const satisfies { drainTimeoutSeconds: number; dialTimeoutSeconds: number; logLevel: LogLevel };

/** The path appended to the gateway base URL. */
export const TUNNEL_PATH = "/v1/tunnel";

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
  logLevel: { flag: "log-level", env: "GATEHOUSE_LOG_LEVEL" },
} as const;
type Key = keyof typeof OPTIONS;
const CONFIG_OPTION = { flag: "config", env: "GATEHOUSE_CONNECTOR_CONFIG" } as const;

/** The `--help` text of `gatehouse connector`. */
export const CONNECTOR_HELP = `Usage: gatehouse connector [options]

Runs a connector: dials out to the gateway over one WebSocket and serves the streams it opens by
connecting to targets on the allow-list with credentials resolved here. Every option can also be
given as an environment variable or as a key in the --config file (flags > environment > file).

  --gateway URL          GATEHOUSE_GATEWAY_URL        gateway base URL, https:// or wss:// (ws:// or
                                                      http:// only to a loopback host); /v1/tunnel is
                                                      appended. Required.
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
  --log-level LEVEL      GATEHOUSE_LOG_LEVEL          ${LOG_LEVELS.join(", ")}. Default: ${SETTINGS_DEFAULTS.logLevel}.
  --config PATH          GATEHOUSE_CONNECTOR_CONFIG   YAML file with the keys gateway, name, token,
                                                      tokenFile, allow (a list), ca, drainTimeout,
                                                      dialTimeout, logLevel.
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

/**
 * Reads the connector's settings from its arguments (after the `connector` subcommand), its environment and
 * the optional config file. Throws a CONFIG_INVALID ConnectorError whose `problems` list every bad or missing
 * option by flag, variable or key; the token never appears in a message.
 */
export function parseConnectorSettings(argv: readonly string[], env: NodeJS.ProcessEnv): ConnectorSettings {
  const problems: string[] = [];
  const cwd = process.cwd();

  const flags = readFlags(argv, cwd, problems);
  const fromEnv = readEnv(env, cwd);
  const configPath = flags.config ?? envValue(env, CONFIG_OPTION.env, cwd);
  const fromFile = configPath === undefined ? {} : readConfigFile(configPath, problems);

  // flags > environment > file, option by option. token and tokenFile are one choice: the highest layer that
  // sets either decides, so a file's token does not shadow a token-file flag.
  const layers = [flags.layer, fromEnv, fromFile];
  const pick = (key: Key): Sourced<string | string[]> | undefined => layers.find((l) => l[key] !== undefined)?.[key];
  const single = (key: Key): Sourced<string> | undefined => {
    const found = pick(key);
    return found === undefined ? undefined : { ...found, value: ([] as string[]).concat(found.value).join(",") };
  };
  const missing = (key: Key) =>
    problems.push(`--${OPTIONS[key].flag} / ${OPTIONS[key].env} / "${key}" in the config file is required`);

  const gateway = single("gateway");
  let gatewayUrl: URL | null = null;
  if (gateway === undefined) missing("gateway");
  else gatewayUrl = tunnelUrl(gateway, problems);

  const name = single("name");
  if (name === undefined) missing("name");
  else if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(name.value)) {
    problems.push(`${name.label}: "${name.value}" must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit`);
  }

  const token = readToken(layers, problems);

  const allowSource = pick("allow");
  let allow = new AllowList([]);
  if (allowSource === undefined) missing("allow");
  else {
    const entries = ([] as string[]).concat(allowSource.value).flatMap((v) => v.split(",")).map((v) => v.trim());
    const rules: AllowRule[] = [];
    for (const entry of entries.filter((e) => e !== "")) {
      try {
        rules.push(parseAllowEntry(entry));
      } catch (err) {
        problems.push(`${allowSource.label}: ${(err as Error).message}`);
      }
    }
    if (rules.length === 0 && entries.every((e) => e === "")) {
      problems.push(`${allowSource.label}: the allow-list is empty; list the targets this connector may reach (or '*:*')`);
    }
    allow = new AllowList(rules);
  }

  let gatewayCa: string | null = null;
  const ca = single("ca");
  if (ca !== undefined) {
    const path = resolve(ca.baseDir, ca.value);
    const pem = readText(path, ca.label, problems);
    if (pem !== null && !pem.includes("-----BEGIN CERTIFICATE-----")) {
      problems.push(`${ca.label}: ${path} holds no PEM certificate`);
    }
    gatewayCa = pem;
  }

  const drainTimeoutMs = seconds(single("drainTimeout"), SETTINGS_DEFAULTS.drainTimeoutSeconds, problems);
  const dialTimeoutMs = seconds(single("dialTimeout"), SETTINGS_DEFAULTS.dialTimeoutSeconds, problems);
  if (dialTimeoutMs === 0) problems.push(`${single("dialTimeout")?.label}: must be more than 0`);

  const level = single("logLevel");
  let logLevel: LogLevel = SETTINGS_DEFAULTS.logLevel;
  if (level !== undefined) {
    if ((LOG_LEVELS as readonly string[]).includes(level.value)) logLevel = level.value as LogLevel;
    else problems.push(`${level.label}: "${level.value}" is not one of ${LOG_LEVELS.join(", ")}`);
  }

  if (problems.length > 0 || gatewayUrl === null || name === undefined || token === null) {
    throw new ConnectorError("CONFIG_INVALID", `invalid connector settings:\n  - ${problems.join("\n  - ")}`, {
      problems,
    });
  }
  return {
    gatewayUrl,
    name: name.value,
    token,
    allow,
    gatewayCa,
    drainTimeoutMs,
    dialTimeoutMs,
    logLevel,
    backoff: { ...BACKOFF_DEFAULTS },
    credentialEnv: env,
  };
}

function readFlags(
  argv: readonly string[],
  cwd: string,
  problems: string[],
): { layer: Layer; config: Sourced<string> | undefined } {
  const options = {
    ...Object.fromEntries(
      Object.values(OPTIONS).map((o) => [o.flag, { type: "string" as const, multiple: o.flag === "allow" }]),
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
  const text = readText(path, source.label, problems);
  if (text === null) return {};
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    problems.push(`${path}: not valid YAML: ${(err as Error).message}`);
    return {};
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== "object" || Array.isArray(doc)) {
    problems.push(`${path}: expected a mapping of settings at the top level`);
    return {};
  }
  const layer: Layer = {};
  const baseDir = dirname(path);
  for (const [key, value] of Object.entries(doc)) {
    const label = `"${key}" in ${path}`;
    if (!(key in OPTIONS)) {
      problems.push(`${label}: unknown key (known: ${Object.keys(OPTIONS).join(", ")})`);
      continue;
    }
    if (value === null || value === undefined) continue;
    if (key === "allow") {
      if (Array.isArray(value) && value.every((v) => typeof v === "string")) {
        layer.allow = { value: value as string[], label, baseDir };
      } else if (typeof value === "string") {
        layer.allow = { value, label, baseDir };
      } else {
        problems.push(`${label}: expected a list of "host:port" strings`);
      }
      continue;
    }
    const numeric = key === "drainTimeout" || key === "dialTimeout";
    if (typeof value === "string" || (numeric && typeof value === "number")) {
      layer[key as Key] = { value: String(value), label, baseDir };
    } else {
      problems.push(`${label}: expected ${numeric ? "a number of seconds" : "a string"}`);
    }
  }
  return layer;
}

function readText(path: string, label: string, problems: string[]): string | null {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    problems.push(`${label}: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
    return null;
  }
}

function readToken(layers: Layer[], problems: string[]): string | null {
  const layer = layers.find((l) => l.token !== undefined || l.tokenFile !== undefined);
  if (layer === undefined) {
    problems.push(
      `a connector token is required: --token / ${OPTIONS.token.env} / "token", or --token-file / ${OPTIONS.tokenFile.env} / "tokenFile"`,
    );
    return null;
  }
  const { token, tokenFile } = layer;
  if (token !== undefined && tokenFile !== undefined) {
    problems.push(`${token.label} and ${tokenFile.label}: give the token one way, not both`);
    return null;
  }
  let value: string;
  let label: string;
  if (token !== undefined) {
    value = String(token.value);
    label = token.label;
  } else if (tokenFile !== undefined) {
    const path = resolve(tokenFile.baseDir, String(tokenFile.value));
    const text = readText(path, tokenFile.label, problems);
    if (text === null) return null;
    value = text.replace(/(?:\r?\n)+$/, "");
    label = `${tokenFile.label} (${path})`;
  } else {
    return null;
  }
  // It travels in an HTTP header: printable ASCII without spaces. The value itself is never echoed.
  if (!/^[\x21-\x7e]+$/.test(value)) {
    problems.push(`${label}: the token must be non-empty printable ASCII without spaces`);
    return null;
  }
  return value;
}

function seconds(source: Sourced<string> | undefined, fallback: number, problems: string[]): number {
  if (source === undefined) return fallback * 1000;
  if (!/^\d+(?:\.\d+)?$/.test(source.value.trim())) {
    problems.push(`${source.label}: "${source.value}" is not a number of seconds`);
    return fallback * 1000;
  }
  return Math.round(Number(source.value) * 1000);
}

/** The tunnel URL for a gateway base URL; ws:// only to a loopback host. */
function tunnelUrl(source: Sourced<string>, problems: string[]): URL | null {
  let url: URL;
  try {
    url = new URL(source.value);
  } catch {
    problems.push(`${source.label}: "${source.value}" is not a URL (expected e.g. https://gateway.example.com)`);
    return null;
  }
  const schemes: Record<string, "ws:" | "wss:"> = { "http:": "ws:", "ws:": "ws:", "https:": "wss:", "wss:": "wss:" };
  const scheme = schemes[url.protocol];
  if (scheme === undefined) {
    problems.push(`${source.label}: unsupported scheme ${url.protocol} (use https:// or wss://)`);
    return null;
  }
  if (url.username !== "" || url.password !== "") {
    problems.push(`${source.label}: the URL must not carry credentials; use the token options`);
    return null;
  }
  if (url.search !== "" || url.hash !== "") {
    problems.push(`${source.label}: the URL must not have a query or fragment`);
    return null;
  }
  if (scheme === "ws:" && !isLoopback(url.hostname)) {
    problems.push(
      `${source.label}: ${url.protocol}// is unencrypted and only allowed to a loopback host; use wss:// (or https://) for ${url.hostname}`,
    );
    return null;
  }
  const tunnel = new URL(url.href);
  tunnel.protocol = scheme;
  const base = tunnel.pathname.replace(/\/+$/, "");
  tunnel.pathname = base.endsWith(TUNNEL_PATH) ? base : `${base}${TUNNEL_PATH}`;
  return tunnel;
}

function isLoopback(hostname: string): boolean {
  const host = hostname.startsWith("[") ? hostname.slice(1, -1) : hostname;
  if (host === "localhost") return true;
  const ip = parseIp(host);
  if (ip === null) return false;
  return ip.family === "ipv4" ? ip.address.startsWith("127.") : ip.address === "::1";
}

import { readFileSync } from "node:fs";
import { z } from "zod";
import { AllowList, parseAllowEntry, parseIp, type AllowRule } from "./allow-list.js";

// The connector's settings as zod schemas, in the gateway config's style: one schema per value, defaults here,
// messages that say what is wrong with the value. Where a value came from (flag, variable or config-file key)
// is settings.ts' business: it prefixes each message with that label.

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Defaults of the optional settings, in the settings' own units. */
export const SETTINGS_DEFAULTS = {
  drainTimeoutSeconds: 30,
  dialTimeoutSeconds: 10,
  resolveIntervalSeconds: 30,
  logLevel: "info",
} as const satisfies { drainTimeoutSeconds: number; dialTimeoutSeconds: number; resolveIntervalSeconds: number; logLevel: LogLevel };

/** The path appended to the gateway base URL. */
export const TUNNEL_PATH = "/v1/tunnel";

/**
 * The keys of the --config YAML file and their types there. Only types are checked here; the values go through
 * `givenSettingsSchema` like flags and variables do. A null value counts as unset.
 */
const fileString = z.string({ error: "expected a string" }).nullish();
const fileSeconds = z.union([z.string(), z.number()], { error: "expected a number of seconds" }).nullish();
export const configFileSchema = z.strictObject(
  {
    gateway: z.union([z.string(), z.array(z.string())], { error: "expected a URL or a list of URLs" }).nullish(),
    name: fileString,
    token: fileString,
    tokenFile: fileString,
    allow: z.union([z.string(), z.array(z.string())], { error: 'expected a list of "host:port" strings' }).nullish(),
    ca: fileString,
    drainTimeout: fileSeconds,
    dialTimeout: fileSeconds,
    resolveInterval: fileSeconds,
    logLevel: fileString,
  },
  { error: "expected a mapping of settings at the top level" },
);
export type ConfigFileKey = keyof typeof configFileSchema.shape;

/** The tunnel URL for a gateway base URL: ws(s)://…/v1/tunnel; ws:// only to a loopback host. */
const gatewayUrl = z.string().transform((text, ctx): URL => {
  const refuse = (message: string): never => {
    ctx.addIssue({ code: "custom", message });
    return z.NEVER;
  };
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return refuse(`"${text}" is not a URL (expected e.g. https://gateway.example.com)`);
  }
  const schemes: Record<string, "ws:" | "wss:"> = { "http:": "ws:", "ws:": "ws:", "https:": "wss:", "wss:": "wss:" };
  const scheme = schemes[url.protocol];
  if (scheme === undefined) return refuse(`unsupported scheme ${url.protocol} (use https:// or wss://)`);
  if (url.username !== "" || url.password !== "") return refuse("the URL must not carry credentials; use the token options");
  if (url.search !== "" || url.hash !== "") return refuse("the URL must not have a query or fragment");
  if (scheme === "ws:" && !isLoopback(url.hostname)) {
    return refuse(
      `${url.protocol}// is unencrypted and only allowed to a loopback host; use wss:// (or https://) for ${url.hostname}`,
    );
  }
  const tunnel = new URL(url.href);
  tunnel.protocol = scheme;
  const base = tunnel.pathname.replace(/\/+$/, "");
  tunnel.pathname = base.endsWith(TUNNEL_PATH) ? base : `${base}${TUNNEL_PATH}`;
  return tunnel;
});

/**
 * One or more gateways (each value may hold several, comma-separated): the connector holds a tunnel to each.
 * The same URL twice counts once. One message per bad entry.
 */
const gatewayUrls = z.array(z.string()).transform((values, ctx): URL[] => {
  const entries = values.flatMap((v) => v.split(",")).map((v) => v.trim()).filter((v) => v !== "");
  if (entries.length === 0) {
    ctx.addIssue({ code: "custom", message: "no gateway URL given" });
    return z.NEVER;
  }
  const urls = new Map<string, URL>();
  let bad = false;
  for (const entry of entries) {
    const parsed = gatewayUrl.safeParse(entry);
    if (parsed.success) urls.set(parsed.data.href, parsed.data);
    else {
      bad = true;
      for (const issue of parsed.error.issues) ctx.addIssue({ code: "custom", message: issue.message });
    }
  }
  return bad ? z.NEVER : [...urls.values()];
});

const connectorName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, {
  error: (issue) => `"${String(issue.input)}" must be 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit`,
});

/**
 * The token, given as a value or as a file (an absolute path) holding it. It travels in an HTTP header, so it
 * must be printable ASCII without spaces; no message ever includes it.
 */
const token = z
  .discriminatedUnion("from", [
    z.object({ from: z.literal("value"), value: z.string() }),
    z.object({ from: z.literal("file"), path: z.string() }),
  ])
  .transform((source, ctx): string => {
    const text = source.from === "value" ? source.value : readText(source.path, ctx);
    if (text === undefined) return z.NEVER;
    const value = source.from === "file" ? text.replace(/(?:\r?\n)+$/, "") : text;
    if (!/^[\x21-\x7e]+$/.test(value)) {
      const where = source.from === "file" ? `${source.path}: ` : "";
      ctx.addIssue({ code: "custom", message: `${where}the token must be non-empty printable ASCII without spaces` });
      return z.NEVER;
    }
    return value;
  });

/** Allow-list entries; each value may hold several, comma-separated. One message per bad entry. */
const allowList = z.array(z.string()).transform((values, ctx): AllowList => {
  const entries = values.flatMap((v) => v.split(",")).map((v) => v.trim());
  if (entries.every((e) => e === "")) {
    ctx.addIssue({ code: "custom", message: "the allow-list is empty; list the targets this connector may reach (or '*:*')" });
    return z.NEVER;
  }
  const rules: AllowRule[] = [];
  for (const entry of entries.filter((e) => e !== "")) {
    try {
      rules.push(parseAllowEntry(entry));
    } catch (err) {
      ctx.addIssue({ code: "custom", message: (err as Error).message });
    }
  }
  return new AllowList(rules);
});

/** A PEM CA file (absolute path) → its text. */
const caPem = z.string().transform((path, ctx): string => {
  const pem = readText(path, ctx);
  if (pem === undefined) return z.NEVER;
  if (!pem.includes("-----BEGIN CERTIFICATE-----")) {
    ctx.addIssue({ code: "custom", message: `${path} holds no PEM certificate` });
    return z.NEVER;
  }
  return pem;
});

/** Seconds as written ("2.5") → milliseconds. */
function seconds(options: { readonly positive: boolean }) {
  return z.string().transform((text, ctx): number => {
    if (!/^\d+(?:\.\d+)?$/.test(text.trim())) {
      ctx.addIssue({ code: "custom", message: `"${text}" is not a number of seconds` });
      return z.NEVER;
    }
    const ms = Math.round(Number(text) * 1000);
    if (options.positive && ms === 0) {
      ctx.addIssue({ code: "custom", message: "must be more than 0" });
      return z.NEVER;
    }
    return ms;
  });
}

/**
 * One value per option, after flags > environment > file; relative paths already resolved against where they
 * were given. Issues come out in this key order, with `path[0]` the option's key.
 */
export const givenSettingsSchema = z.strictObject({
  gateway: gatewayUrls,
  name: connectorName,
  token,
  allow: allowList,
  /** Default: trust the system CAs. */
  ca: caPem.optional(),
  /** On SIGTERM/SIGINT, how long open streams may finish (s → ms). */
  drainTimeout: seconds({ positive: false }).default(SETTINGS_DEFAULTS.drainTimeoutSeconds * 1000),
  /** How long a target may take to accept a connection (s → ms). */
  dialTimeout: seconds({ positive: true }).default(SETTINGS_DEFAULTS.dialTimeoutSeconds * 1000),
  /** How often a gateway name is resolved again for its set of addresses (s → ms); 0: dial the name, no fan-out. */
  resolveInterval: seconds({ positive: false }).default(SETTINGS_DEFAULTS.resolveIntervalSeconds * 1000),
  logLevel: z
    .enum(LOG_LEVELS, { error: (issue) => `"${String(issue.input)}" is not one of ${LOG_LEVELS.join(", ")}` })
    .default(SETTINGS_DEFAULTS.logLevel),
});

function readText(path: string, ctx: z.RefinementCtx): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    ctx.addIssue({ code: "custom", message: `cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? String(err)})` });
    return undefined;
  }
}

function isLoopback(hostname: string): boolean {
  const host = hostname.startsWith("[") ? hostname.slice(1, -1) : hostname;
  if (host === "localhost") return true;
  const ip = parseIp(host);
  if (ip === null) return false;
  return ip.family === "ipv4" ? ip.address.startsWith("127.") : ip.address === "::1";
}

import { readFileSync } from "node:fs";
import { parseDocument } from "yaml";
import type { z } from "zod";
import { GatewayError } from "../errors.js";
import { configSchema, crossReferenceProblems, type GatewayConfig } from "./schema.js";

/** Reads and validates a gateway config file; throws GatewayError naming every bad key. */
export function loadConfigFile(path: string): GatewayConfig {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (cause) {
    throw new GatewayError("CONFIG_UNREADABLE", `cannot read config file ${path}: ${(cause as Error).message}`, { cause });
  }
  return parseConfigText(text, path);
}

export function parseConfigText(text: string, source = "config"): GatewayConfig {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const problems = doc.errors.map((e) => `${source}: ${e.message.split("\n")[0]}`);
    throw new GatewayError("CONFIG_INVALID", `${source} is not valid YAML`, { problems });
  }
  return validateConfig(doc.toJS() ?? {}, source);
}

export function validateConfig(raw: unknown, source = "config"): GatewayConfig {
  const result = configSchema.safeParse(raw, { reportInput: true });
  const problems = [
    ...(result.success ? [] : result.error.issues.flatMap(describeIssue)),
    ...crossReferenceProblems(raw).map((p) => `${formatPath(p.path)}: ${p.message}`),
  ];
  if (result.success && problems.length === 0) return result.data;
  throw new GatewayError("CONFIG_INVALID", `${source} has ${problems.length} problem${problems.length === 1 ? "" : "s"}`, { problems });
}

/** `connections[2].target.port` from ["connections", 2, "target", "port"]. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const part of path) {
    if (typeof part === "number") out += `[${part}]`;
    else out += out === "" ? String(part) : `.${String(part)}`;
  }
  return out || "(top level)";
}

function describeIssue(issue: z.core.$ZodIssue): string[] {
  const at = issue.path;
  switch (issue.code) {
    case "unrecognized_keys":
      return issue.keys.map((key) => `${formatPath([...at, key])}: unknown key`);
    case "invalid_type":
      return [`${formatPath(at)}: ${issue.input === undefined ? "required" : `expected ${article(issue.expected)}, got ${describe(issue.input)}`}`];
    case "invalid_value":
      return [`${formatPath(at)}: expected one of ${issue.values.map((v) => JSON.stringify(v)).join(", ")}`];
    case "too_small":
      return [`${formatPath(at)}: must be at least ${String(issue.minimum)}${issue.origin === "string" ? " characters" : ""}`];
    case "too_big":
      return [`${formatPath(at)}: must be at most ${String(issue.maximum)}`];
    default:
      return [`${formatPath(at)}: ${issue.message}`];
  }
}

function article(type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a map";
  if (typeof value === "string") return `"${value.length > 40 ? `${value.slice(0, 40)}…` : value}"`;
  return String(value);
}

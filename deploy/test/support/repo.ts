import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseDocument } from "yaml";

/** The repository's root (deploy/test/support → ../../..). */
export const REPO_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");

export function repoPath(...parts: string[]): string {
  return join(REPO_ROOT, ...parts);
}

/** A YAML file as plain data; a syntax error or a duplicate key fails with the file's name. */
export function readYamlFile(path: string): unknown {
  const doc = parseDocument(readFileSync(path, "utf8"), { uniqueKeys: true });
  if (doc.errors.length > 0) throw new Error(`${path} is not valid YAML: ${doc.errors.map((e) => e.message).join("; ")}`);
  return doc.toJS();
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

import { readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import type { StoreOptions } from "@gatehouse/store";
import { GatewayError } from "../errors.js";
import type { GatewayConfig } from "./schema.js";

// How the gateway (and `gatehouse verify/retention --config`) opens the store
// a config names. The store's password may stay out of the config file: in
// `store.password` as an `env:NAME` or `file:PATH` reference (the same forms a
// connection's credential takes), or in PGPASSWORD, which the Postgres driver
// reads as libpq does. A reference that cannot be resolved stops the start and
// names the key.

/** The options for openStore: store.url with its password resolved, else the embedded store in DATA_DIR/store. */
export function storeOpenOptions(config: GatewayConfig, env: NodeJS.ProcessEnv): StoreOptions {
  const { url, password, maxConnections } = config.store;
  if (!url) return { dataDir: join(resolve(config.dataDir), "store") };
  return { url, maxConnections, ...(password === undefined ? {} : { password: resolveSecretRef(password, env, "store.password") }) };
}

/** The secret an `env:NAME` or `file:PATH` reference (already validated by the schema) points at. */
export function resolveSecretRef(ref: string, env: NodeJS.ProcessEnv, key: string): string {
  if (ref.startsWith("env:")) {
    const name = ref.slice("env:".length);
    const value = env[name];
    if (!value) throw invalid(key, `the environment variable ${name} is ${value === undefined ? "not set" : "empty"}`);
    return value;
  }
  const path = ref.slice("file:".length);
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (cause) {
    throw invalid(key, `cannot read ${path}: ${(cause as Error).message}`, cause);
  }
  // Files made with `echo` end in a newline that is not part of the secret.
  const value = text.replace(/[\r\n]+$/, "");
  if (value === "") throw invalid(key, `${path} is empty`);
  return value;
}

function invalid(key: string, message: string, cause?: unknown): GatewayError {
  return new GatewayError("CONFIG_INVALID", `${key}: ${message}`, { problems: [`${key}: ${message}`], ...(cause === undefined ? {} : { cause }) });
}

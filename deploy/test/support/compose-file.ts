import { isAbsolute, resolve } from "node:path";
import { isRecord } from "./repo.js";

// The parts of a Compose file the deployment tests look at, read from the parsed YAML in the short and
// long forms the Compose Specification allows.

export interface ComposeService {
  name: string;
  image?: string;
  /** The build context, resolved against the compose file's directory. */
  buildContext?: string;
  /** The Dockerfile, resolved against the build context. */
  dockerfile?: string;
  command?: string[];
  healthcheck?: string[];
  environment: Record<string, string>;
  envFiles: string[];
  volumes: ComposeVolume[];
  ports: string[];
  networkMode?: string;
}

export interface ComposeVolume {
  /** A bind mount's host path (resolved), or a named volume's name. */
  source: string;
  target: string;
  bind: boolean;
}

export function composeServices(compose: unknown, composeDir: string): ComposeService[] {
  const services = isRecord(compose) && isRecord(compose.services) ? compose.services : {};
  return Object.entries(services).map(([name, raw]) => {
    const s = isRecord(raw) ? raw : {};
    const build = typeof s.build === "string" ? { context: s.build } : isRecord(s.build) ? s.build : undefined;
    const context = build ? resolve(composeDir, String(build.context ?? ".")) : undefined;
    return {
      name,
      ...(typeof s.image === "string" ? { image: s.image } : {}),
      ...(context ? { buildContext: context, dockerfile: resolve(context, String(build?.dockerfile ?? "Dockerfile")) } : {}),
      ...(s.command !== undefined ? { command: commandList(s.command) } : {}),
      ...(isRecord(s.healthcheck) && s.healthcheck.test !== undefined ? { healthcheck: healthcheckCommand(s.healthcheck.test) } : {}),
      environment: environment(s.environment),
      envFiles: (Array.isArray(s.env_file) ? s.env_file : s.env_file === undefined ? [] : [s.env_file]).map((f) =>
        resolve(composeDir, typeof f === "string" ? f : String((f as Record<string, unknown>).path)),
      ),
      volumes: (Array.isArray(s.volumes) ? s.volumes : []).map((v) => volume(v, composeDir)),
      ports: (Array.isArray(s.ports) ? s.ports : []).map((p) => (typeof p === "string" || typeof p === "number" ? String(p) : JSON.stringify(p))),
      ...(typeof s.network_mode === "string" ? { networkMode: s.network_mode } : {}),
    };
  });
}

/** The container port of a published port ("127.0.0.1:8009:8009" → 8009). */
export function containerPort(spec: string): number {
  const parts = spec.split("/")[0]!.split(":");
  return Number(parts[parts.length - 1]);
}

/** Every `${VAR}` / `$VAR` the file would interpolate from the host's environment. */
export function interpolatedVariables(text: string): string[] {
  const names = new Set<string>();
  for (const match of text.matchAll(/(?<!\$)\$(?:\{([A-Za-z_][A-Za-z0-9_]*)[^}]*\}|([A-Za-z_][A-Za-z0-9_]*))/g)) names.add(match[1] ?? match[2]!);
  return [...names];
}

function commandList(value: unknown): string[] {
  if (Array.isArray(value)) return value.map(String);
  return String(value).trim().split(/\s+/);
}

/** A healthcheck's test as the command it runs: ["CMD", …] → …; ["CMD-SHELL", "x"] / "x" → ["sh", "-c", "x"]. */
function healthcheckCommand(test: unknown): string[] {
  if (typeof test === "string") return ["sh", "-c", test];
  const list = Array.isArray(test) ? test.map(String) : [];
  if (list[0] === "CMD") return list.slice(1);
  if (list[0] === "CMD-SHELL") return ["sh", "-c", list.slice(1).join(" ")];
  return list;
}

function environment(value: unknown): Record<string, string> {
  if (Array.isArray(value)) {
    return Object.fromEntries(value.map((entry) => {
      const [key, ...rest] = String(entry).split("=");
      return [key!, rest.join("=")];
    }));
  }
  if (!isRecord(value)) return {};
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, v === null || v === undefined ? "" : String(v)]));
}

function volume(value: unknown, composeDir: string): ComposeVolume {
  if (isRecord(value)) {
    const source = String(value.source ?? "");
    const bind = value.type === "bind";
    return { source: bind ? resolve(composeDir, source) : source, target: String(value.target), bind };
  }
  const [source = "", target = ""] = String(value).split(":");
  const bind = source.startsWith(".") || source.startsWith("~") || isAbsolute(source);
  return { source: bind ? resolve(composeDir, source) : source, target, bind };
}

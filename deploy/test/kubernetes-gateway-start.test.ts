import { randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { request } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { createLogger, startGateway, validateConfig, type Gateway } from "@gatehouse/gateway";
import postgres from "postgres";
import { parse } from "yaml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kubectlAvailable, materializeMounts, pathInPod, renderKustomization, type Workload } from "./support/kubernetes-objects.js";
import { repoPath } from "./support/repo.js";

// The gateway pod of deploy/kubernetes, started for real: the config from its ConfigMap and the files
// from its Secrets as the pod would mount them, with only what cannot exist here replaced (listen
// addresses → loopback port 0, the store → a throwaway database on the local Postgres, the data volume →
// a temporary directory). Its probes' endpoints must then answer over the TLS pair from the Secret, to a
// client that trusts only the CA the connector is given and checks the name the connector dials.

const ADMIN_URL = process.env.GATEHOUSE_TEST_STORE_URL ?? "postgres://postgres@127.0.0.1:5432/postgres";

async function postgresAnswers(): Promise<boolean> {
  const sql = postgres(ADMIN_URL, { max: 1, connect_timeout: 3, onnotice: () => {} });
  try {
    await sql`select 1`;
    return true;
  } catch {
    return false;
  } finally {
    await sql.end({ timeout: 1 });
  }
}

const canRun = kubectlAvailable() && (await postgresAnswers());
if (!canRun) console.warn(`deploy/kubernetes gateway start: skipped, needs kubectl and a Postgres at ${ADMIN_URL} (GATEHOUSE_TEST_STORE_URL)`);

describe.skipIf(!canRun)("the gateway of deploy/kubernetes, started with its ConfigMap and Secrets", () => {
  let root: string;
  let database: string;
  let gateway: Gateway;
  let ca: Buffer;
  let serverName: string;

  beforeAll(async () => {
    const objects = renderKustomization(repoPath("deploy", "kubernetes"));
    const statefulSet = objects.find((o): o is Workload => o.kind === "StatefulSet")!;
    const container = statefulSet.spec.template.spec.containers[0]!;
    root = mkdtempSync(join(tmpdir(), "gatehouse-deploy-start-"));
    const problems = materializeMounts(objects, statefulSet.spec.template.spec, container, root);
    if (problems.length > 0) throw new Error(problems.join("\n"));
    const inPod = pathInPod(container, root);
    const args = container.args ?? [];
    const raw = remapPaths(parse(readFileSync(inPod(args[args.indexOf("--config") + 1]!), "utf8")), inPod) as Record<string, unknown>;

    database = `gatehouse_deploy_${randomBytes(5).toString("hex")}`;
    const admin = postgres(ADMIN_URL, { max: 1, onnotice: () => {} });
    await admin.unsafe(`create database ${database}`);
    await admin.end();
    const storeUrl = new URL(ADMIN_URL);
    storeUrl.pathname = `/${database}`;
    const listen = raw.listen as Record<string, string>;
    for (const key of Object.keys(listen)) listen[key] = "127.0.0.1:0";
    raw.store = { ...(raw.store as object), url: storeUrl.toString() };

    const quiet = createLogger("warn", new Writable({ write: (_chunk, _encoding, done) => done() }));
    gateway = await startGateway(validateConfig(raw, "deploy/kubernetes/gateway.yaml"), { logger: quiet, env: {} });

    // What the connector trusts and dials (connector-deployment.yaml).
    const connector = objects.find((o): o is Workload => o.kind === "Deployment")!.spec.template.spec.containers[0]!;
    const env = Object.fromEntries((connector.env ?? []).map((v) => [v.name, v.value ?? ""]));
    serverName = new URL(env.GATEHOUSE_GATEWAY_URL!).hostname;
    const caMap = objects.find((o) => o.kind === "ConfigMap" && o.metadata.name.startsWith("gatehouse-gateway-ca"))!;
    ca = Buffer.from(Object.values(caMap.data as Record<string, string>)[0]!);
  });

  afterAll(async () => {
    await gateway?.close();
    if (database) {
      const admin = postgres(ADMIN_URL, { max: 1, onnotice: () => {} });
      await admin.unsafe(`drop database if exists ${database} with (force)`);
      await admin.end();
    }
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it("answers the liveness and readiness probes over HTTPS with the Secret's certificate, for the name the connector dials", async () => {
    const url = new URL(gateway.apiUrl);
    expect(url.protocol).toBe("https:");
    const get = (path: string) =>
      new Promise<{ status: number; body: unknown }>((resolve, reject) => {
        const req = request({ host: url.hostname, port: url.port, path, ca, servername: serverName }, (res) => {
          let text = "";
          res.on("data", (chunk: Buffer) => (text += chunk.toString("utf8")));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as unknown }));
        });
        req.on("error", reject);
        req.end();
      });
    expect(await get("/healthz")).toEqual({ status: 200, body: { status: "ok" } });
    const ready = await get("/readyz");
    expect(ready.status).toBe(200);
    expect(ready.body).toMatchObject({ status: "ready", checks: { recording: "ok", store: "ok" } });
  });
});

/** Every string under a mount path (a file the config names) → where it was written here; `file:` refs too. */
function remapPaths(value: unknown, inPod: (path: string) => string): unknown {
  if (typeof value === "string") return value.startsWith("file:") ? `file:${inPod(value.slice(5))}` : value.startsWith("/") ? inPod(value) : value;
  if (Array.isArray(value)) return value.map((v) => remapPaths(v, inPod));
  if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, remapPaths(v, inPod)]));
  return value;
}

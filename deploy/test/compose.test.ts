import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { Ajv } from "ajv";
import { loadConfigFile, type GatewayConfig } from "@gatehouse/gateway";
import { utils as sshUtils } from "ssh2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { composeServices, containerPort, interpolatedVariables, type ComposeService } from "./support/compose-file.js";
import { checkConnector } from "./support/connector-environment.js";
import { commandLineProblem, runGatehouse } from "./support/gatehouse-cli.js";
import { readYamlFile, repoPath, REPO_ROOT } from "./support/repo.js";

// docker-compose.yml as far as this machine can check it without a Docker daemon: the Compose
// Specification's schema, every path, image command and variable it names, the gateway config it
// mounts (loaded with the gateway's own loader), the connector's settings (parsed with the
// connector's own parser) and the demo sshd's keys and config (checked with OpenSSH's sshd -t).

const COMPOSE_FILE = repoPath("docker-compose.yml");
const compose = readYamlFile(COMPOSE_FILE);
const services = composeServices(compose, REPO_ROOT);
const service = (name: string): ComposeService => {
  const found = services.find((s) => s.name === name);
  if (!found) throw new Error(`docker-compose.yml has no service ${name}`);
  return found;
};

/** Services built from the repository's Dockerfile: the `gatehouse` image. */
const gatehouseServices = services.filter((s) => s.dockerfile === repoPath("Dockerfile"));

/** The host file mounted at `target` in a service (a bind mount), or undefined. */
function mountedFile(s: ComposeService, target: string): string | undefined {
  return s.volumes.find((v) => v.bind && v.target === target)?.source;
}

/** The gateway config the gateway service runs with: the file bind-mounted where --config points. */
function gatewayConfigPath(): string {
  const command = service("gateway").command ?? [];
  const at = command.indexOf("--config");
  const target = command[at + 1];
  if (at < 0 || !target) throw new Error("the gateway service's command has no --config FILE");
  const source = mountedFile(service("gateway"), target);
  if (!source) throw new Error(`the gateway's --config ${target} is not a file mounted into the service`);
  return source;
}

describe("docker-compose.yml", () => {
  it("is valid against the Compose Specification's JSON schema", () => {
    // Its "$schema" names draft-07 by an https:// URL that ajv does not know by that name (its own
    // draft-07 meta-schema is ajv's default), so it is left out rather than fetched.
    const { $schema: _draft, ...schema } = JSON.parse(readFileSync(join(import.meta.dirname, "schemas", "compose-spec.json"), "utf8")) as Record<string, unknown>;
    const validate = new Ajv({ strict: false, allErrors: true }).compile(schema);
    const valid = validate(compose);
    expect(validate.errors ?? [], "schema errors").toEqual([]);
    expect(valid).toBe(true);
    // The same validator refuses a misspelled key, so a pass above means something.
    expect(validate({ services: { gateway: { imag: "x" } } })).toBe(false);
  });

  it("names only build contexts, Dockerfiles, mounted files and env files that exist", () => {
    const missing: string[] = [];
    for (const s of services) {
      if (!s.image && !s.buildContext) missing.push(`${s.name}: neither image nor build`);
      for (const path of [s.buildContext, s.dockerfile, ...s.envFiles, ...s.volumes.filter((v) => v.bind).map((v) => v.source)]) {
        if (path !== undefined && !existsSync(path)) missing.push(`${s.name}: ${relative(REPO_ROOT, path)}`);
      }
      // What a Dockerfile of ours copies from its context must be there too.
      if (s.dockerfile && existsSync(s.dockerfile) && s.buildContext) {
        for (const source of dockerfileCopySources(s.dockerfile)) {
          if (!existsSync(join(s.buildContext, source))) missing.push(`${s.name}: COPY ${source} (in ${relative(REPO_ROOT, s.buildContext)})`);
        }
      }
    }
    expect(missing).toEqual([]);
    // Every named volume a service mounts is declared.
    const declared = Object.keys((compose as { volumes?: Record<string, unknown> }).volumes ?? {});
    const named = services.flatMap((s) => s.volumes.filter((v) => !v.bind).map((v) => v.source));
    expect(named.filter((n) => !declared.includes(n))).toEqual([]);
  });

  it("takes nothing from the host's environment (no ${VAR} to forget)", () => {
    expect(interpolatedVariables(readFileSync(COMPOSE_FILE, "utf8"))).toEqual([]);
  });

  it("runs the gatehouse image only with real gatehouse command lines, and its healthcheck with the image's node", () => {
    expect(gatehouseServices.map((s) => s.name).sort()).toEqual(["connector", "gateway"]);
    const problems = gatehouseServices.map((s) => commandLineProblem(s.command ?? [])).filter((p) => p !== null);
    expect(problems).toEqual([]);
    // The image is FROM node (Dockerfile's last stage), so `node` is there for the healthcheck.
    expect(lastStageBase(repoPath("Dockerfile"))).toMatch(/^node:/);
    for (const s of gatehouseServices) if (s.healthcheck) expect(["node", "gatehouse"]).toContain(s.healthcheck[0]);
  });

  it("shows in its comments only gatehouse command lines that work", () => {
    const lines = readFileSync(COMPOSE_FILE, "utf8").split("\n").filter((l) => /^#.*docker compose exec .*gatehouse /.test(l));
    expect(lines.length).toBeGreaterThan(0);
    for (const line of lines) {
      const args = line.replace(/^#.*?gatehouse /, "").replace(/<.*$/, "").trim().split(/\s+/);
      expect(commandLineProblem(args), line).toBeNull();
    }
  });

  it("checks command lines for real: a misspelled subcommand or flag is caught", () => {
    expect(commandLineProblem(["gatway", "--config", "x"])).toMatch(/unknown command/);
    expect(commandLineProblem(["gateway", "--confg", "x"])).toMatch(/not a valid command line/);
  });

  it("runs stock images only with the commands those images ship", () => {
    // Not checkable here without pulling the images; each is the image's documented tool.
    const stock: Record<string, string> = { "postgres:16": "pg_isready", "mariadb:11.4": "healthcheck.sh" };
    for (const s of services.filter((x) => x.image)) {
      if (s.command) throw new Error(`${s.name}: a command for a stock image; add it to this test with its source`);
      if (s.healthcheck) expect(s.healthcheck[0], s.name).toBe(stock[s.image!]);
    }
  });

  describe("the gateway service", () => {
    let config: GatewayConfig;
    beforeAll(() => {
      config = loadConfigFile(gatewayConfigPath());
    });

    it("mounts deploy/compose/gateway.yaml, which the gateway's own loader accepts", () => {
      expect(relative(REPO_ROOT, gatewayConfigPath())).toBe(join("deploy", "compose", "gateway.yaml"));
      expect(config.connections.map((c) => `${c.name}:${c.protocol}`)).toEqual(["app:postgres", "app-mysql:mysql", "web:ssh"]);
    });

    it("keeps its data directory on a volume, and publishes every listener on loopback", () => {
      const gateway = service("gateway");
      expect(gateway.volumes.some((v) => !v.bind && (config.dataDir === v.target || config.dataDir.startsWith(`${v.target}/`)))).toBe(true);
      const published = gateway.ports.map(containerPort);
      const listeners = Object.entries(config.listen).filter(([, at]) => at !== undefined);
      for (const [name, at] of listeners) expect(published, `listen.${name}`).toContain(at!.port);
      for (const spec of gateway.ports) expect(spec.startsWith("127.0.0.1:"), spec).toBe(true);
      expect(listeners.map(([name]) => name).sort()).toEqual(["api", "mysql", "postgres", "ssh"]);
    });

    it("is given only variables it reads: store.password's reference, and the CLI's GATEHOUSE_DATA_DIR", () => {
      const env = service("gateway").environment;
      const ref = config.store.password;
      expect(ref).toMatch(/^env:/);
      expect(env[ref!.slice("env:".length)], "the variable store.password names").toBeTruthy();
      // GATEHOUSE_DATA_DIR is what `docker compose exec gateway gatehouse keys …` finds the gateway by:
      // the CLI really reads it (it names the directory it looked in) and it is the config's dataDir.
      expect(env.GATEHOUSE_DATA_DIR).toBe(config.dataDir);
      const dir = mkdtempSync(join(tmpdir(), "gatehouse-deploy-"));
      try {
        const run = runGatehouse(["keys", "signing"], { GATEHOUSE_DATA_DIR: dir });
        expect(run.stderr).toContain(`no signing key in ${dir}`);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      expect(Object.keys(env).sort()).toEqual([ref!.slice("env:".length), "GATEHOUSE_DATA_DIR"].sort());
    });

    it("waits for the store, which has the user and password the config names", () => {
      const store = service("store");
      const url = new URL(config.store.url!);
      expect(url.hostname).toBe("store");
      expect(store.environment.POSTGRES_USER).toBe(url.username);
      expect(store.environment.POSTGRES_DB).toBe(url.pathname.slice(1));
      expect(store.environment.POSTGRES_PASSWORD).toBe(service("gateway").environment[config.store.password!.slice("env:".length)]);
    });
  });

  describe("the connector service", () => {
    it("has settings the connector accepts, its token's hash in the gateway config, and every connection's target and credential", async () => {
      const config = loadConfigFile(gatewayConfigPath());
      const connector = service("connector");
      const [sub, ...args] = connector.command ?? [];
      expect(sub).toBe("connector");
      const localPath = (path: string) => mountedFile(connector, path) ?? path;
      const check = await checkConnector(args, connector.environment, config, localPath);
      expect(check.problems).toEqual([]);
      expect(check.connections.map((c) => c.name)).toEqual(config.connections.map((c) => c.name));
      // Sharing the gateway's network is what makes its ws:// tunnel a loopback one, to listen.api.
      expect(connector.networkMode).toBe("service:gateway");
      expect(check.settings!.gatewayUrl.port).toBe(String(config.listen.api.port));
    });

    it("reaches each target as a service of this file, with the credentials that service was given", () => {
      const config = loadConfigFile(gatewayConfigPath());
      const env = service("connector").environment;
      for (const connection of config.connections) {
        const resource = service(connection.target.host);
        const password = connection.credential?.password?.replace(/^env:/, "");
        if (connection.protocol === "postgres") {
          expect(resource.environment.POSTGRES_USER).toBe(connection.credential?.user);
          expect(resource.environment.POSTGRES_DB).toBe(connection.target.database);
          expect(resource.environment.POSTGRES_PASSWORD).toBe(env[password!]);
        } else if (connection.protocol === "mysql") {
          expect(resource.environment.MARIADB_USER).toBe(connection.credential?.user);
          expect(resource.environment.MARIADB_DATABASE).toBe(connection.target.database);
          expect(resource.environment.MARIADB_PASSWORD).toBe(env[password!]);
        } else {
          expect(connection.protocol).toBe("ssh");
          expect(resource.buildContext).toBe(repoPath("deploy", "compose", "sshd"));
        }
      }
    });

    it("is checked for real: a wrong token, a variable nobody reads and a missing credential are caught", async () => {
      const config = loadConfigFile(gatewayConfigPath());
      const connector = service("connector");
      const localPath = (path: string) => mountedFile(connector, path) ?? path;
      const { APP_MYSQL_PASSWORD: _dropped, ...withoutMysql } = connector.environment;
      const check = await checkConnector([], { ...withoutMysql, GATEHOUSE_CONNECTOR_TOKEN: "another-token", GATEHOUSE_ALOW: "x:1", UNUSED: "1" }, config, localPath);
      expect(check.problems.join("\n")).toMatch(/does not hash to any tokenSha256/);
      expect(check.problems.join("\n")).toMatch(/GATEHOUSE_ALOW: the connector does not read this variable/);
      expect(check.problems.join("\n")).toMatch(/UNUSED: set for the connector/);
      expect(check.problems.join("\n")).toMatch(/app-mysql: credential "env:APP_MYSQL_PASSWORD"/);
    });
  });

  describe("the demo sshd", () => {
    const dir = repoPath("deploy", "compose", "sshd");
    let work: string;
    beforeAll(() => {
      work = mkdtempSync(join(tmpdir(), "gatehouse-deploy-sshd-"));
    });
    afterAll(() => rmSync(work, { recursive: true, force: true }));

    it("has the host key the gateway config pins, and authorizes the key the connector logs in with", () => {
      const config = loadConfigFile(gatewayConfigPath());
      const web = config.connections.find((c) => c.protocol === "ssh")!;
      const hostKey = publicKeyLine(readFileSync(join(dir, "ssh_host_ed25519_key"), "utf8"));
      expect(web.target.hostKey).toBe(hostKey);
      const keyFile = mountedFile(service("connector"), web.credential!.privateKey!.replace(/^file:/, ""))!;
      const connectorKey = publicKeyLine(readFileSync(keyFile, "utf8"));
      const authorized = readFileSync(join(dir, "authorized_keys"), "utf8").split("\n").filter((l) => l.trim() && !l.startsWith("#"));
      expect(authorized.map((l) => l.split(/\s+/).slice(0, 2).join(" "))).toEqual([connectorKey]);
      expect(web.credential!.user).toBe("demo");
      expect(readFileSync(join(dir, "sshd_config"), "utf8")).toMatch(/^AllowUsers demo$/m);
    });

    it.skipIf(!existsSync("/usr/sbin/sshd"))("has an sshd_config that OpenSSH's sshd -t accepts", () => {
      // The host key as sshd requires it (0600); git checks files out 0644. /run/sshd: sshd's
      // privilege-separation directory, which the image makes and -t checks for.
      const key = join(work, "ssh_host_ed25519_key");
      writeFileSync(key, readFileSync(join(dir, "ssh_host_ed25519_key")), { mode: 0o600 });
      if (process.getuid?.() === 0 && !existsSync("/run/sshd")) spawnSync("mkdir", ["-p", "-m", "0755", "/run/sshd"]);
      const run = spawnSync("/usr/sbin/sshd", ["-t", "-f", join(dir, "sshd_config"), "-o", `HostKey=${key}`], { encoding: "utf8" });
      expect(run.stderr).toBe("");
      expect(run.status).toBe(0);
      expect(statSync(key).mode & 0o777).toBe(0o600);
    });
  });

  it.skipIf(!dockerComposeWorks())("is accepted by `docker compose config`", () => {
    const run = spawnSync("docker", ["compose", "-f", COMPOSE_FILE, "config", "--quiet"], { encoding: "utf8" });
    expect(run.stderr).toBe("");
    expect(run.status).toBe(0);
  });
});

/** `docker compose` is a plugin: this machine's docker has none (and no daemon), so that check is skipped. */
function dockerComposeWorks(): boolean {
  return spawnSync("docker", ["compose", "version"], { encoding: "utf8" }).status === 0;
}

/** The sources of COPY/ADD lines that copy from the build context (not --from another stage). */
function dockerfileCopySources(dockerfile: string): string[] {
  return readFileSync(dockerfile, "utf8")
    .split("\n")
    .filter((l) => /^(COPY|ADD)\s/i.test(l) && !/--from=/.test(l))
    .flatMap((l) => l.trim().split(/\s+/).slice(1).filter((w) => !w.startsWith("--")).slice(0, -1));
}

function lastStageBase(dockerfile: string): string {
  const froms = readFileSync(dockerfile, "utf8").split("\n").filter((l) => /^FROM\s/i.test(l));
  return froms[froms.length - 1]!.split(/\s+/)[1]!;
}

/** "ssh-ed25519 AAAA…" of a private key file (OpenSSH format), parsed with ssh2 as the connector does. */
function publicKeyLine(privateKey: string): string {
  const key = sshUtils.parseKey(privateKey);
  if (key instanceof Error) throw key;
  const parsed = Array.isArray(key) ? key[0]! : key;
  return `${parsed.type} ${parsed.getPublicSSH().toString("base64")}`;
}


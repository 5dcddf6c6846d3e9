import { execFileSync, spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { installGatehouse, REPO_ROOT, runCli, startGatewayProcess, tempDir, type RunningGateway } from "../lib/processes.js";

/** Runs a shell line the way a user types it, with `env` only (no inherited PATH unless given). */
function sh(script: string, options: { cwd: string; env: Record<string, string> }): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((res, rej) => {
    const child = spawn("bash", ["-c", script], { cwd: options.cwd, env: options.env, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (t: string) => (stdout += t));
    child.stderr.setEncoding("utf8").on("data", (t: string) => (stderr += t));
    child.once("error", rej);
    child.once("close", (code) => res({ code, stdout, stderr }));
  });
}

describe("gatehouse CLI", () => {
  it("config check names every bad key and exits non-zero", async () => {
    const dir = tempDir();
    const file = join(dir, "bad.yaml");
    writeFileSync(
      file,
      `connectors: [ { name: dc1, tokenSha256: ${"c".repeat(64)} } ]
connections:
  - { name: a, protocol: tcp, connector: dc1, listen: ":1", target: { host: h, port: 1 } }
  - { name: b, protocol: tcp, connector: dc2, listen: ":2", target: { host: h, port: 2 } }
  - { name: c, protocol: tcp, connector: dc1, listen: ":3", target: { host: h, port: five } }
`,
    );
    const out = await runCli(["config", "check", file], { cwd: dir });
    expect(out.code).toBe(1);
    // The file is named once, not "FILE: FILE has 3 problems".
    expect(out.stderr.split("\n")[0]).toBe(`${file} has 2 problems`);
    expect(out.stderr).toContain('connections[2].target.port: expected a number, got "five"');
    expect(out.stderr).toContain('connections[1].connector: no connector named "dc2" in connectors');
  });

  it("config check accepts a good file", async () => {
    const dir = tempDir();
    const file = join(dir, "good.yaml");
    writeFileSync(file, "listen: { api: 127.0.0.1:8009 }\n");
    const out = await runCli(["config", "check", file], { cwd: dir });
    expect(out.code).toBe(0);
    expect(out.stdout).toContain("valid");
  });

  it("every subcommand has --help", async () => {
    const dir = tempDir();
    for (const args of [["--help"], ["gateway", "--help"], ["connector", "--help"], ["config", "check", "--help"], ["sessions", "--help"], ["sessions", "list", "--help"], ["events", "--help"], ["events", "search", "--help"], ["checkpoints", "--help"], ["checkpoints", "export", "--help"], ["retention", "--help"], ["verify", "--help"]]) {
      const out = await runCli(args, { cwd: dir });
      expect(out.code, args.join(" ")).toBe(0);
      expect(out.stdout, args.join(" ")).toMatch(/Usage/);
    }
  });

  it("a bad config stops the gateway's start and names the key", async () => {
    const dir = tempDir();
    const file = join(dir, "bad.yaml");
    writeFileSync(file, "listen: { api: 127.0.0.1:8009 }\nstore: { url: mysql://nope }\n");
    const out = await runCli(["gateway", "--config", file], { cwd: dir });
    expect(out.code).toBe(1);
    expect(out.stderr).toContain("store.url: expected a postgres:// URL");
  });

  it("sessions without a gateway says how to find one", async () => {
    const out = await runCli(["sessions", "list"], { cwd: tempDir() });
    expect(out.code).toBe(1);
    expect(out.stderr).toMatch(/no gateway found.*--gateway URL/);
  });
});

describe("the gatehouse command outside the checkout", () => {
  it("scripts/install.sh puts a gatehouse on PATH that works from any directory", async () => {
    const bin = installGatehouse();
    const elsewhere = tempDir("gatehouse-elsewhere-");
    const env = { PATH: `${bin}:/usr/bin:/bin`, HOME: elsewhere, LANG: "C.UTF-8" };
    const help = await sh("gatehouse --help", { cwd: elsewhere, env });
    expect(help).toMatchObject({ code: 0, stderr: "" });
    expect(help.stdout).toMatch(/^Usage: gatehouse COMMAND/);
    writeFileSync(join(elsewhere, "gatehouse.yaml"), "listen: { api: 127.0.0.1:8009 }\n");
    const check = await sh("gatehouse config check gatehouse.yaml", { cwd: elsewhere, env });
    expect(check).toMatchObject({ code: 0, stdout: "gatehouse.yaml: valid (0 connections, 0 connectors)\n" });
  });

  it("stops quietly when the reader of its output goes away (gatehouse … | head)", async () => {
    const bin = installGatehouse();
    const elsewhere = tempDir("gatehouse-elsewhere-");
    // `true` exits without reading: every write finds the pipe closed.
    const out = await sh('gatehouse --help | true; echo "status=${PIPESTATUS[0]}"', { cwd: elsewhere, env: { PATH: `${bin}:/usr/bin:/bin`, HOME: elsewhere } });
    expect(out.stderr).toBe("");
    expect(out.stdout).toBe("status=0\n");
  });

  it("the CLI package declares the bin, a file that starts with a node shebang", () => {
    const pkg = JSON.parse(readFileSync(join(REPO_ROOT, "packages/cli/package.json"), "utf8")) as { bin?: Record<string, string> };
    expect(pkg.bin).toEqual({ gatehouse: "dist/main.js" });
    expect(readFileSync(join(REPO_ROOT, "packages/cli", pkg.bin!.gatehouse!), "utf8")).toMatch(/^#!\/usr\/bin\/env node\n/);
  });
});

describe("the CLI against a gateway whose API has a certificate from a private CA", () => {
  let gateway: RunningGateway;
  let caFile: string;
  let work: string;

  beforeAll(async () => {
    const dir = tempDir();
    caFile = join(dir, "api.crt");
    const keyFile = join(dir, "api.key");
    // A self-signed certificate is its own (private) CA.
    execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", keyFile, "-out", caFile, "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"], { stdio: "ignore" });
    gateway = await startGatewayProcess({ api: { tls: { cert: caFile, key: keyFile } } }, dir);
    work = tempDir("gatehouse-cli-");
  });

  afterAll(async () => {
    await gateway?.proc.stop();
  });

  it("is refused without the CA, with a hint; works with --ca FILE and with GATEHOUSE_CA", async () => {
    expect(gateway.apiUrl).toMatch(/^https:\/\//);
    const env = { GATEHOUSE_ADMIN_TOKEN: gateway.adminToken, NODE_EXTRA_CA_CERTS: "", GATEHOUSE_CA: "" };
    const without = await runCli(["sessions", "list", "--gateway", gateway.apiUrl], { cwd: work, env });
    expect(without.code).toBe(1);
    expect(without.stderr).toContain("pass --ca FILE or set GATEHOUSE_CA");

    const flag = await runCli(["sessions", "list", "--gateway", gateway.apiUrl, "--ca", caFile, "--json"], { cwd: work, env });
    expect(flag).toMatchObject({ code: 0, stderr: "" });
    expect(JSON.parse(flag.stdout)).toEqual([]);

    const variable = await runCli(["keys", "create", "--identity", "agent-ca", "--gateway", gateway.apiUrl], { cwd: work, env: { ...env, GATEHOUSE_CA: caFile } });
    expect(variable.code).toBe(0);
    expect(variable.stdout.trim()).toMatch(/^\S{20,}$/);
  });

  it("a refused or missing admin token is explained with GATEHOUSE_ADMIN_TOKEN, not an HTTP header", async () => {
    const wrong = await runCli(["keys", "list", "--gateway", gateway.apiUrl, "--ca", caFile], { cwd: work, env: { GATEHOUSE_ADMIN_TOKEN: "not-the-token" } });
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toContain("401");
    expect(wrong.stderr).toContain("the admin token sent was refused: check GATEHOUSE_ADMIN_TOKEN");

    const help = await runCli(["keys", "--help"], { cwd: work });
    expect(help.stdout).toContain("GATEHOUSE_ADMIN_TOKEN");
    expect(help.stdout).toContain("--ca FILE");
  });
});

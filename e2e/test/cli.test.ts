import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runCli, tempDir } from "../lib/processes.js";

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
    for (const args of [["--help"], ["gateway", "--help"], ["connector", "--help"], ["config", "check", "--help"], ["sessions", "--help"], ["sessions", "list", "--help"], ["checkpoints", "--help"], ["checkpoints", "export", "--help"], ["retention", "--help"], ["verify", "--help"]]) {
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

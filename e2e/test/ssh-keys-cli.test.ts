import { execFileSync, spawn } from "node:child_process";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CLI, runCli, startGatewayProcess, tempDir, type RunningGateway } from "../lib/processes.js";

// The `gatehouse` command's (packages/cli/dist) view of SSH keys: `gatehouse keys add-ssh` from a file and from a pipe,
// `keys list` and `keys revoke` against a gateway process (embedded store), and `ssh-config`
// against a gateway without an SSH listener (the exit status and message a user sees).

let gateway: RunningGateway;
let keyDir: string;

beforeAll(async () => {
  keyDir = tempDir("gatehouse-e2e-sshkeys-");
  for (const name of ["one", "two"]) execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", `${name}@e2e`, "-f", join(keyDir, name)]);
  gateway = await startGatewayProcess({});
});

afterAll(async () => {
  await gateway?.proc.stop();
  if (gateway) rmSync(gateway.dir, { recursive: true, force: true });
  if (keyDir) rmSync(keyDir, { recursive: true, force: true });
});

/** `cat FILE | gatehouse keys add-ssh --identity NAME -`, as a user pipes a key in. */
function addFromPipe(identity: string, file: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn("bash", ["-c", `cat "$1" | "${process.execPath}" "${CLI}" keys add-ssh --identity "$2" -`, "sh", file, identity], { cwd: gateway.dir });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (t: string) => (stdout += t));
    child.stderr.setEncoding("utf8").on("data", (t: string) => (stderr += t));
    child.once("error", reject);
    child.once("close", (code) => resolve({ code, stdout, stderr }));
  });
}

describe("gatehouse keys add-ssh / list / revoke, ssh-config", () => {
  it("registers, lists and revokes SSH keys through the gatehouse command", async () => {
    const fingerprint = (file: string) => execFileSync("ssh-keygen", ["-l", "-E", "sha256", "-f", file], { encoding: "utf8" }).split(" ")[1]!;
    const one = await runCli(["keys", "add-ssh", "--identity", "agent", join(keyDir, "one.pub")], { cwd: gateway.dir });
    expect(one.code, one.stderr).toBe(0);
    const [oneId, oneFingerprint] = one.stdout.trim().split(" ");
    expect(oneFingerprint).toBe(fingerprint(join(keyDir, "one.pub")));
    const two = await addFromPipe("agent", join(keyDir, "two.pub"));
    expect(two.code, two.stderr).toBe(0);
    expect(two.stdout.trim().split(" ")[1]).toBe(fingerprint(join(keyDir, "two.pub")));

    const again = await runCli(["keys", "add-ssh", "--identity", "intruder", join(keyDir, "one.pub")], { cwd: gateway.dir });
    expect(again.code).toBe(1);
    expect(again.stderr).toContain("already registered for identity agent");

    const listed = await runCli(["keys", "list"], { cwd: gateway.dir });
    expect(listed.stdout).toMatch(new RegExp(`${oneId}\\s+agent\\s+ssh-ed25519\\s.*one@e2e`));
    expect((await runCli(["keys", "revoke", oneId!], { cwd: gateway.dir })).code).toBe(0);
    expect((await runCli(["keys", "list"], { cwd: gateway.dir })).stdout).not.toContain(oneId!);
  });

  it("ssh-config says plainly when the gateway has no SSH listener", async () => {
    const out = await runCli(["ssh-config", "--connection", "web1", "--identity", "agent"], { cwd: gateway.dir });
    expect(out.code).toBe(1);
    expect(out.stderr).toContain("this gateway has no SSH listener");
    expect((await runCli(["ssh-config", "--help"], { cwd: gateway.dir })).stdout).toMatch(/^Usage:\n  gatehouse ssh-config --connection NAME/);
  });
});

import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSshd, type SshdServer } from "./sshd.js";

const run = promisify(execFile);

describe("startSshd", () => {
  let sshd: SshdServer;
  beforeAll(async () => {
    sshd = await startSshd();
  });
  afterAll(() => sshd?.stop());

  it("serves a real OpenSSH that takes the client key and proves its pinned host key", async () => {
    const { writeFile } = await import("node:fs/promises");
    const knownHosts = `${sshd.dir}/known_hosts`;
    await writeFile(knownHosts, `${sshd.knownHostsLine}\n`);
    const { stdout } = await run("ssh", [
      "-p", String(sshd.port), "-i", sshd.clientKeyPath, "-o", "BatchMode=yes", "-o", `UserKnownHostsFile=${knownHosts}`,
      "-o", "StrictHostKeyChecking=yes", `${sshd.user}@127.0.0.1`, "echo hello-from-sshd; exit 0",
    ]);
    expect(stdout).toBe("hello-from-sshd\n");
    expect(sshd.hostKeyFingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
  });
});

import { execFile, spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, link, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePort } from "./net.js";

const run = promisify(execFile);

const SSHD = "/usr/sbin/sshd";
/**
 * The user tests log in as when they run as root: root cannot log in with a password and must not have one set
 * by a test, and root's own shell start-up (~/.bashrc, which sshd-started bash reads even for `ssh host cmd`) is
 * the machine's, not ours — here it runs `pyenv init`, which stalls every command for tens of seconds.
 * This user's shell is /bin/sh, which reads no start-up file for a command.
 */
const TEST_USER = "gatehouse-sshtest";

export interface SshdOptions {
  /** Also make a local user with a random password and allow password logins for it (needs root; else `password` stays undefined). */
  password?: boolean;
  /** More sshd_config lines (later lines do not override earlier ones in sshd: put overrides here only for keys not set below). */
  extraConfig?: readonly string[];
}

export interface SshdServer {
  readonly host: "127.0.0.1";
  readonly port: number;
  /** The user the client key logs in as: this process's user, or the test user `gatehouse-sshtest` when that is root. */
  readonly user: string;
  /** A private key (OpenSSH format, no passphrase) authorized for `user`, and its public line. */
  readonly clientKeyPath: string;
  readonly clientPublicKey: string;
  /** The server's host key as a known_hosts entry would hold it ("ssh-ed25519 AAAA…") and its SHA256 fingerprint ("SHA256:…"). */
  readonly hostKeyLine: string;
  readonly hostKeyFingerprint: string;
  /** A `[127.0.0.1]:PORT ssh-ed25519 AAAA…` line for a known_hosts file. */
  readonly knownHostsLine: string;
  /** A user and password sshd accepts, when `password` was asked for and could be set up. */
  readonly password?: { user: string; password: string };
  /** The directory holding config, keys and logs (removed by stop()). */
  readonly dir: string;
  /** What sshd logged so far (its -e stderr), for a failing test's message. */
  log(): string;
  stop(): Promise<void>;
}

/**
 * Starts a real OpenSSH sshd on a free loopback port with a fresh host key and a fresh authorized
 * client key, in the foreground (-D -e), so stopping the test stops it. Why not the machine's own
 * sshd: tests must not depend on, or change, the machine's ssh setup.
 */
export async function startSshd(options: SshdOptions = {}): Promise<SshdServer> {
  if (!existsSync(SSHD)) throw new Error(`${SSHD} is missing: install openssh-server (scripts/setup.sh --test does)`);
  const dir = await mkdtemp(join(tmpdir(), "gatehouse-sshd-"));
  const root = process.getuid?.() === 0;
  // sshd refuses to start without its privilege-separation directory when run as root.
  if (root) await mkdir("/run/sshd", { recursive: true, mode: 0o755 });
  const hostKey = join(dir, "ssh_host_ed25519_key");
  const clientKeyPath = join(dir, "client_ed25519");
  await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "gatehouse-test-host", "-f", hostKey]);
  await run("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "gatehouse-test-client", "-f", clientKeyPath]);
  const clientPublicKey = (await readFile(`${clientKeyPath}.pub`, "utf8")).trim();
  await writeFile(join(dir, "authorized_keys"), `${clientPublicKey}\n`, { mode: 0o600 });
  if (root) {
    await ensureTestUser();
    // sshd reads AuthorizedKeysFile as the user logging in: let the test user reach it (the host key stays 0600).
    await chmod(dir, 0o755);
    await chmod(join(dir, "authorized_keys"), 0o644);
  }
  const hostKeyLine = (await readFile(`${hostKey}.pub`, "utf8")).trim().split(/\s+/).slice(0, 2).join(" ");
  const hostKeyFingerprint = (await run("ssh-keygen", ["-l", "-E", "sha256", "-f", `${hostKey}.pub`])).stdout.split(/\s+/)[1]!;
  // Always set (the same machine-wide password): useradd leaves the account locked ("!"), and
  // sshd without PAM refuses a locked account even its keys — until some test happened to set one.
  const testUserPassword = root ? await setTestUserPassword() : undefined;
  const password = options.password ? testUserPassword : undefined;

  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const config = [
      `Port ${port}`,
      "ListenAddress 127.0.0.1",
      `HostKey ${hostKey}`,
      `PidFile ${join(dir, "sshd.pid")}`,
      `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
      // The temp dir's parents (/tmp) are world-writable; StrictModes would refuse the key file for it.
      "StrictModes no",
      "UsePAM no",
      `PasswordAuthentication ${password ? "yes" : "no"}`,
      "KbdInteractiveAuthentication no",
      "PermitRootLogin yes",
      "Subsystem sftp internal-sftp",
      "AllowTcpForwarding yes",
      "AcceptEnv LANG LC_* GATEHOUSE_*",
      "MaxStartups 200:30:400",
      "MaxSessions 100",
      "LogLevel VERBOSE",
      ...(options.extraConfig ?? []),
    ];
    const configPath = join(dir, "sshd_config");
    await writeFile(configPath, `${config.join("\n")}\n`);
    const child = spawn(SSHD, ["-D", "-e", "-f", configPath], { stdio: ["ignore", "ignore", "pipe"] });
    let log = "";
    child.stderr!.setEncoding("utf8").on("data", (text: string) => {
      log += text;
      if (log.length > 1_000_000) log = log.slice(-500_000);
    });
    const up = await waitForBanner(port, child);
    if (!up) {
      child.kill("SIGKILL");
      if (attempt < 3 && /Address already in use|Cannot bind/i.test(log)) continue;
      await rm(dir, { recursive: true, force: true });
      throw new Error(`sshd did not start on port ${port}:\n${log}`);
    }
    return {
      host: "127.0.0.1",
      port,
      user: root ? TEST_USER : userInfo().username,
      clientKeyPath,
      clientPublicKey,
      hostKeyLine,
      hostKeyFingerprint,
      knownHostsLine: `[127.0.0.1]:${port} ${hostKeyLine}`,
      ...(password ? { password } : {}),
      dir,
      log: () => log,
      stop: async () => {
        if (child.exitCode === null && child.signalCode === null) {
          const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
          child.kill("SIGTERM");
          await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 3000))]);
          if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
        }
        await rm(dir, { recursive: true, force: true });
      },
    };
  }
}

/** Creates (once) the local test user. */
async function ensureTestUser(): Promise<void> {
  const exists = await run("id", ["-u", TEST_USER]).then(
    () => true,
    () => false,
  );
  if (!exists) await run("useradd", ["--create-home", "--shell", "/bin/sh", TEST_USER]).catch((error: unknown) => {
    // Two test files starting at once may both try; the loser finds the user there.
    return run("id", ["-u", TEST_USER]).catch(() => Promise.reject(error));
  });
}

/**
 * Where the test user's password is kept (root-only): one password for every sshd on the machine.
 * A fresh one per sshd broke the sshds already running — every test process's, since vitest runs
 * files side by side — whose clients still held the password they were given.
 */
const PASSWORD_FILE = join(tmpdir(), "gatehouse-sshtest-password");

/** The test user's password: made once per machine (the first writer wins), set for the user each time (idempotent). */
async function setTestUserPassword(): Promise<{ user: string; password: string }> {
  const password = await sharedPassword();
  // chpasswd takes a lock on /etc/shadow; a test process starting at the same moment may hold it.
  for (let attempt = 0; ; attempt++) {
    const child = spawn("chpasswd", [], { stdio: ["pipe", "ignore", "pipe"] });
    let stderr = "";
    child.stderr!.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdin!.end(`${TEST_USER}:${password}\n`);
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    if (code === 0) return { user: TEST_USER, password };
    if (attempt >= 20) throw new Error(`chpasswd failed for ${TEST_USER}: ${stderr.trim()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function sharedPassword(): Promise<string> {
  const candidate = join(tmpdir(), `gatehouse-sshtest-password-${process.pid}-${randomBytes(4).toString("hex")}`);
  await writeFile(candidate, randomBytes(12).toString("base64url"), { mode: 0o600 });
  try {
    // link() creates the name only if it does not exist: whole file or nothing, one winner.
    await link(candidate, PASSWORD_FILE).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== "EEXIST") throw error;
    });
  } finally {
    await rm(candidate, { force: true });
  }
  return (await readFile(PASSWORD_FILE, "utf8")).trim();
}

/** Whether sshd answers with its identification string within 10 s (false as soon as it exits). */
async function waitForBanner(port: number, child: ChildProcess): Promise<boolean> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) return false;
    const banner = await new Promise<string>((resolve) => {
      const socket = connect({ host: "127.0.0.1", port });
      let text = "";
      const done = (value: string) => {
        socket.destroy();
        resolve(value);
      };
      socket.setTimeout(1000, () => done(text));
      socket.on("data", (chunk) => {
        text += chunk.toString("latin1");
        if (text.includes("\n")) done(text);
      });
      socket.on("error", () => done(""));
      socket.on("close", () => done(text));
    });
    if (banner.startsWith("SSH-2.0-")) return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return false;
}

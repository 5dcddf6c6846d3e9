import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { startSshd, type SshdServer } from "@gatehouse/test-servers";
import { newToken, runCli, startConnectorProcess, startGatewayProcess, tempDir, type Proc, type RunningGateway } from "./processes.js";
import { IDENTITY, type Recorded, type SessionJson } from "./postgres-stack.js";
import { sshEndpoint, type SshEndpoint } from "./ssh-clients.js";

// One gateway + connector in front of a real OpenSSH sshd (started on a free
// port by the test), shared by the tests of one file, as mysql-stack.ts does for
// MariaDB. Users name IDENTITY@CONNECTION, as packages/protocols/src/ssh/README.md
// tells them; the gateway's host key is the only one their known_hosts holds.
//
// Connections, all to the same sshd unless said otherwise:
//   shell          allowed to `agent`; the connector logs in with the sshd's client key
//   shell-locked   allowed only to `someone-else`
//   shell-wrongpin target.hostKey pins a key the sshd does not have (the connector must refuse)

export { IDENTITY };

export interface SshStack {
  sshd: SshdServer;
  gateway: RunningGateway;
  connector: Proc;
  /** The gateway's SSH listener. */
  listen: { host: string; port: number };
  /** `[host]:port ssh-ed25519 AAAA…` for the gateway's host key. */
  gatewayKnownHostsLine: string;
  /** An access key for `agent`. */
  key: string;
  /** A key pair registered for `agent` with `gatehouse keys add-ssh`. */
  agentKey: { privateKeyPath: string; id: string; fingerprint: string };
  /**
   * The gateway as an ssh endpoint: `agent@shell` with the registered key, unless said otherwise
   * (`password`: log in with it instead, e.g. the access key or an OIDC token).
   */
  endpoint(options?: { alias?: string; connection?: string; user?: string; password?: string; identityFile?: string }): SshEndpoint;
  /** The sshd reached directly, as its own user with its client key (the baseline a user compares with). */
  direct(options?: { alias?: string }): SshEndpoint;
  api<T>(path: string): Promise<T>;
  /** Polls until `count` ended sessions match, newest first, then returns them with their events. */
  waitForSessions(match: (s: SessionJson) => boolean, options?: { count?: number; timeoutMs?: number }): Promise<Recorded[]>;
  /** The newest ended session on `connection` with an event whose command contains `marker`. */
  sessionWith(marker: string, options?: { connection?: string; timeoutMs?: number }): Promise<Recorded>;
  cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }>;
  /** Registers a public key file for an identity: its id and fingerprint as `keys add-ssh` printed them. */
  addSshKey(identity: string, publicKeyFile: string): Promise<{ id: string; fingerprint: string }>;
  /** The gateway's public signing key, in a file (for `gatehouse verify --public-key`). */
  publicKeyFile(): Promise<string>;
  stop(): Promise<void>;
}

let speaksSsh: boolean | undefined;

/**
 * Whether the built gateway takes an SSH listener and `protocol: ssh` connections (`gatehouse config
 * check` on a small config). While it does not, the gateway halves of the SSH e2e tests are
 * `it.todo` with NO_SSH_GATEWAY as the reason; the direct halves always run.
 */
export async function gatewaySpeaksSsh(): Promise<boolean> {
  if (speaksSsh !== undefined) return speaksSsh;
  const dir = tempDir("gatehouse-e2e-ssh-check-");
  try {
    const file = join(dir, "gatehouse.yaml");
    writeFileSync(
      file,
      JSON.stringify({
        listen: { api: "127.0.0.1:0", ssh: "127.0.0.1:0" },
        connectors: [{ name: "dc1", tokenSha256: newToken().sha256 }],
        connections: [
          {
            name: "shell",
            protocol: "ssh",
            connector: "dc1",
            target: { host: "127.0.0.1", port: 22, hostKey: "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" },
            credential: { user: "root", privateKey: "file:/nonexistent" },
            allow: [{ identity: IDENTITY }],
          },
        ],
      }),
    );
    const out = await runCli(["config", "check", file], { cwd: dir });
    if (out.code === 0) return (speaksSsh = true);
    // Only "no such key / protocol" means not yet: any other complaint is this probe out of step with
    // the schema, and skipping on it would hide every gateway-side SSH test for good.
    if (/listen\.ssh: unknown key|protocol: expected one of/.test(out.stderr + out.stdout)) return (speaksSsh = false);
    throw new Error(`gatehouse config check refused the SSH probe config for another reason than a missing SSH listener; update gatewaySpeaksSsh():\n${out.stderr}${out.stdout}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export const NO_SSH_GATEWAY = "todo until the gateway's SSH listener (h-gw) and the connector's SSH dialer (h-conn) are on main: `gatehouse config check` refuses listen.ssh / protocol: ssh";

/** A fresh Ed25519 key pair without a passphrase, as `ssh-keygen` makes it for a user. */
export function newKeyPair(comment: string): { privateKeyPath: string; publicKeyPath: string } {
  const privateKeyPath = join(tempDir("gatehouse-e2e-sshkey-"), "id_ed25519");
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", privateKeyPath]);
  return { privateKeyPath, publicKeyPath: `${privateKeyPath}.pub` };
}

/**
 * The user the clients log in as on the resource: the sshd's password user when there is one (made
 * when we run as root), which also takes the client key (the sshd's AuthorizedKeysFile serves every
 * user). Why not root: root's login shell here is bash, whose ~/.bashrc runs `pyenv rehash` under a
 * lock shared with every other session on the machine, so a plain `ssh HOST true` took a second and
 * sometimes hung for a minute. The password user's shell is /bin/sh, with nothing to start.
 */
export function resourceUser(sshd: SshdServer): string {
  return sshd.password?.user ?? sshd.user;
}

/**
 * sshd reads AuthorizedKeysFile as the user logging in: the login user (not root) must be able to
 * read the sshd's authorized_keys, which startSshd keeps in its own 0700 directory. The private host
 * key in there stays 0600; only the directory's names and the public authorized_keys become readable.
 */
export function letLoginUserReadKeys(sshd: SshdServer): void {
  if (resourceUser(sshd) === sshd.user) return;
  chmodSync(sshd.dir, 0o755);
  chmodSync(join(sshd.dir, "authorized_keys"), 0o644);
}

/**
 * A fresh directory on the resource that the login user may write to (the sshd is this machine, so
 * "remote" directories are local; mkdtemp makes them root's only).
 */
export function remoteDir(prefix: string): string {
  const dir = tempDir(prefix);
  chmodSync(dir, 0o777);
  return dir;
}

/**
 * The sshd alone, without a gateway: for the direct half of the tests. Its password user (when we
 * run as root) is the login user, by key, and by password for the password logins' reference.
 */
export async function startSshResource(): Promise<{
  sshd: SshdServer;
  direct: (options?: { alias?: string }) => SshEndpoint;
  /** The sshd's password user with its password (or `password` to try another); undefined without one. */
  directPassword: (options?: { alias?: string; password?: string }) => SshEndpoint | undefined;
  stop: () => Promise<void>;
}> {
  const sshd = await startSshd({ password: true });
  letLoginUserReadKeys(sshd);
  const base = { label: "direct" as const, host: sshd.host, port: sshd.port, knownHostsLine: sshd.knownHostsLine };
  const direct = (o: { alias?: string } = {}) => sshEndpoint({ ...base, alias: o.alias ?? "direct", user: resourceUser(sshd), identityFile: sshd.clientKeyPath });
  const directPassword = (o: { alias?: string; password?: string } = {}) =>
    sshd.password ? sshEndpoint({ ...base, alias: o.alias ?? "direct-pw", user: sshd.password.user, password: o.password ?? sshd.password.password }) : undefined;
  return { sshd, direct, directPassword, stop: () => sshd.stop() };
}

/**
 * `recording`, `limits`, `identity`: the gateway's settings of those names (docs/configuration.md);
 * `storeUrl`: a Postgres store (default: the embedded one); `allow`: more `allow` entries for `shell`.
 */
export async function startSshStack(
  options: { recording?: Record<string, unknown>; limits?: Record<string, unknown>; storeUrl?: string; identity?: Record<string, unknown>; allow?: unknown[] } = {},
): Promise<SshStack> {
  const resource = await startSshResource();
  const { sshd } = resource;
  const cleanups: Array<() => Promise<unknown>> = [resource.stop];
  const stop = async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  };
  try {
    const dc1 = newToken();
    // A key the sshd does not have, pinned for shell-wrongpin.
    const stranger = newKeyPair("not-the-sshd");
    const strangerLine = readFileSync(stranger.publicKeyPath, "utf8").trim().split(/\s+/).slice(0, 2).join(" ");
    const target = (hostKey: string) => ({ host: sshd.host, port: sshd.port, hostKey });
    // The connector holds the resource's credential: a reference to the sshd's client key file.
    const credential = { user: resourceUser(sshd), privateKey: `file:${sshd.clientKeyPath}` };
    const gateway = await startGatewayProcess(
      {
        listen: { api: "127.0.0.1:0", ssh: "127.0.0.1:0" },
        tunnel: { pingIntervalMs: 1000, deadAfterMs: 3000 },
        connectors: [{ name: "dc1", tokenSha256: dc1.sha256 }],
        connections: [
          { name: "shell", protocol: "ssh", connector: "dc1", target: target(sshd.knownHostsLine), credential, allow: [{ identity: IDENTITY }, ...(options.allow ?? [])] },
          { name: "shell-locked", protocol: "ssh", connector: "dc1", target: target(sshd.hostKeyFingerprint), credential, allow: [{ identity: "someone-else" }] },
          { name: "shell-wrongpin", protocol: "ssh", connector: "dc1", target: target(strangerLine), credential, allow: [{ identity: IDENTITY }] },
        ],
        ...(options.limits ? { limits: options.limits } : {}),
        ...(options.recording ? { recording: options.recording } : {}),
        ...(options.storeUrl ? { store: { url: options.storeUrl } } : {}),
        ...(options.identity ? { identity: options.identity } : {}),
      },
      undefined,
      90_000,
    );
    cleanups.push(async () => {
      await gateway.proc.stop();
      rmSync(gateway.dir, { recursive: true, force: true });
    });
    const started = gateway.proc.lines.find((l) => l.msg === "gateway started")!;
    const listen = started.ssh as { host: string; port: number } | undefined;
    if (!listen) throw new Error(`the gateway did not report an ssh listener: ${JSON.stringify(started)}`);
    const connector = await startConnectorProcess({ gateway: gateway.apiUrl, name: "dc1", token: dc1.token, allow: `${sshd.host}:${sshd.port}` });
    cleanups.push(() => connector.stop());
    await gateway.proc.waitFor((l) => l.msg === "connector connected" && l.connector === "dc1");

    const cli = (args: string[]) => runCli(args, { cwd: gateway.dir });
    const created = await cli(["keys", "create", "--identity", IDENTITY]);
    if (created.code !== 0) throw new Error(`keys create failed: ${created.stderr}`);
    const key = created.stdout.trim();

    const api = async <T>(path: string): Promise<T> => {
      const response = await fetch(`${gateway.apiUrl}${path}`, { headers: { Authorization: `Bearer ${gateway.adminToken}` } });
      if (!response.ok) throw new Error(`GET ${path}: ${response.status} ${await response.text()}`);
      return (await response.json()) as T;
    };

    const addSshKey = async (identity: string, publicKeyFile: string) => {
      // --json as `keys create` has it; a text answer is read for the id and the fingerprint otherwise.
      let out = await cli(["keys", "add-ssh", "--identity", identity, "--json", publicKeyFile]);
      if (out.code !== 0 && /json/i.test(out.stderr)) out = await cli(["keys", "add-ssh", "--identity", identity, publicKeyFile]);
      if (out.code !== 0) throw new Error(`keys add-ssh failed (${out.code}): ${out.stderr}`);
      return parseAddedKey(out.stdout);
    };
    const agent = newKeyPair("agent@laptop");
    const agentKey = { privateKeyPath: agent.privateKeyPath, ...(await addSshKey(IDENTITY, agent.publicKeyPath)) };

    const gatewayKnownHostsLine = `[${listen.host}]:${listen.port} ${await gatewayHostKey(api, gateway.dir)}`;

    const waitForSessions: SshStack["waitForSessions"] = async (match, o = {}) => {
      const count = o.count ?? 1;
      const deadline = Date.now() + (o.timeoutMs ?? 30_000);
      for (;;) {
        const { sessions } = await api<{ sessions: SessionJson[] }>("/api/v1/sessions?limit=1000");
        const found = sessions.filter((s) => match(s) && s.endedUs !== null);
        if (found.length >= count) return Promise.all(found.map((s) => api<Recorded>(`/api/v1/sessions/${s.id}`)));
        if (Date.now() > deadline) throw new Error(`expected ${count} ended sessions, found ${found.length}: ${JSON.stringify(sessions.filter(match).slice(0, 5))}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    };

    const sessionWith: SshStack["sessionWith"] = async (marker, o = {}) => {
      const connection = o.connection ?? "shell";
      const deadline = Date.now() + (o.timeoutMs ?? 30_000);
      for (;;) {
        const sessions = await waitForSessions((s) => s.connection === connection, { timeoutMs: o.timeoutMs ?? 30_000 });
        const found = sessions.find((s) => s.events.some((e) => e.command?.includes(marker)));
        if (found) return found;
        if (Date.now() > deadline) throw new Error(`no ended session on ${connection} has an event naming ${marker}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    };

    let aliases = 0;
    return {
      sshd,
      gateway,
      connector,
      listen,
      gatewayKnownHostsLine,
      key,
      agentKey,
      endpoint: (o = {}) =>
        sshEndpoint({
          label: "gateway",
          alias: o.alias ?? `gw${++aliases}`,
          host: listen.host,
          port: listen.port,
          user: `${o.user ?? IDENTITY}@${o.connection ?? "shell"}`,
          knownHostsLine: gatewayKnownHostsLine,
          ...(o.password !== undefined ? { password: o.password } : { identityFile: o.identityFile ?? agentKey.privateKeyPath }),
        }),
      direct: resource.direct,
      api,
      waitForSessions,
      sessionWith,
      cli,
      addSshKey,
      async publicKeyFile() {
        const printed = await cli(["keys", "signing"]);
        if (printed.code !== 0) throw new Error(`keys signing failed: ${printed.stderr}`);
        const file = join(gateway.dir, "signing-public.pem");
        writeFileSync(file, printed.stdout);
        return file;
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** `keys add-ssh` prints the new key's id and its SHA256 fingerprint (as `ssh-keygen -l -E sha256`). */
function parseAddedKey(stdout: string): { id: string; fingerprint: string } {
  try {
    const parsed = JSON.parse(stdout) as { id?: unknown; fingerprint?: unknown };
    if (typeof parsed.id === "string" && typeof parsed.fingerprint === "string") return { id: parsed.id, fingerprint: parsed.fingerprint };
  } catch {
    // text, below
  }
  const fingerprint = /SHA256:[A-Za-z0-9+/]{43}/.exec(stdout)?.[0];
  const id =
    /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i.exec(stdout)?.[0] ??
    /\b(?:id|ID)[:= ]+([A-Za-z0-9_-]+)/.exec(stdout)?.[1] ??
    stdout.trim().split(/\s+/)[0];
  if (!fingerprint || !id) throw new Error(`keys add-ssh printed no id and fingerprint: ${stdout}`);
  return { id, fingerprint };
}

/**
 * The gateway's host key ("ssh-ed25519 AAAA…"): from the API, as `gatehouse ssh-config` gets it,
 * else from the file the gateway made at first start in its data directory.
 */
async function gatewayHostKey(api: <T>(path: string) => Promise<T>, dir: string): Promise<string> {
  const fromApi = await api<{ publicKey: string }>("/api/v1/ssh/host-key").then(
    (r) => r.publicKey,
    () => undefined,
  );
  if (fromApi) return fromApi.trim().split(/\s+/).slice(0, 2).join(" ");
  const file = join(dir, "data", "ssh", "ssh_host_ed25519_key.pub");
  if (!existsSync(file)) throw new Error(`the gateway's ssh host key is neither at /api/v1/ssh/host-key nor in ${file}`);
  return readFileSync(file, "utf8").trim().split(/\s+/).slice(0, 2).join(" ");
}

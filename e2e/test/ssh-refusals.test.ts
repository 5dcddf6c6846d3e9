import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { connect, type Socket } from "node:net";
import { Client } from "ssh2";
import { afterAll, beforeAll, describe, expect, it as vitestIt } from "vitest";
import { AUDIENCE, startTestIssuer, type TestIssuer } from "../../packages/gateway/test/support/oidc-issuer.js";
import type { Recorded } from "../lib/postgres-stack.js";
import { tempDir } from "../lib/processes.js";
import { ssh, sshEndpoint, type SshEndpoint } from "../lib/ssh-clients.js";
import { gatewaySpeaksSsh, IDENTITY, resourceUser, newKeyPair, NO_SSH_GATEWAY, startSshResource, startSshStack, type SshStack } from "../lib/ssh-stack.js";

// Every way an ssh login can be refused — and accepted — with what OpenSSH
// tells the user, each attempt in the record: a registered key, an unknown
// key, a revoked key, the access key as password, an OIDC token as password,
// and a resource whose host key is not the pinned one (the connector refuses:
// no trust on first use). Then fuzz: garbage before and after the version
// exchange and random channel requests never take the gateway down. What can
// be tried against sshd directly is, as the reference.

const speaksSsh = await gatewaySpeaksSsh();
/** A case that needs the gateway: a todo naming what it waits for while the gateway has no SSH. */
const gatewayIt = speaksSsh ? vitestIt : (name: string, _fn: unknown) => vitestIt.todo(`${name} [${NO_SSH_GATEWAY}]`);
const it = vitestIt;

let started: SshStack | undefined;
let startFailure: unknown;
/** The gateway stack (its start failing fails only the tests that use it: the direct references still run). */
const stackOrThrow = (): SshStack => {
  if (!started) throw startFailure instanceof Error ? startFailure : new Error(String(startFailure));
  return started;
};
let issuer: TestIssuer;
let resource: Awaited<ReturnType<typeof startSshResource>>;
const OIDC_CLIENT = "agent-oidc";

beforeAll(async () => {
  issuer = await startTestIssuer([{ id: OIDC_CLIENT, secret: "oidc-secret", groups: ["sre"] }]);
  resource = await startSshResource();
  if (!speaksSsh) return;
  started = await startSshStack({
    identity: { oidc: { issuer: issuer.issuer, audience: AUDIENCE, ca: issuer.caFile, clockSkewSeconds: 0, jwksRefreshCooldownMs: 0 } },
    allow: [{ group: "sre" }],
  }).catch((error: unknown) => {
    startFailure = error;
    return undefined;
  });
});

afterAll(async () => {
  await started?.stop();
  await resource?.stop();
  await issuer?.close();
});

/** `-o LogLevel=INFO`: OpenSSH shows the server's banner and disconnect message only at INFO and above. */
const SAY_WHY = ["-o", "LogLevel=INFO"];
const DENIED = /Permission denied \(/;
const nowUs = () => Date.now() * 1000;

/** The ended sessions of `identity` on `connection` that started at or after `sinceUs`. */
async function refusedSince(sinceUs: number, identity: string, connection = "shell"): Promise<Recorded> {
  const [found] = await stackOrThrow().waitForSessions((s) => s.identity.name === identity && s.connection === connection && s.startedUs >= sinceUs);
  return found!;
}

describe("ssh logins through the gateway (and to sshd directly where it has the same case)", () => {
  gatewayIt("a registered key (keys add-ssh): the login works; the session names the identity", async () => {
    const directly = await ssh(resource.direct(), "echo direct-ok");
    expect(directly).toMatchObject({ code: 0, stdout: "direct-ok\n" });
    const marker = `key_${randomBytes(4).toString("hex")}`;
    const out = await ssh(stackOrThrow().endpoint(), `echo ${marker}`);
    expect(out.stderr).toBe("");
    expect(out).toMatchObject({ code: 0, stdout: `${marker}\n` });
    const recorded = await stackOrThrow().sessionWith(marker);
    expect(recorded.session).toMatchObject({ identity: { name: IDENTITY }, connection: "shell", protocol: "ssh" });
    // Which key logged in: its fingerprint, as `ssh-keygen -l` shows it.
    expect(JSON.stringify(recorded)).toContain(stackOrThrow().agentKey.fingerprint);
  });

  gatewayIt("`gatehouse ssh-config`: its Host block and known_hosts line, as printed, are all ssh needs (no wrapper)", async () => {
    const stack = stackOrThrow();
    const printed = await stack.cli(["ssh-config", "--connection", "shell", "--identity", IDENTITY, "--host", "via-config", "--key", stack.agentKey.privateKeyPath, "--json"]);
    expect(printed.stderr).toBe("");
    expect(printed.code).toBe(0);
    const { config, knownHosts } = JSON.parse(printed.stdout) as { config: string; knownHosts: string };
    const dir = tempDir("gatehouse-e2e-ssh-config-");
    writeFileSync(join(dir, "config"), config);
    writeFileSync(join(dir, "known_hosts"), `${knownHosts}\n`);
    // Where a user keeps them: ~/.ssh/config and ~/.ssh/known_hosts (the block may name either file).
    mkdirSync(join(dir, ".ssh"));
    writeFileSync(join(dir, ".ssh", "config"), config);
    writeFileSync(join(dir, ".ssh", "known_hosts"), `${knownHosts}\n`);
    const marker = `config_${randomBytes(4).toString("hex")}`;
    const out = spawnSync("ssh", ["-F", join(dir, "config"), "-o", `UserKnownHostsFile=${join(dir, "known_hosts")}`, "-o", "BatchMode=yes", "via-config", `echo ${marker}`], {
      encoding: "utf8",
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: dir },
      timeout: 30_000,
    });
    expect(out.stderr).toBe("");
    expect(out.stdout).toBe(`${marker}\n`);
    expect(out.status).toBe(0);
    expect((await stack.sessionWith(marker)).session).toMatchObject({ identity: { name: IDENTITY }, connection: "shell" });
  });

  gatewayIt("an unknown key: Permission denied, as sshd says it; recorded as auth_failed", async () => {
    const stranger = newKeyPair("stranger");
    const directly = await ssh(withIdentity(resource.direct({ alias: "direct-stranger" }), stranger.privateKeyPath), "true");
    expect(directly.code).toBe(255);
    expect(directly.stderr).toMatch(DENIED);
    const since = nowUs();
    const out = await ssh(stackOrThrow().endpoint({ identityFile: stranger.privateKeyPath }), "echo should-not-run");
    expect(out.code).toBe(255);
    expect(out.stdout).toBe("");
    expect(out.stderr).toMatch(DENIED);
    const recorded = await refusedSince(since, IDENTITY);
    expect(recorded.session.endReason).toBe("auth_failed");
    expect(recorded.events.map((e) => e.kind)).toContain("auth_failed");
  });

  gatewayIt("a revoked key: it worked, `keys revoke ID` and the next login is refused and recorded", async () => {
    const pair = newKeyPair("soon-revoked");
    const added = await stackOrThrow().addSshKey(IDENTITY, pair.publicKeyPath);
    const listed = await stackOrThrow().cli(["keys", "list", "--identity", IDENTITY]);
    expect(listed.stdout).toContain(added.fingerprint);
    const before = await ssh(stackOrThrow().endpoint({ identityFile: pair.privateKeyPath }), "echo before-revoke");
    expect(before).toMatchObject({ code: 0, stdout: "before-revoke\n", stderr: "" });
    const revoked = await stackOrThrow().cli(["keys", "revoke", added.id]);
    expect(revoked.code).toBe(0);
    const since = nowUs();
    const after = await ssh(stackOrThrow().endpoint({ identityFile: pair.privateKeyPath }), "echo after-revoke");
    expect(after.code).toBe(255);
    expect(after.stdout).toBe("");
    expect(after.stderr).toMatch(DENIED);
    const recorded = await refusedSince(since, IDENTITY);
    expect(recorded.events.map((e) => e.kind)).toContain("auth_failed");
  });

  gatewayIt("password = the access key (SSH_ASKPASS): the login works; a wrong one is refused like sshd refuses a wrong password", async () => {
    const directPw = resource.directPassword();
    if (directPw) {
      expect(await ssh(directPw, "echo pw-ok")).toMatchObject({ code: 0, stdout: "pw-ok\n", stderr: "" });
      const wrong = await ssh(resource.directPassword({ alias: "direct-pw-wrong", password: "not-it" })!, "true");
      expect(wrong.code).toBe(255);
      expect(wrong.stderr).toMatch(DENIED);
    }
    const marker = `password_${randomBytes(4).toString("hex")}`;
    const out = await ssh(stackOrThrow().endpoint({ password: stackOrThrow().key }), `echo ${marker}`);
    expect(out.stderr).toBe("");
    expect(out).toMatchObject({ code: 0, stdout: `${marker}\n` });
    expect((await stackOrThrow().sessionWith(marker)).session.identity).toMatchObject({ name: IDENTITY, method: "access_key" });
    const since = nowUs();
    const wrong = await ssh(stackOrThrow().endpoint({ password: "gk_wrong" }), "echo should-not-run");
    expect(wrong.code).toBe(255);
    expect(wrong.stderr).toMatch(DENIED);
    const recorded = await refusedSince(since, IDENTITY);
    expect(recorded.events.find((e) => e.kind === "auth_failed")).toMatchObject({ outcome: "error" });
  });

  gatewayIt("an OIDC access token as the password: the session names the OIDC identity and its groups", async () => {
    const token = await issuer.token(OIDC_CLIENT);
    const marker = `oidc_${randomBytes(4).toString("hex")}`;
    const out = await ssh(stackOrThrow().endpoint({ user: OIDC_CLIENT, password: token }), `echo ${marker}`);
    expect(out.stderr).toBe("");
    expect(out).toMatchObject({ code: 0, stdout: `${marker}\n` });
    const recorded = await stackOrThrow().sessionWith(marker);
    expect(recorded.session.identity).toMatchObject({ name: OIDC_CLIENT, method: "oidc", groups: ["sre"] });
    // Not allowed on shell-locked: denied, recorded.
    const since = nowUs();
    const locked = await ssh(stackOrThrow().endpoint({ user: OIDC_CLIENT, password: token, connection: "shell-locked" }), "echo should-not-run", { args: SAY_WHY });
    // The login itself succeeds (the identity is proven); the command is refused with the reason on stderr.
    expect(locked.code).not.toBe(0);
    expect(locked.stdout).toBe("");
    expect(locked.stderr).toMatch(/access denied/i);
    const denied = await refusedSince(since, OIDC_CLIENT, "shell-locked");
    expect(denied.events.map((e) => e.kind)).toContain("denied");
  });

  gatewayIt("the resource's host key is not the pinned one: the connector refuses, the client is told why, the refusal is recorded with both fingerprints", async () => {
    const since = nowUs();
    const out = await ssh(stackOrThrow().endpoint({ connection: "shell-wrongpin" }), "echo should-not-run", { args: SAY_WHY });
    expect(out.code).not.toBe(0);
    expect(out.stdout).toBe("");
    expect(out.stderr).toMatch(/host key/i);
    const recorded = await refusedSince(since, IDENTITY, "shell-wrongpin");
    expect(recorded.session.endReason).not.toBe("client_closed");
    const text = JSON.stringify(recorded.events);
    expect(text).toMatch(/host key/i);
    // The key the resource presented, by its fingerprint (what an operator compares with ssh-keyscan).
    expect(text).toContain(stackOrThrow().sshd.hostKeyFingerprint);
    // The gateway and connector carry on.
    expect(await ssh(stackOrThrow().endpoint(), "echo still-serving")).toMatchObject({ code: 0, stdout: "still-serving\n" });
  });
});

// ------------------------------------------------------------------ fuzz

/** A deterministic generator, so a failing round can be replayed. */
function random(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomBuffer(next: () => number, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i++) out[i] = Math.floor(next() * 256);
  return out;
}

/** Sends `bytes` after reading the server's identification line; resolves with what came back once the server closes (or `timeoutMs` passes: `closed` false). */
function sendRaw(host: string, port: number, bytes: (banner: string) => Buffer[], timeoutMs = 15_000): Promise<{ banner: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket: Socket = connect({ host, port });
    let text = "";
    let sent = false;
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ banner: text.split("\n")[0] ?? "", closed: false });
    }, timeoutMs);
    socket.on("data", (chunk) => {
      text += chunk.toString("latin1");
      if (!sent && text.includes("\n")) {
        sent = true;
        for (const b of bytes(text.split("\n")[0]!)) socket.write(b);
      }
    });
    socket.on("error", () => undefined);
    socket.on("close", () => {
      clearTimeout(timer);
      resolve({ banner: text.split("\n")[0] ?? "", closed: true });
    });
  });
}

interface ProtocolInternals {
  exec(chan: number, cmd: string, wantReply: boolean): void;
  env(chan: number, key: string, val: string, wantReply: boolean): void;
  pty(chan: number, rows: number, cols: number, height: number, width: number, term: string, modes: null, wantReply: boolean): void;
  windowChange(chan: number, rows: number, cols: number, height: number, width: number): void;
  signal(chan: number, signal: string): void;
  subsystem(chan: number, name: string, wantReply: boolean): void;
  shell(chan: number, wantReply: boolean): void;
  openssh_agentForward(chan: number, wantReply: boolean): void;
  tcpipForward(bindAddr: string, bindPort: number, wantReply: boolean): void;
  channelData(chan: number, data: Buffer): void;
  channelEOF(chan: number): void;
  channelClose(chan: number): void;
  channelWindowAdjust(chan: number, amount: number): void;
}

/**
 * Logs in with the ssh2 Client, opens a session channel, then sends `count` random channel requests
 * (exec, env, pty, window-change, signal, subsystem, shell, agent forwarding, -R, data, EOF, close,
 * window adjusts) on that channel and on channel numbers never opened. Resolves when the server has
 * closed the connection or after the last request had time to be answered.
 */
async function randomChannelRequests(e: { host: string; port: number; username: string; privateKey?: Buffer; password?: string }, seed: number, count: number): Promise<void> {
  const next = random(seed);
  const client = new Client();
  client.on("error", () => undefined);
  await new Promise<void>((resolve, reject) => {
    client.once("ready", () => resolve());
    client.once("error", reject);
    client.connect({ host: e.host, port: e.port, username: e.username, ...(e.privateKey ? { privateKey: e.privateKey } : {}), ...(e.password ? { password: e.password } : {}), hostVerifier: () => true, readyTimeout: 20_000 });
  });
  const closed = new Promise<void>((resolve) => client.once("close", () => resolve()));
  const open = await new Promise<number>((resolve, reject) =>
    client.exec("sleep 3", (error, stream) => {
      if (error) return reject(error);
      stream.on("error", () => undefined);
      stream.on("data", () => undefined);
      stream.stderr.on("data", () => undefined);
      resolve((stream as unknown as { outgoing: { id: number } }).outgoing.id);
    }),
  );
  const protocol = (client as unknown as { _protocol: ProtocolInternals })._protocol;
  const word = () => randomBuffer(next, Math.floor(next() * 40)).toString("latin1");
  const chan = () => (next() < 0.6 ? open : Math.floor(next() * 50));
  const big = () => Math.floor(next() * 2 ** 32);
  const requests: Array<() => void> = [
    () => protocol.exec(chan(), word(), next() < 0.5),
    () => protocol.env(chan(), word(), word(), next() < 0.5),
    () => protocol.pty(chan(), big(), big(), big(), big(), word(), null, next() < 0.5),
    () => protocol.windowChange(chan(), big(), big(), big(), big()),
    () => protocol.signal(chan(), ["INT", "TERM", "KILL", "HUP"][Math.floor(next() * 4)]!),
    () => protocol.subsystem(chan(), next() < 0.5 ? "sftp" : word(), true),
    () => protocol.shell(chan(), true),
    () => protocol.openssh_agentForward(chan(), true),
    () => protocol.tcpipForward("127.0.0.1", Math.floor(next() * 65536), true),
    () => protocol.channelData(chan(), randomBuffer(next, Math.floor(next() * 3000))),
    () => protocol.channelEOF(chan()),
    () => protocol.channelWindowAdjust(chan(), big()),
    () => protocol.channelClose(Math.floor(next() * 50)),
  ];
  try {
    for (let i = 0; i < count; i++) {
      try {
        requests[Math.floor(next() * requests.length)]!();
      } catch {
        // ssh2's own checks on what it sends (a closed connection, a bad argument): the next one.
      }
      if (i % 20 === 0) await new Promise((r) => setTimeout(r, 5));
    }
    await Promise.race([closed, new Promise((r) => setTimeout(r, 2000))]);
  } finally {
    client.end();
  }
}

describe("fuzz: garbage and random requests never take the server down", () => {
  const targets = [
    { name: "sshd directly", host: () => resource.sshd.host, port: () => resource.sshd.port, alive: async () => expect((await ssh(resource.direct(), "echo alive")).stdout).toBe("alive\n") },
    {
      name: "the gateway",
      host: () => stackOrThrow().listen.host,
      port: () => stackOrThrow().listen.port,
      alive: async () => {
        expect(stackOrThrow().gateway.proc.child.exitCode).toBeNull();
        expect(stackOrThrow().connector.child.exitCode).toBeNull();
        expect((await ssh(stackOrThrow().endpoint(), "echo alive")).stdout).toBe("alive\n");
      },
    },
  ];
  for (const target of targets) {
    (target.name === "the gateway" ? gatewayIt : it)(`${target.name}: garbage instead of a version line, and garbage after it, each closes that connection only`, async () => {
      const next = random(0x55aa);
      for (let round = 0; round < 6; round++) {
        // Before the version exchange: random lines, then bytes with no line end at all.
        const before = await sendRaw(target.host(), target.port(), () => [randomBuffer(next, 200 + Math.floor(next() * 20_000)), Buffer.from("\r\n"), randomBuffer(next, 70_000)]);
        expect(before.banner, `round ${round}`).toMatch(/^SSH-2\.0-/);
        expect(before.closed, `round ${round}: the server kept a connection that sent garbage open`).toBe(true);
        // After it: a valid identification, then random binary packets.
        const after = await sendRaw(target.host(), target.port(), () => [Buffer.from("SSH-2.0-fuzz_0.1\r\n"), randomBuffer(next, 5 + Math.floor(next() * 5000))]);
        expect(after.closed, `round ${round}: the server kept a connection that sent garbage packets open`).toBe(true);
      }
      // A client that vanishes mid-handshake.
      for (let i = 0; i < 10; i++) {
        const socket = connect({ host: target.host(), port: target.port() });
        socket.on("error", () => undefined);
        socket.write("SSH-2.0-OpenSSH_9.2\r\n");
        socket.write(randomBuffer(next, 30));
        await new Promise((r) => setTimeout(r, 10));
        socket.destroy();
      }
      await target.alive();
    });
  }

  it("random channel requests on an open session channel and on channels never opened (ssh2 Client): sshd directly keeps serving", async () => {
    for (const seed of [1, 2, 3, 4]) {
      await randomChannelRequests({ host: resource.sshd.host, port: resource.sshd.port, username: resourceUser(resource.sshd), privateKey: readFileSync(resource.sshd.clientKeyPath) }, seed, 150);
    }
    await targets[0]!.alive();
  });

  gatewayIt("random channel requests on an open session channel and on channels never opened (ssh2 Client): the gateway keeps serving", async () => {
    for (const seed of [1, 2, 3, 4]) {
      await randomChannelRequests({ host: stackOrThrow().listen.host, port: stackOrThrow().listen.port, username: `${IDENTITY}@shell`, password: stackOrThrow().key }, seed, 150);
    }
    await targets[1]!.alive();
  });
});

function withIdentity(e: SshEndpoint, identityFile: string): SshEndpoint {
  const { configFile: _, ...rest } = e;
  return sshEndpoint({ ...rest, identityFile });
}

// The SSH dialer on its own, against a real OpenSSH sshd on a free port (@gatehouse/test-servers):
// the main stream's login (host key pin, key and password auth) and channel streams driven with
// channel frames, as the gateway would.
import { execFileSync } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type AddressInfo, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Duplex } from "node:stream";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { pino } from "pino";
import type { OpenStream } from "@gatehouse/proto";
import {
  ChannelFrame,
  ChannelFrameReader,
  SSH_PARAMS,
  decodeExitStatus,
  decodeJson,
  encodeFrame,
  encodeJsonFrame,
  type ExitSignal,
} from "@gatehouse/protocols/ssh";
import { startSshd, type SshdServer } from "@gatehouse/test-servers";
import { resolveCredential } from "../../credentials.js";
import { ConnectorError } from "../../errors.js";
import type { DialContext, Dialer } from "../types.js";
import { SshConnections } from "./ssh-connections.js";
import { createSshDialer } from "./ssh-dialer.js";

let sshd: SshdServer;
let keysDir: string;
/** A key sshd does not know: a wrong key, and a wrong host key pin. */
let strangerKeyPath: string;
let strangerPublicLine: string;
let strangerFingerprint: string;

beforeAll(async () => {
  sshd = await startSshd({ password: true });
  keysDir = mkdtempSync(join(tmpdir(), "gatehouse-ssh-dialer-"));
  strangerKeyPath = join(keysDir, "stranger");
  execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", strangerKeyPath]);
  strangerPublicLine = readFileSync(`${strangerKeyPath}.pub`, "utf8").trim();
  strangerFingerprint = execFileSync("ssh-keygen", ["-l", "-E", "sha256", "-f", `${strangerKeyPath}.pub`], { encoding: "utf8" }).split(/\s+/)[1]!;
});
afterAll(async () => {
  await sshd?.stop();
  rmSync(keysDir, { recursive: true, force: true });
});

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

let nextSession = 0;

interface MainOptions {
  hostKey?: string;
  privateKey?: string;
  user?: string;
  passwordRef?: string;
}

function mainOpen(sessionId: string, o: MainOptions = {}): OpenStream {
  const options: Record<string, string> = {};
  const hostKey = "hostKey" in o ? o.hostKey : sshd.knownHostsLine;
  if (hostKey !== undefined) options.hostKey = hostKey;
  const privateKey = "privateKey" in o ? o.privateKey : `file:${sshd.clientKeyPath}`;
  if (privateKey !== undefined) options.privateKey = privateKey;
  return {
    sessionId,
    streamId: 1,
    protocol: "ssh",
    connection: "web1",
    target: { host: "127.0.0.1", port: sshd.port, options },
    credential: { user: o.user ?? sshd.user, passwordRef: o.passwordRef ?? "" },
    params: {},
  } as unknown as OpenStream;
}

function channelOpen(sessionId: string, params: Record<string, string>): OpenStream {
  return {
    sessionId,
    streamId: 3,
    protocol: "ssh",
    connection: "web1",
    target: { host: "127.0.0.1", port: sshd.port, options: {} },
    credential: { user: sshd.user, passwordRef: "" },
    params,
  } as unknown as OpenStream;
}

function context(password: string | null = null, overrides: Partial<DialContext> = {}): DialContext {
  return {
    password,
    logger: pino({ level: "silent" }),
    signal: new AbortController().signal,
    timeoutMs: 10_000,
    resolveCredential: (ref) => resolveCredential(ref, {}),
    ...overrides,
  };
}

async function dialError(promise: Promise<unknown>): Promise<ConnectorError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConnectorError);
  return error as ConnectorError;
}

/** A logged-in session: its dialer (with its own registry), session id and lifeline. */
async function session(o: MainOptions = {}, password: string | null = null) {
  const dialer = createSshDialer(new SshConnections());
  const sessionId = `sess-${process.pid}-${++nextSession}`;
  const result = await dialer(mainOpen(sessionId, o), context(password));
  cleanups.push(() => {
    result.socket.destroy();
  });
  return { dialer, sessionId, lifeline: result.socket, params: result.params ?? {} };
}

interface ReadFrame {
  type: number;
  payload: Buffer;
}

/** The gateway's end of a channel stream: sends frames, collects the ones that come back. */
class FrameClient {
  readonly frames: ReadFrame[] = [];
  readonly ended: Promise<void>;
  readonly #reader = new ChannelFrameReader();
  #waiters: (() => void)[] = [];

  constructor(readonly stream: Duplex) {
    stream.on("data", (chunk: Buffer) => {
      this.#reader.push(chunk);
      for (let f = this.#reader.next(); f; f = this.#reader.next()) this.frames.push({ type: f.type, payload: Buffer.from(f.payload) });
      for (const w of this.#waiters.splice(0)) w();
    });
    this.ended = new Promise((resolve, reject) => {
      stream.once("end", () => resolve());
      stream.once("error", reject);
    });
    cleanups.push(() => {
      stream.destroy();
    });
  }

  send(type: number, payload: Uint8Array | string = new Uint8Array(0)): void {
    this.stream.write(encodeFrame(type as 0, typeof payload === "string" ? Buffer.from(payload) : payload));
  }

  /** Everything the resource wrote to stdout so far. */
  stdout(): string {
    return Buffer.concat(this.frames.filter((f) => f.type === ChannelFrame.Data).map((f) => f.payload)).toString();
  }

  stderr(): string {
    return Buffer.concat(this.frames.filter((f) => f.type === ChannelFrame.Stderr).map((f) => f.payload)).toString();
  }

  async until(done: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!done()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; stdout so far: ${JSON.stringify(this.stdout().slice(-500))}`);
      await new Promise<void>((resolve) => {
        this.#waiters.push(resolve);
        setTimeout(resolve, 100);
      });
    }
  }

  /** The frame types with runs of Data/Stderr folded, e.g. ["out", "Eof", "ExitStatus"]. */
  tail(): string[] {
    const names = Object.fromEntries(Object.entries(ChannelFrame).map(([k, v]) => [v, k]));
    return this.frames.map((f) => names[f.type]!).filter((n) => n !== "Data" && n !== "Stderr");
  }

  exitStatus(): number | undefined {
    const f = this.frames.find((x) => x.type === ChannelFrame.ExitStatus);
    return f ? decodeExitStatus(f.payload) : undefined;
  }
}

async function exec(dialer: Dialer, sessionId: string, command: string, extra: Record<string, string> = {}): Promise<FrameClient> {
  const { socket } = await dialer(channelOpen(sessionId, { [SSH_PARAMS.channel]: "session", [SSH_PARAMS.request]: "exec", [SSH_PARAMS.command]: command, ...extra }), context());
  return new FrameClient(socket);
}

async function run(dialer: Dialer, sessionId: string, command: string): Promise<FrameClient> {
  const client = await exec(dialer, sessionId, command);
  client.send(ChannelFrame.Eof);
  await client.ended;
  return client;
}

describe("ssh dialer: login and host key", () => {
  it("logs in with the key when the pin is the known_hosts line, and reports the server and its key", async () => {
    const { dialer, sessionId, params } = await session();
    expect(params[SSH_PARAMS.serverVersion]).toMatch(/^SSH-2\.0-OpenSSH_/);
    expect(params[SSH_PARAMS.hostKeyFingerprint]).toBe(sshd.hostKeyFingerprint);
    const who = await run(dialer, sessionId, "id -un");
    expect(who.stdout()).toBe(`${sshd.user}\n`);
    expect(who.exitStatus()).toBe(0);
  });

  it("logs in when the pin is the SHA256 fingerprint", async () => {
    const { params } = await session({ hostKey: sshd.hostKeyFingerprint });
    expect(params[SSH_PARAMS.hostKeyFingerprint]).toBe(sshd.hostKeyFingerprint);
  });

  it("refuses a host key that does not match the pin, naming both fingerprints", async () => {
    const authAttempts = () => (sshd.log().match(/^(Accepted|Failed|Postponed) /gm) ?? []).length;
    const attemptsBefore = authAttempts();
    for (const hostKey of [`[127.0.0.1]:${sshd.port} ${strangerPublicLine}`, strangerFingerprint]) {
      const error = await dialError(createSshDialer()(mainOpen("s-mismatch", { hostKey }), context()));
      expect(error.code).toBe("AUTH_FAILED");
      expect(error.message).toContain(`expected ${strangerFingerprint}`);
      expect(error.message).toContain(`presented ${sshd.hostKeyFingerprint}`);
    }
    // Refused before any credential went out: sshd logged no authentication attempt.
    await new Promise((r) => setTimeout(r, 200));
    expect(authAttempts()).toBe(attemptsBefore);
  });

  it("refuses a connection without a pin (no trust on first use), saying what the server presented", async () => {
    const error = await dialError(createSshDialer()(mainOpen("s-nopin", { hostKey: undefined }), context()));
    expect(error.code).toBe("AUTH_FAILED");
    expect(error.message).toContain("no pinned host key");
    expect(error.message).toContain(sshd.hostKeyFingerprint);
  });

  it("refuses a pin that is not a key", async () => {
    const error = await dialError(createSshDialer()(mainOpen("s-badpin", { hostKey: "web1 not-a-key" }), context()));
    expect(error.code).toBe("AUTH_FAILED");
    expect(error.message).toContain("target.hostKey is not usable");
  });

  it("logs in with a password when the connection has one", async (t) => {
    if (sshd.password === undefined) return t.skip("password logins need root to make the test user");
    const { dialer, sessionId } = await session({ user: sshd.password.user, privateKey: undefined }, sshd.password.password);
    const who = await run(dialer, sessionId, "id -un");
    expect(who.stdout()).toBe(`${sshd.password.user}\n`);
  });

  it("refuses a wrong password or an unknown key with sshd's methods", async (t) => {
    if (sshd.password === undefined) return t.skip("password logins need root to make the test user");
    const wrongPassword = await dialError(
      createSshDialer()(mainOpen("s-wrongpw", { user: sshd.password.user, privateKey: undefined }), context("not the password")),
    );
    expect(wrongPassword.code).toBe("AUTH_FAILED");
    expect(wrongPassword.message).toContain(`refused user "${sshd.password.user}"`);
    expect(wrongPassword.message).toMatch(/it accepts: publickey, password\)/);
    expect(wrongPassword.message).not.toContain("not the password");

    const wrongKey = await dialError(createSshDialer()(mainOpen("s-wrongkey", { privateKey: `file:${strangerKeyPath}` }), context()));
    expect(wrongKey.code).toBe("AUTH_FAILED");
    expect(wrongKey.message).toContain("tried: publickey");
  });

  it("refuses a key reference it cannot use, and a connection with no credential at all", async () => {
    const missing = await dialError(createSshDialer()(mainOpen("s-nokeyfile", { privateKey: `file:${keysDir}/absent` }), context()));
    expect(missing.code).toBe("CREDENTIAL_UNAVAILABLE");
    const publicOnly = await dialError(createSshDialer()(mainOpen("s-pubkey", { privateKey: `file:${strangerKeyPath}.pub` }), context()));
    expect(publicOnly.code).toBe("CREDENTIAL_UNAVAILABLE");
    expect(publicOnly.message).toContain("not a private key");
    const none = await dialError(createSshDialer()(mainOpen("s-nocred", { privateKey: undefined }), context()));
    expect(none.code).toBe("CREDENTIAL_UNAVAILABLE");
  });

  it("says a server that is not SSH is not one", async () => {
    const server = createServer((socket) => socket.end("HTTP/1.1 400 Bad Request\r\n\r\n"));
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    const open = mainOpen("s-http");
    (open.target as { port: number }).port = (server.address() as AddressInfo).port;
    const error = await dialError(createSshDialer()(open, context()));
    expect(error.code).toBe("PROTOCOL_ERROR");
    expect(error.message).toContain("HTTP/1.1 400");
  });
});

describe("ssh dialer: session channels", () => {
  it("exec: stdout, stderr, then Eof and the exit status, then the end", async () => {
    const { dialer, sessionId } = await session();
    const client = await run(dialer, sessionId, "sh -c 'echo out; echo err >&2; exit 3'");
    expect(client.stdout()).toBe("out\n");
    expect(client.stderr()).toBe("err\n");
    expect(client.tail()).toEqual(["Eof", "ExitStatus"]);
    expect(client.exitStatus()).toBe(3);
  });

  it("exec: stdin reaches cat, and Eof ends it", async () => {
    const { dialer, sessionId } = await session();
    const client = await exec(dialer, sessionId, "cat");
    client.send(ChannelFrame.Data, "hello\n");
    client.send(ChannelFrame.Data, "world\n");
    await client.until(() => client.stdout() === "hello\nworld\n", "cat's echo");
    expect(client.tail()).toEqual([]); // cat waits for more until stdin ends
    client.send(ChannelFrame.Eof);
    await client.ended;
    expect(client.tail()).toEqual(["Eof", "ExitStatus"]);
    expect(client.exitStatus()).toBe(0);
  });

  it("exec: the client's env reaches the command (sshd's AcceptEnv decides)", async () => {
    const { dialer, sessionId } = await session();
    const client = await exec(dialer, sessionId, "echo \"$GATEHOUSE_TEST_VAR\"", { [SSH_PARAMS.env]: JSON.stringify({ GATEHOUSE_TEST_VAR: "from the client" }) });
    client.send(ChannelFrame.Eof);
    await client.ended;
    expect(client.stdout()).toBe("from the client\n");
  });

  it("shell with a pty: stty size follows a window change; exit ends the channel", async () => {
    const { dialer, sessionId } = await session();
    const { socket } = await dialer(
      channelOpen(sessionId, {
        [SSH_PARAMS.channel]: "session",
        [SSH_PARAMS.request]: "shell",
        [SSH_PARAMS.pty]: JSON.stringify({ term: "xterm", cols: 80, rows: 24, width: 0, height: 0, modes: {} }),
      }),
      context(),
    );
    const shell = new FrameClient(socket);
    shell.send(ChannelFrame.Data, "stty size\n");
    await shell.until(() => /\b24 80\r?\n/.test(shell.stdout()), "24 80");
    shell.send(ChannelFrame.WindowChange, encodeJsonFrame(ChannelFrame.WindowChange, { cols: 132, rows: 50, width: 0, height: 0 }).subarray(5));
    shell.send(ChannelFrame.Data, "stty size\n");
    await shell.until(() => /\b50 132\r?\n/.test(shell.stdout()), "50 132");
    shell.send(ChannelFrame.Data, "exit 7\n");
    await shell.ended;
    expect(shell.exitStatus()).toBe(7);
    expect(shell.tail().slice(-2)).toEqual(["Eof", "ExitStatus"]);
  });

  it("a signal reaches the command, and its death by signal comes back as ExitSignal", async (t) => {
    // sshd delivers signals only with post-auth privilege separation, which it skips for root: log in as the test user.
    if (sshd.password === undefined) return t.skip("signals need a non-root login: the password user needs root to make");
    const { dialer, sessionId } = await session({ user: sshd.password.user, privateKey: undefined }, sshd.password.password);
    const client = await exec(dialer, sessionId, "echo started; exec sleep 30");
    await client.until(() => client.stdout() === "started\n", "the command to start");
    client.send(ChannelFrame.Signal, "TERM");
    await client.ended;
    const exit = client.frames.find((f) => f.type === ChannelFrame.ExitSignal);
    expect(exit).toBeDefined();
    expect(decodeJson<ExitSignal>(exit!.payload)).toMatchObject({ signal: "TERM", coreDumped: false });
    expect(client.tail()).toEqual(["Eof", "ExitSignal"]);
  });

  it("the sftp subsystem answers SSH_FXP_INIT with SSH_FXP_VERSION", async () => {
    const { dialer, sessionId } = await session();
    const { socket } = await dialer(channelOpen(sessionId, { [SSH_PARAMS.channel]: "session", [SSH_PARAMS.request]: "subsystem", [SSH_PARAMS.subsystem]: "sftp" }), context());
    const sftp = new FrameClient(socket);
    // uint32 length 5, byte SSH_FXP_INIT (1), uint32 version 3
    sftp.send(ChannelFrame.Data, Uint8Array.of(0, 0, 0, 5, 1, 0, 0, 0, 3));
    await sftp.until(() => sftp.frames.some((f) => f.type === ChannelFrame.Data), "SSH_FXP_VERSION");
    const reply = Buffer.concat(sftp.frames.filter((f) => f.type === ChannelFrame.Data).map((f) => f.payload));
    expect(reply[4]).toBe(2); // SSH_FXP_VERSION
    expect(reply.readUInt32BE(5)).toBe(3);
    sftp.stream.end(); // the gateway ends the stream: the client closed the channel
    await sftp.ended;
  });

  it("sshd refusing a request comes back as a refusal with its reason", async () => {
    const { dialer, sessionId } = await session();
    const error = await dialError(
      dialer(channelOpen(sessionId, { [SSH_PARAMS.channel]: "session", [SSH_PARAMS.request]: "subsystem", [SSH_PARAMS.subsystem]: "no-such-subsystem" }), context()),
    );
    expect(error.code).toBe("PROTOCOL_UNSUPPORTED");
    expect(error.message).toContain('refused the subsystem "no-such-subsystem"');
  });

  it("refuses a channel stream for a session with no ssh connection here", async () => {
    const error = await dialError(createSshDialer()(channelOpen("no-such-session", { [SSH_PARAMS.channel]: "session", [SSH_PARAMS.request]: "shell" }), context()));
    expect(error.code).toBe("PROTOCOL_ERROR");
    expect(error.message).toContain("no ssh connection for session no-such-session");
  });

  it("refuses malformed channel params", async () => {
    const { dialer, sessionId } = await session();
    const noCommand = await dialError(dialer(channelOpen(sessionId, { [SSH_PARAMS.channel]: "session", [SSH_PARAMS.request]: "exec" }), context()));
    expect(noCommand.code).toBe("PROTOCOL_ERROR");
    const badKind = await dialError(dialer(channelOpen(sessionId, { [SSH_PARAMS.channel]: "x11" }), context()));
    expect(badKind.code).toBe("PROTOCOL_UNSUPPORTED");
  });

  it("a broken frame from the gateway ends the channel stream with PROTOCOL_ERROR", async () => {
    const { dialer, sessionId } = await session();
    const client = await exec(dialer, sessionId, "cat");
    client.stream.write(Uint8Array.of(9, 0, 0, 0, 0));
    const error = await client.ended.then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConnectorError);
    expect((error as ConnectorError).code).toBe("PROTOCOL_ERROR");
  });
});

describe("ssh dialer: direct-tcpip", () => {
  let echo: Server;
  beforeAll(async () => {
    echo = createServer((socket) => socket.pipe(socket));
    echo.listen(0, "127.0.0.1");
    await once(echo, "listening");
  });
  afterAll(() => new Promise<void>((r) => echo.close(() => r())));

  it("forwards raw bytes to a TCP server on the resource's side", async () => {
    const { dialer, sessionId } = await session();
    const { socket } = await dialer(
      channelOpen(sessionId, {
        [SSH_PARAMS.channel]: "direct-tcpip",
        [SSH_PARAMS.host]: "127.0.0.1",
        [SSH_PARAMS.port]: String((echo.address() as AddressInfo).port),
        [SSH_PARAMS.originHost]: "127.0.0.1",
        [SSH_PARAMS.originPort]: "50000",
      }),
      context(),
    );
    cleanups.push(() => {
      socket.destroy();
    });
    const received: Buffer[] = [];
    socket.on("data", (chunk: Buffer) => received.push(chunk));
    socket.end("ping through sshd");
    await once(socket, "end");
    expect(Buffer.concat(received).toString()).toBe("ping through sshd");
  });

  it("a forward sshd cannot connect is refused as unreachable, with sshd's reason", async () => {
    const { dialer, sessionId } = await session();
    const closed = createServer();
    closed.listen(0, "127.0.0.1");
    await once(closed, "listening");
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const error = await dialError(
      dialer(channelOpen(sessionId, { [SSH_PARAMS.channel]: "direct-tcpip", [SSH_PARAMS.host]: "127.0.0.1", [SSH_PARAMS.port]: String(port) }), context()),
    );
    expect(error.code).toBe("TARGET_UNREACHABLE");
    expect(error.message).toContain("refused a forward to 127.0.0.1");
  });
});

describe("ssh dialer: backpressure", () => {
  it("a paused reader keeps the connector's buffer bounded while sshd has 64 MiB to send", async () => {
    const { dialer, sessionId } = await session();
    const total = 64 * 1024 * 1024;
    const { socket } = await dialer(channelOpen(sessionId, { [SSH_PARAMS.channel]: "session", [SSH_PARAMS.request]: "exec", [SSH_PARAMS.command]: `head -c ${total} /dev/zero` }), context());
    cleanups.push(() => {
      socket.destroy();
    });
    const before = process.memoryUsage().arrayBuffers;
    // Nobody reads for 1.5 s: at loopback speed sshd would have sent it all by then.
    await new Promise((r) => setTimeout(r, 1500));
    expect(socket.readableLength).toBeLessThan(256 * 1024);
    // ssh2 may hold one channel window (2 MiB) besides; far below the 64 MiB on offer.
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(16 * 1024 * 1024);

    // Reading again lets every byte through, in order, with the exit status at the end.
    const reader = new ChannelFrameReader();
    let data = 0;
    let exit: number | undefined;
    socket.on("data", (chunk: Buffer) => {
      reader.push(chunk);
      for (let f = reader.next(); f; f = reader.next()) {
        if (f.type === ChannelFrame.Data) data += f.payload.byteLength;
        if (f.type === ChannelFrame.ExitStatus) exit = decodeExitStatus(f.payload);
      }
    });
    socket.write(encodeFrame(ChannelFrame.Eof));
    await once(socket, "end");
    expect(data).toBe(total);
    expect(exit).toBe(0);
  });

  it("stdin is taken only as fast as sshd takes it: the writer sees the backlog, not the connector", async () => {
    const { dialer, sessionId } = await session();
    const client = await exec(dialer, sessionId, "sleep 2; wc -c");
    const total = 32 * 1024 * 1024;
    const piece = new Uint8Array(32 * 1024).fill(120);
    for (let sent = 0; sent < total; sent += piece.byteLength) client.send(ChannelFrame.Data, piece);
    await new Promise((r) => setTimeout(r, 1000));
    // While the command sleeps, what the channel accepted is at most sshd's window plus ssh2's
    // buffer (2 MiB each); the rest waits, unacknowledged, at the writer (the relay, so the tunnel window).
    expect(client.stream.writableLength).toBeGreaterThan(total - 8 * 1024 * 1024);
    client.send(ChannelFrame.Eof);
    await client.ended;
    expect(client.stdout().trim()).toBe(String(total));
    expect(client.exitStatus()).toBe(0);
  });
});

describe("ssh dialer: the lifeline", () => {
  it("ending the main stream closes the ssh connection and its channels; later channels are refused", async () => {
    const { dialer, sessionId, lifeline } = await session();
    const client = await exec(dialer, sessionId, "sleep 30");
    const lifelineClosed = once(lifeline, "close");
    lifeline.resume();
    lifeline.end(); // what the relay does when the gateway ends the main stream
    await client.ended; // the open channel ends with its connection
    await lifelineClosed;
    const error = await dialError(dialer(channelOpen(sessionId, { [SSH_PARAMS.channel]: "session", [SSH_PARAMS.request]: "shell" }), context()));
    expect(error.code).toBe("PROTOCOL_ERROR");
    expect(error.message).toContain(`no ssh connection for session ${sessionId}`);
  });

  it("the lifeline ends when sshd ends the connection, and the session leaves the registry", async () => {
    // sshd itself closes a connection that has had no channel for a second (OpenSSH 9.2+).
    const strict = await startSshd({ extraConfig: ["UnusedConnectionTimeout 1"] });
    cleanups.push(() => strict.stop());
    const connections = new SshConnections();
    const dialer = createSshDialer(connections);
    const open = mainOpen("s-timeout", { hostKey: strict.knownHostsLine, privateKey: `file:${strict.clientKeyPath}` });
    (open.target as { port: number }).port = strict.port;
    const { socket: lifeline } = await dialer(open, context());
    cleanups.push(() => {
      lifeline.destroy();
    });
    expect(connections.size).toBe(1);
    const ended = once(lifeline, "end");
    lifeline.resume();
    await Promise.race([ended, new Promise((_, reject) => setTimeout(() => reject(new Error(`lifeline did not end; sshd log:\n${strict.log()}`)), 8000))]);
    expect(connections.size).toBe(0);
  });
});

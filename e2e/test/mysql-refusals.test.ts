import mysql from "mysql2/promise";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AUDIENCE, startTestIssuer, type TestIssuer } from "../../packages/gateway/test/support/oidc-issuer.js";
import { comQuery, errPacket, handshakeResponse, packet, rawLogin, rawMysql, type Packet } from "../lib/raw-mysql.js";
import { IDENTITY, mysql2Options, startMysqlStack, type MysqlEndpoint, type MysqlStack } from "../lib/mysql-stack.js";
import type { Recorded } from "../lib/postgres-stack.js";

// Every way a MySQL login can be refused, with MySQL's own codes (what drivers
// and agents branch on), each in the record; an OIDC token over TLS; and fuzz:
// random and truncated packets at every phase of a session end it with an ERR
// packet, never the gateway, which keeps serving the others. The fuzz runs
// against the server directly too: MariaDB's own answers are the reference.

let stack: MysqlStack | undefined;
let issuer: TestIssuer | undefined;
let direct: MysqlEndpoint;
const OIDC_CLIENT = "agent-oidc";

beforeAll(async () => {
  issuer = await startTestIssuer([{ id: OIDC_CLIENT, secret: "oidc-secret", groups: ["db-readers"] }]);
  stack = await startMysqlStack({
    orders: 10,
    identity: { oidc: { issuer: issuer.issuer, audience: AUDIENCE, ca: issuer.caFile, clockSkewSeconds: 0, jwksRefreshCooldownMs: 0 } },
    allow: [{ group: "db-readers" }],
  });
  direct = stack.direct();
});

afterAll(async () => {
  await stack?.stop();
  await issuer?.close();
});

interface MysqlError extends Error {
  errno?: number;
  sqlState?: string;
  sqlMessage?: string;
}

let applications = 0;
const appName = (label: string) => `e2e-${label}-${++applications}-${Math.random().toString(36).slice(2, 6)}`;

/** Logs in with mysql2 through the gateway and returns the error it fails with. */
async function refusal(o: { connection?: string; user?: string; password?: string; tls?: boolean; application: string }): Promise<MysqlError> {
  const endpoint = stack!.endpoint({ ...(o.connection ? { connection: o.connection } : {}), ...(o.user ? { user: o.user } : {}), ...(o.password !== undefined ? { password: o.password } : {}) });
  const c = await mysql.createConnection({ ...mysql2Options(endpoint, { tls: o.tls ?? true, application: o.application }), connectTimeout: 15_000 }).then(
    (c) => c,
    (error: unknown) => error as MysqlError,
  );
  // A handshake error from mysql2 carries its text in `message` only (`sqlMessage` is for query errors).
  if (c instanceof Error) return Object.assign(c, { sqlMessage: c.sqlMessage ?? c.message });
  await c.end();
  throw new Error("the connection was accepted");
}

function only(recorded: Recorded) {
  expect(recorded.events).toHaveLength(1);
  return recorded.events[0]!;
}

describe(`refused MySQL logins`, () => {
  it("a wrong key: 1045 (28000) access denied, recorded as auth_failed", async () => {
    const app = appName("badkey");
    const error = await refusal({ password: "ghk_wrong", application: app });
    expect(error).toMatchObject({ errno: 1045, sqlState: "28000" });
    expect(error.sqlMessage).toMatch(new RegExp(`^Access denied for user '${IDENTITY}'`));
    const recorded = await stack!.sessionOf(app);
    expect(recorded.session).toMatchObject({ identity: { name: IDENTITY }, connection: "app", protocol: "mysql", endReason: "auth_failed" });
    expect(only(recorded)).toMatchObject({ kind: "auth_failed", outcome: "error", details: expect.objectContaining({ reason: "wrong_key" }) });
  });

  it("the same wrong key over plaintext loopback (mysql_native_password): 1045 too", async () => {
    const error = await refusal({ password: "ghk_wrong", tls: false, application: appName("badkey-plain") });
    expect(error).toMatchObject({ errno: 1045, sqlState: "28000" });
  });

  it("the mariadb client with a wrong key says access denied", async () => {
    const { mariadb } = await import("../lib/mysql-clients.js");
    const out = await mariadb(stack!.endpoint({ password: "ghk_wrong" }), ["-e", "SELECT 1"]);
    expect(out.code).toBe(1);
    expect(out.stderr).toMatch(new RegExp(`^ERROR 1045 \\(28000\\): Access denied for user '${IDENTITY}'`, "m"));
  });

  it("an identity with no key at all: 1045 as well (no hint whether the identity exists)", async () => {
    const app = appName("nokey");
    const error = await refusal({ user: "nobody", password: "ghk_whatever", application: app });
    expect(error).toMatchObject({ errno: 1045, sqlState: "28000" });
    expect(only(await stack!.sessionOf(app))).toMatchObject({ kind: "auth_failed", outcome: "error", details: expect.objectContaining({ reason: "no_key" }) });
  });

  it("an identity the connection does not allow: 1044 (42000), recorded as denied", async () => {
    const app = appName("denied");
    const error = await refusal({ connection: "app-locked", application: app });
    expect(error).toMatchObject({ errno: 1044, sqlState: "42000" });
    expect(error.sqlMessage).toContain("app-locked");
    const recorded = await stack!.sessionOf(app);
    expect(recorded.session).toMatchObject({ identity: { name: IDENTITY }, connection: "app-locked", endReason: "denied" });
    expect(only(recorded)).toMatchObject({ kind: "denied", outcome: "error" });
  });

  it("a connection that does not exist: 1049 (42000) unknown database, recorded", async () => {
    const app = appName("unknown");
    const error = await refusal({ connection: "no-such-connection", application: app });
    expect(error).toMatchObject({ errno: 1049, sqlState: "42000" });
    expect(error.sqlMessage).toContain("no-such-connection");
    const recorded = await stack!.sessionOf(app);
    expect(recorded.session).toMatchObject({ connection: "no-such-connection", endReason: "unknown_connection" });
  });

  it("a wrong key on a connection that does not exist: 1045 as on one that does (no connection names for the unauthenticated)", async () => {
    const error = await refusal({ connection: "no-such-connection", password: "ghk_wrong", application: appName("badkey-unknown") });
    expect(error).toMatchObject({ errno: 1045, sqlState: "28000" });
    expect(error.sqlMessage).not.toContain("no-such-connection");
  });

  it("a resource with nothing listening: an error that says it could not be reached, recorded", async () => {
    const app = appName("dead");
    const error = await refusal({ connection: "app-dead", application: app });
    expect(error.errno).toBeGreaterThan(0);
    expect(error.sqlMessage).toContain(`127.0.0.1:${stack!.deadPort}`);
    const recorded = await stack!.sessionOf(app);
    expect(recorded.session).toMatchObject({ connection: "app-dead", endReason: "target_refused" });
    expect(only(recorded)).toMatchObject({ kind: "connect", outcome: "error" });
  });

  it("an OIDC access token over TLS: the session names the OIDC identity and its groups", async () => {
    const token = await issuer!.token(OIDC_CLIENT);
    const app = appName("oidc");
    const c = await mysql.createConnection(mysql2Options(stack!.endpoint({ user: OIDC_CLIENT, password: token }), { tls: true, application: app }));
    const [rows] = await c.query("SELECT COUNT(*) AS n FROM orders");
    expect(rows).toEqual([{ n: 10 }]);
    await c.end();
    const recorded = await stack!.sessionOf(app);
    expect(recorded.session.identity).toMatchObject({ name: OIDC_CLIENT, method: "oidc", issuer: issuer!.issuer, groups: ["db-readers"] });
    expect(recorded.events.find((e) => e.command === "SELECT COUNT(*) AS n FROM orders")).toMatchObject({ outcome: "ok" });
  });

  it("KILL QUERY names the gateway's connection id: the same identity cancels its statement, another identity gets 1095", async () => {
    const agent = await mysql.createConnection(mysql2Options(stack!.endpoint(), { application: appName("kill-victim") }));
    const other = await mysql.createConnection(mysql2Options(stack!.endpoint({ user: OIDC_CLIENT, password: await issuer!.token(OIDC_CLIENT) }), { tls: true }));
    const killer = await mysql.createConnection(mysql2Options(stack!.endpoint()));
    try {
      // The id the client was handed in the greeting (mysql2's threadId): the gateway's, not the server's.
      const id = agent.threadId!;
      const sleeping = agent.query("SELECT SLEEP(5) AS slept").then(
        ([rows]) => rows as Array<{ slept: number }>,
        (error: unknown) => error as MysqlError,
      );
      await new Promise((r) => setTimeout(r, 500));
      await expect(other.query(`KILL QUERY ${id}`)).rejects.toMatchObject({ errno: 1095 });
      const started = Date.now();
      await killer.query(`KILL QUERY ${id}`);
      const outcome = await sleeping;
      expect(Date.now() - started).toBeLessThan(3000);
      // MariaDB ends an interrupted SLEEP with 1317, or returns 1 from it: either way not the 5 s.
      if (outcome instanceof Error) expect(outcome.errno).toBe(1317);
      else expect(outcome).toEqual([{ slept: 1 }]);
    } finally {
      await Promise.all([agent.end(), other.end(), killer.end()].map((p) => p.catch(() => undefined)));
    }
  });
});

// ---------------------------------------------------------------- fuzz

/** A deterministic PRNG (mulberry32), so a failing case can be replayed from its seed. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomBytes(next: () => number, length: number): Buffer {
  return Buffer.from(Array.from({ length }, () => Math.floor(next() * 256)));
}

/** The packets the server sends until it closes the connection; the test fails if it never does. */
async function answerTo(e: MysqlEndpoint, send: (greetingScramble: Buffer) => Buffer): Promise<Packet[]> {
  const client = await rawMysql(e.host, e.port);
  try {
    client.write(send(client.greeting.scramble));
    return await client.untilClosed(20_000);
  } finally {
    client.destroy();
  }
}

const endsWithError = (packets: Packet[]) => errPacket(packets.at(-1));

const fuzzPaths: Array<{ name: string; endpoint: () => MysqlEndpoint }> = [
  { name: "MariaDB itself (the reference)", endpoint: () => direct },
  { name: "the gateway", endpoint: () => stack!.endpoint() },
];

for (const path of fuzzPaths) {
  describe(`garbage and truncated packets to ${path.name}`, () => {
    it("a HandshakeResponse41 cut short at each offset (framed as a whole packet): an ERR packet, then the connection closes", async () => {
      const e = path.endpoint();
      const whole = handshakeResponse({ user: e.user, password: e.password ?? "", database: e.database, scramble: Buffer.alloc(20) });
      // The fixed part ends at 32; the user name, the auth data and the database follow.
      for (const cut of [1, 4, 8, 9, 20, 31, 32, 33, 32 + e.user.length, 32 + e.user.length + 2]) {
        const packets = await answerTo(e, () => packet(1, whole.subarray(0, cut)));
        expect(endsWithError(packets), `cut at ${cut}`).toBeDefined();
      }
    });

    it("random framed packets instead of the handshake response: an ERR packet, at the latest after the server asked for more", async () => {
      const next = random(0x5eed);
      const e = path.endpoint();
      for (let round = 0; round < 12; round++) {
        const client = await rawMysql(e.host, e.port);
        const sent: string[] = [];
        try {
          // Byte 1 without CLIENT_SSL (0x0800): a random SSLRequest would make any server wait for a TLS handshake.
          const first = randomBytes(next, 2 + Math.floor(next() * 200));
          first[1]! &= ~0x08;
          let sequenceId = 1;
          let payload = first;
          let reply: Packet | null = null;
          // A random response can read as an old-style or plugin login: the server may go on with an auth
          // switch (0xfe) or more auth data (0x01) before it refuses; the answers to those are random too.
          for (let turn = 0; turn < 4; turn++) {
            sent.push(payload.toString("hex"));
            client.write(packet(sequenceId, payload));
            reply = await client.next(20_000);
            if (!reply || errPacket(reply) || (reply.payload[0] !== 0xfe && reply.payload[0] !== 0x01)) break;
            sequenceId = reply.sequenceId + 1;
            payload = randomBytes(next, 1 + Math.floor(next() * 40));
          }
          expect(errPacket(reply), `round ${round}: sent ${sent.join(" then ")}`).toBeDefined();
        } finally {
          client.destroy();
        }
      }
    });

    it("after login, unknown commands and malformed ones get an ERR packet; the session stays usable or ends with one", async () => {
      const e = path.endpoint();
      const client = await rawLogin({ host: e.host, port: e.port, user: e.user, password: e.password ?? "", database: e.database });
      try {
        // Command bytes no server knows: ERR 1047 (08S01) unknown command, and the session goes on.
        for (const command of [0x20, 0x7f, 0xee]) {
          client.write(packet(0, Buffer.from([command, 1, 2, 3])));
          const reply = await client.next();
          expect(errPacket(reply), `command 0x${command.toString(16)}`).toMatchObject({ errno: 1047 });
        }
        client.write(comQuery("SELECT 41 + 1"));
        const columnCount = await client.next();
        expect(columnCount?.payload[0]).toBe(1); // one column: the session still answers queries
      } finally {
        client.destroy();
      }
      // A COM_STMT_EXECUTE too short to hold a statement id.
      const again = await rawLogin({ host: e.host, port: e.port, user: e.user, password: e.password ?? "", database: e.database });
      try {
        again.write(packet(0, Buffer.from([0x17, 0x01])));
        expect(errPacket(await again.next())).toBeDefined();
      } finally {
        again.destroy();
      }
    });

    it("random bytes with random framing, then the client vanishes mid-packet: the server stays up for the next client", async () => {
      const next = random(0xbad);
      const e = path.endpoint();
      for (let round = 0; round < 10; round++) {
        const client = await (round % 2 === 0 ? rawMysql(e.host, e.port) : rawLogin({ host: e.host, port: e.port, user: e.user, password: e.password ?? "", database: e.database }));
        client.write(randomBytes(next, 1 + Math.floor(next() * 64)));
        await new Promise((r) => setTimeout(r, 20));
        client.destroy();
      }
      const c = await mysql.createConnection(mysql2Options(e));
      const [rows] = await c.query("SELECT COUNT(*) AS n FROM orders");
      expect(rows).toEqual([{ n: 10 }]);
      await c.end();
      if (stack && path.endpoint !== fuzzPaths[0]!.endpoint) expect(stack.gateway.proc.child.exitCode).toBeNull();
    });
  });
}

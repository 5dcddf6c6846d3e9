import { createHash } from "node:crypto";
import { connect, type Socket } from "node:net";

// A MySQL client at the byte level, for what no driver will send: garbage and
// truncated packets at each phase of a session. It reads the server's greeting,
// can log in with mysql_native_password over plaintext (the gateway's loopback
// path), and otherwise writes whatever bytes a test gives it. Deliberately not
// the protocol package's codecs: the test must not share the code it checks.

export interface Packet {
  sequenceId: number;
  payload: Buffer;
}

export interface RawMysql {
  socket: Socket;
  greeting: { serverVersion: string; connectionId: number; scramble: Buffer; plugin: string };
  /** Resolves with the next packet, or null when the server closed the connection. */
  next(timeoutMs?: number): Promise<Packet | null>;
  /** Every packet until the server closes the connection (or `timeoutMs` passes: then it throws). */
  untilClosed(timeoutMs?: number): Promise<Packet[]>;
  write(bytes: Buffer): void;
  destroy(): void;
}

const CLIENT_LONG_PASSWORD = 0x1;
const CLIENT_CONNECT_WITH_DB = 0x8;
const CLIENT_PROTOCOL_41 = 0x200;
const CLIENT_TRANSACTIONS = 0x2000;
const CLIENT_SECURE_CONNECTION = 0x8000;
const CLIENT_PLUGIN_AUTH = 0x80000;

/** A packet: 3-byte little-endian length, sequence id, payload. */
export function packet(sequenceId: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head.writeUIntLE(payload.length, 0, 3);
  head[3] = sequenceId;
  return Buffer.concat([head, payload]);
}

/** mysql_native_password: SHA1(password) XOR SHA1(scramble ‖ SHA1(SHA1(password))). */
export function nativePassword(password: string, scramble: Buffer): Buffer {
  if (password === "") return Buffer.alloc(0);
  const sha1 = (b: Buffer) => createHash("sha1").update(b).digest();
  const stage1 = sha1(Buffer.from(password, "utf8"));
  const mix = sha1(Buffer.concat([scramble, sha1(stage1)]));
  return Buffer.from(stage1.map((byte, i) => byte ^ mix[i]!));
}

/** HandshakeResponse41 with mysql_native_password, as a minimal client sends it. */
export function handshakeResponse(o: { user: string; password: string; database?: string; scramble: Buffer }): Buffer {
  const caps = CLIENT_LONG_PASSWORD | CLIENT_PROTOCOL_41 | CLIENT_TRANSACTIONS | CLIENT_SECURE_CONNECTION | CLIENT_PLUGIN_AUTH | (o.database ? CLIENT_CONNECT_WITH_DB : 0);
  const fixed = Buffer.alloc(32);
  fixed.writeUInt32LE(caps, 0);
  fixed.writeUInt32LE(16 * 1024 * 1024, 4);
  fixed[8] = 45; // utf8mb4_general_ci
  const auth = nativePassword(o.password, o.scramble);
  return Buffer.concat([
    fixed,
    Buffer.from(`${o.user}\0`, "utf8"),
    Buffer.from([auth.length]),
    auth,
    o.database ? Buffer.from(`${o.database}\0`, "utf8") : Buffer.alloc(0),
    Buffer.from("mysql_native_password\0", "latin1"),
  ]);
}

/** ERR packet fields, or undefined when `p` is not one. */
export function errPacket(p: Packet | null | undefined): { errno: number; sqlstate: string; message: string } | undefined {
  if (!p || p.payload[0] !== 0xff) return undefined;
  const errno = p.payload.readUInt16LE(1);
  const marked = p.payload[3] === 0x23; // '#'
  return { errno, sqlstate: marked ? p.payload.toString("latin1", 4, 9) : "", message: p.payload.toString("utf8", marked ? 9 : 3) };
}

/** Connects and reads the greeting (HandshakeV10); nothing is sent. */
export async function rawMysql(host: string, port: number): Promise<RawMysql> {
  const socket = connect(port, host);
  socket.on("error", () => undefined);
  let buffered = Buffer.alloc(0);
  const packets: Packet[] = [];
  let closed = false;
  let wake: (() => void) | undefined;
  socket.on("data", (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    while (buffered.length >= 4) {
      const length = buffered.readUIntLE(0, 3);
      if (buffered.length < 4 + length) break;
      packets.push({ sequenceId: buffered[3]!, payload: buffered.subarray(4, 4 + length) });
      buffered = buffered.subarray(4 + length);
    }
    wake?.();
  });
  socket.on("close", () => {
    closed = true;
    wake?.();
  });
  const next = async (timeoutMs = 15_000): Promise<Packet | null> => {
    const deadline = Date.now() + timeoutMs;
    while (packets.length === 0) {
      if (closed) return null;
      if (Date.now() > deadline) throw new Error("no packet from the server in time");
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, 50);
      });
    }
    return packets.shift()!;
  };
  const first = await next();
  if (!first) throw new Error("the server closed the connection before its greeting");
  const error = errPacket(first);
  if (error) throw new Error(`the server refused the connection: ${error.errno} ${error.message}`);
  const g = first.payload;
  const versionEnd = g.indexOf(0, 1);
  let at = versionEnd + 1;
  const connectionId = g.readUInt32LE(at);
  at += 4;
  const part1 = g.subarray(at, at + 8);
  at += 8 + 1 + 2 + 1 + 2 + 2; // filler, capabilities (low), charset, status, capabilities (high)
  const authLength = g[at]!;
  at += 1 + 10;
  const part2Length = Math.max(13, authLength - 8);
  const part2 = g.subarray(at, at + part2Length - 1); // without its trailing NUL
  at += part2Length;
  const pluginEnd = g.indexOf(0, at);
  return {
    socket,
    greeting: {
      serverVersion: g.toString("latin1", 1, versionEnd),
      connectionId,
      scramble: Buffer.concat([part1, part2]),
      plugin: g.toString("latin1", at, pluginEnd < 0 ? g.length : pluginEnd),
    },
    next,
    async untilClosed(timeoutMs = 15_000) {
      const all: Packet[] = [];
      for (;;) {
        const p = await next(timeoutMs);
        if (!p) return all;
        all.push(p);
      }
    },
    write: (bytes) => socket.write(bytes),
    destroy: () => socket.destroy(),
  };
}

/**
 * Logs in with mysql_native_password (following one AuthSwitchRequest if the server asks for it)
 * and resolves with the client once the server's OK arrived; throws with the server's ERR.
 */
export async function rawLogin(o: { host: string; port: number; user: string; password: string; database?: string }): Promise<RawMysql> {
  const client = await rawMysql(o.host, o.port);
  client.write(packet(1, handshakeResponse({ ...o, scramble: client.greeting.scramble })));
  let reply = await client.next();
  if (reply?.payload[0] === 0xfe) {
    // AuthSwitchRequest: plugin name, NUL, new scramble (NUL-terminated).
    const pluginEnd = reply.payload.indexOf(0, 1);
    const plugin = reply.payload.toString("latin1", 1, pluginEnd);
    if (plugin !== "mysql_native_password") throw new Error(`the server asks for ${plugin}; this client only does mysql_native_password`);
    const scramble = reply.payload.subarray(pluginEnd + 1, pluginEnd + 21);
    client.write(packet(reply.sequenceId + 1, nativePassword(o.password, scramble)));
    reply = await client.next();
  }
  const error = errPacket(reply);
  if (error || reply?.payload[0] !== 0x00) {
    client.destroy();
    throw Object.assign(new Error(`login refused: ${error ? `${error.errno} (${error.sqlstate}) ${error.message}` : "no OK"}`), error ?? {});
  }
  return client;
}

/** COM_QUERY `sql` as the first packet of a command (sequence id 0). */
export function comQuery(sql: string): Buffer {
  return packet(0, Buffer.concat([Buffer.from([0x03]), Buffer.from(sql, "utf8")]));
}

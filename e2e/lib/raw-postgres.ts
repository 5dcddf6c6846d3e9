import { connect as netConnect, type Socket } from "node:net";
import { connect as tlsConnect, type TLSSocket } from "node:tls";

// A deliberately minimal Postgres client on a raw socket, for what real drivers
// will not do on purpose: stop reading in the middle of a result. TLS and a
// cleartext password (the access key), then simple queries.

export interface RawClient {
  socket: TLSSocket;
  /** Sends a simple Query and returns at once (nothing is read). */
  sendQuery(sql: string): void;
  /** Stops reading: the kernel buffers fill and the peer's writes stall. */
  pause(): void;
  /** Reads and counts everything up to the next ReadyForQuery. */
  drainUntilReady(): Promise<{ dataRows: number; bytes: number; tag: string | null }>;
  close(): void;
}

function message(type: string, body: Buffer): Buffer {
  const header = Buffer.alloc(5);
  header.write(type, 0, "latin1");
  header.writeInt32BE(body.length + 4, 1);
  return Buffer.concat([header, body]);
}

const cstring = (s: string) => Buffer.from(`${s}\0`, "utf8");

export async function rawConnect(options: { host: string; port: number; user: string; database: string; password: string; application?: string }): Promise<RawClient> {
  const plain: Socket = netConnect(options.port, options.host);
  await new Promise<void>((resolve, reject) => plain.once("connect", resolve).once("error", reject));
  const sslRequest = Buffer.alloc(8);
  sslRequest.writeInt32BE(8, 0);
  sslRequest.writeInt32BE(80877103, 4);
  plain.write(sslRequest);
  const answer = await new Promise<Buffer>((resolve) => plain.once("data", resolve));
  if (answer.toString("latin1") !== "S") throw new Error(`the server refused TLS: ${answer.toString("latin1")}`);
  const socket = tlsConnect({ socket: plain, rejectUnauthorized: false });
  await new Promise<void>((resolve, reject) => socket.once("secureConnect", resolve).once("error", reject));

  // Messages are parsed from a list of chunks; only headers are looked at.
  let chunks: Buffer[] = [];
  let buffered = 0;
  let waiting: (() => void) | undefined;
  socket.on("data", (chunk: Buffer) => {
    chunks.push(chunk);
    buffered += chunk.length;
    waiting?.();
  });
  const take = async (n: number): Promise<Buffer> => {
    while (buffered < n) {
      if (socket.destroyed) throw new Error("the connection closed");
      await new Promise<void>((resolve) => {
        waiting = resolve;
        socket.once("close", resolve);
      });
      waiting = undefined;
    }
    const all = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    chunks = all.length > n ? [all.subarray(n)] : [];
    buffered -= n;
    return all.subarray(0, n);
  };
  const next = async (): Promise<{ type: string; body: Buffer }> => {
    const header = await take(5);
    const type = header.toString("latin1", 0, 1);
    const body = await take(header.readInt32BE(1) - 4);
    return { type, body };
  };
  const error = (body: Buffer) => {
    const fields: Record<string, string> = {};
    for (let i = 0; i < body.length && body[i] !== 0; ) {
      const end = body.indexOf(0, i + 1);
      fields[String.fromCharCode(body[i]!)] = body.toString("utf8", i + 1, end);
      i = end + 1;
    }
    return new Error(`${fields.C}: ${fields.M}`);
  };

  const params = ["user", options.user, "database", options.database, ...(options.application ? ["application_name", options.application] : [])];
  const startup = Buffer.concat([Buffer.from([0, 3, 0, 0]), ...params.map(cstring), Buffer.from([0])]);
  const length = Buffer.alloc(4);
  length.writeInt32BE(startup.length + 4);
  socket.write(Buffer.concat([length, startup]));
  for (;;) {
    const m = await next();
    if (m.type === "E") throw error(m.body);
    if (m.type === "R" && m.body.readInt32BE(0) === 3) socket.write(message("p", cstring(options.password)));
    if (m.type === "Z") break;
  }

  return {
    socket,
    sendQuery: (sql) => void socket.write(message("Q", cstring(sql))),
    pause: () => void socket.pause(),
    async drainUntilReady() {
      socket.resume();
      let dataRows = 0;
      let bytes = 0;
      let tag: string | null = null;
      for (;;) {
        const m = await next();
        bytes += m.body.length + 5;
        if (m.type === "D") dataRows++;
        else if (m.type === "C") tag = m.body.toString("utf8", 0, m.body.length - 1);
        else if (m.type === "E") throw error(m.body);
        else if (m.type === "Z") return { dataRows, bytes, tag };
      }
    },
    close: () => void socket.destroy(),
  };
}

/**
 * Drives a pure `ServerLogin` over a real socket (TCP, upgraded to TLS on `startTls`), for the
 * real-MariaDB tests. The gateway and connector have their own drivers; this one is the
 * smallest loop that runs the state machine against a live server.
 */
import { connect as netConnect, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { PacketReader, encodePacket } from "../../src/mysql/framing.js";
import { ServerLogin, type ServerLoginEvent, type ServerLoginOptions } from "../../src/mysql/server-login.js";

export interface LoggedIn {
  readonly socket: Socket;
  readonly result: Extract<ServerLoginEvent, { type: "ready" | "failed" }>;
  readonly login: ServerLogin;
}

export async function mysqlLogin(port: number, options: ServerLoginOptions, host = "127.0.0.1"): Promise<LoggedIn> {
  const login = new ServerLogin(options);
  let socket: Socket = netConnect({ host, port });
  return await new Promise<LoggedIn>((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`login timed out in state ${login.state}`));
    }, 10_000);
    const finish = (error: unknown, value?: LoggedIn) => {
      clearTimeout(timer);
      socket.removeAllListeners("data");
      if (error !== undefined) {
        socket.destroy();
        reject(error instanceof Error ? error : new Error(String(error)));
      } else resolve(value!);
    };
    const onData = (chunk: Buffer) => {
      try {
        login.push(chunk);
        for (let event = login.next(); event !== undefined; event = login.next()) {
          switch (event.type) {
            case "write":
              socket.write(event.bytes);
              break;
            case "startTls": {
              socket.removeListener("data", onData);
              const secure = tlsConnect({ socket, rejectUnauthorized: false }, () => {
                secure.write(login.tlsEstablished());
              });
              secure.on("data", onData);
              secure.on("error", (error) => finish(error));
              socket = secure;
              return;
            }
            case "ready":
            case "failed":
              finish(undefined, { socket, result: event, login });
              return;
          }
        }
      } catch (error) {
        finish(error);
      }
    };
    socket.on("data", onData);
    socket.on("error", (error) => finish(error));
    socket.on("close", () => finish(new Error(`server closed the connection in state ${login.state}`)));
  });
}

/** COM_QUERY over a logged-in socket, returning the first response packet's payload (enough for "SELECT 1"-style checks). */
export async function firstResponse(socket: Socket, sql: string): Promise<Uint8Array[]> {
  const payload = new Uint8Array([0x03, ...new TextEncoder().encode(sql)]);
  const reader = new PacketReader();
  socket.write(encodePacket(0, payload));
  return await new Promise<Uint8Array[]>((resolve, reject) => {
    const packets: Uint8Array[] = [];
    const onData = (chunk: Buffer) => {
      reader.push(chunk);
      for (let p = reader.read(); p; p = reader.read()) {
        packets.push(p.payload);
        // Done at an OK/ERR first packet, or at the final EOF/OK (0xFE) of a result set.
        if (packets.length === 1 && (p.payload[0] === 0x00 || p.payload[0] === 0xff)) return done();
        if (packets.length > 1 && p.payload[0] === 0xfe && p.payload.byteLength < 0xffffff) {
          const eofs = packets.filter((x) => x[0] === 0xfe && x.byteLength < 9).length;
          if (eofs >= 2 || p.payload.byteLength >= 7) return done();
        }
      }
    };
    const done = () => {
      socket.removeListener("data", onData);
      resolve(packets);
    };
    socket.on("data", onData);
    socket.once("error", reject);
  });
}

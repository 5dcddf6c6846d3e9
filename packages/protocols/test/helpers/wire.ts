/** Socket helpers for integration tests: drive the pure state machines over real connections. */
import { connect, type Socket } from "node:net";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import type { ServerConnectionOptions, ServerReady } from "../../src/postgres/server-connection.js";
import { ServerConnection } from "../../src/postgres/server-connection.js";

export async function openSocket(port: number, host = "127.0.0.1"): Promise<Socket> {
  return await new Promise((resolve, reject) => {
    const socket = connect({ port, host }, () => {
      socket.off("error", reject);
      resolve(socket);
    });
    socket.once("error", reject);
  });
}

export interface Connected {
  readonly socket: Socket | TLSSocket;
  readonly ready: ServerReady;
  /** Server bytes that followed ReadyForQuery. */
  readonly leftover: Uint8Array[];
}

/** Connect to a real server and run `ServerConnection` over the socket until ReadyForQuery. */
export async function connectServer(port: number, options: ServerConnectionOptions): Promise<Connected> {
  const conn = new ServerConnection(options);
  let socket: Socket | TLSSocket = await openSocket(port);
  return await new Promise<Connected>((resolve, reject) => {
    const fail = (error: unknown): void => {
      socket.destroy();
      reject(error);
    };
    const onData = (chunk: Buffer): void => {
      try {
        conn.push(chunk);
        for (let event = conn.next(); event !== undefined; event = conn.next()) {
          switch (event.type) {
            case "write":
              socket.write(event.bytes);
              break;
            case "upgradeTls": {
              socket.off("data", onData);
              const plain = socket;
              const secure = tlsConnect({ socket: plain, rejectUnauthorized: false, servername: "localhost" }, () => {
                secure.write(conn.tlsEstablished());
              });
              secure.on("data", onData);
              secure.on("error", fail);
              socket = secure;
              return;
            }
            case "notice":
              break;
            case "ready":
              socket.off("data", onData);
              resolve({ socket, ready: event, leftover: conn.remaining() });
              return;
          }
        }
      } catch (error) {
        fail(error);
      }
    };
    socket.on("data", onData);
    socket.on("error", fail);
    socket.write(conn.start());
  });
}

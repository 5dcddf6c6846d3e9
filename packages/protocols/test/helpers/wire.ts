/** Socket helpers for integration tests: drive the pure state machines over real connections. */
import { connect, type Socket } from "node:net";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import type { ServerConnectionOptions, ServerReady } from "../../src/postgres/server-connection.js";
import { ServerConnection } from "../../src/postgres/server-connection.js";
import { ChunkSource, nextHandshakeEvent } from "../../src/drive/index.js";

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

/** Connect to a real server and run `ServerConnection` over the socket until ReadyForQuery (the drive helpers, as the connector does). */
export async function connectServer(port: number, options: ServerConnectionOptions, deadline: AbortSignal = AbortSignal.timeout(10_000)): Promise<Connected> {
  const conn = new ServerConnection(options);
  let socket: Socket | TLSSocket = await openSocket(port);
  let source = new ChunkSource(socket, TEST_READ_FAILURES);
  try {
    socket.write(conn.start());
    for (;;) {
      const event = await nextHandshakeEvent(conn, source, deadline);
      switch (event.type) {
        case "write":
          socket.write(event.bytes);
          break;
        case "upgradeTls": {
          source.detach();
          const plain: Socket | TLSSocket = socket;
          const secure: TLSSocket = tlsConnect({ socket: plain, rejectUnauthorized: false, servername: "localhost" });
          await new Promise<void>((resolve, reject) => {
            secure.once("secureConnect", resolve);
            secure.once("error", reject);
          });
          socket = secure;
          source = new ChunkSource(socket, TEST_READ_FAILURES);
          secure.write(conn.tlsEstablished());
          break;
        }
        case "notice":
          break;
        case "ready": {
          const leftover = [...conn.remaining(), ...source.detach()];
          // Callers attach their own 'data' listener; detach() paused the socket.
          socket.resume();
          // As before the helper used the drive: a late reset ends the socket, not the test run.
          socket.on("error", () => socket.destroy());
          return { socket, ready: event, leftover };
        }
      }
    }
  } catch (error) {
    source.detach();
    socket.destroy();
    throw error;
  }
}

const TEST_READ_FAILURES = {
  gone: (cause?: Error) => new Error(cause ? `the server's connection failed: ${cause.message}` : "the server closed the connection", cause ? { cause } : {}),
  timedOut: () => new Error("the server did not finish the startup in time"),
};

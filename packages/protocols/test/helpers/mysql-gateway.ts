/**
 * The smallest listener loop around a pure `ClientHandshake`, for tests with real MySQL
 * clients: it greets, upgrades to TLS on `sslRequest`, lets the test decide authentication,
 * and after `complete()` answers every command with one ERR (there is no resource behind it),
 * so a client's output shows whether the login succeeded. The gateway's listener is the real one.
 */
import { once } from "node:events";
import { createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { TLSSocket, type SecureContextOptions } from "node:tls";
import { ClientHandshake, type ClientHandshakeEvent, type GreetingOptions } from "../../src/mysql/client-handshake.js";
import { PacketReader, encodePacket } from "../../src/mysql/framing.js";
import { encodeErrPacket } from "../../src/mysql/packets.js";

export interface HandshakeServer extends AsyncDisposable {
  readonly port: number;
  /** Events each connection's handshake produced, in order. */
  readonly events: ClientHandshakeEvent[][];
  /** Errors thrown by a handshake (protocol violations); socket errors are not collected. */
  readonly errors: unknown[];
}

export type Decide = (event: ClientHandshakeEvent, handshake: ClientHandshake) => Uint8Array | undefined;

export const AFTER_LOGIN_MESSAGE = "logged in; no resource behind this test server";

export async function startHandshakeServer(greeting: Omit<GreetingOptions, "connectionId">, decide: Decide, tls?: SecureContextOptions): Promise<HandshakeServer> {
  const events: ClientHandshakeEvent[][] = [];
  const errors: unknown[] = [];
  let connections = 0;
  const sockets = new Set<Socket>();
  const server: Server = createServer((raw) => {
    sockets.add(raw);
    raw.on("close", () => sockets.delete(raw));
    const log: ClientHandshakeEvent[] = [];
    events.push(log);
    const hs = new ClientHandshake({ ...greeting, connectionId: ++connections });
    let socket: Socket = raw;
    const onData = (chunk: Buffer) => {
      try {
        hs.push(chunk);
        for (let e = hs.next(); e !== undefined; e = hs.next()) {
          log.push(e);
          if (e.type === "write") socket.write(e.bytes);
          else if (e.type === "sslRequest") {
            const early = hs.acceptTls();
            socket.removeListener("data", onData);
            // A ClientHello that arrived with the SSLRequest goes back to the raw stream for TLS to read.
            if (early.length > 0) socket.unshift(Buffer.concat(early));
            const secure = new TLSSocket(socket, { isServer: true, ...tls });
            secure.on("data", onData);
            secure.on("error", () => undefined); // a client closing without close_notify; not a handshake error
            socket = secure;
            return;
          } else {
            const reply = decide(e, hs);
            if (reply !== undefined) socket.write(reply);
            if (hs.state === "done") return afterLogin(hs.remaining());
            if (hs.state === "failed") return void socket.end();
          }
        }
      } catch (error) {
        errors.push(error);
        socket.end(hs.fail(error as never));
      }
    };
    // Command phase: answer each command with an ERR (sequence 1) so the client reports it.
    const afterLogin = (rest: Uint8Array[]) => {
      socket.removeListener("data", onData);
      const reader = new PacketReader();
      const onCommand = (chunk: Uint8Array) => {
        reader.push(chunk);
        for (let p = reader.read(); p; p = reader.read()) {
          if (p.payload[0] === 0x01) return void socket.end(); // COM_QUIT
          socket.write(encodePacket(p.sequenceId + 1, encodeErrPacket({ errno: 1105, sqlState: "HY000", message: AFTER_LOGIN_MESSAGE })));
        }
      };
      for (const bytes of rest) onCommand(bytes);
      socket.on("data", onCommand);
    };
    raw.on("data", onData);
    raw.on("error", () => undefined);
    raw.write(hs.start());
  });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  return {
    port: (server.address() as AddressInfo).port,
    events,
    errors,
    async [Symbol.asyncDispose]() {
      for (const socket of sockets) socket.destroy();
      server.close();
    },
  };
}

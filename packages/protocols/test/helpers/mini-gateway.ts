/**
 * A minimal gateway built only from this package's pieces, for integration tests and as a
 * worked example of the API: ClientStartup facing the client, ServerConnection facing the
 * real server, a byte relay with the observer on both directions, CancelRequest mapping.
 * It also records the relayed chunks (a fixture capture).
 */
import { createServer, type Server, type Socket } from "node:net";
import { randomBytes } from "node:crypto";
import type { ClientStartupEvent } from "../../src/postgres/client-startup.js";
import { ClientStartup } from "../../src/postgres/client-startup.js";
import { errorResponseFor } from "../../src/postgres/backend-messages.js";
import { PostgresProtocolError } from "../../src/postgres/errors.js";
import { encodeCancelRequest } from "../../src/postgres/frontend-messages.js";
import type { ObserverSink } from "../../src/postgres/observer.js";
import { PostgresObserver } from "../../src/postgres/observer.js";
import type { ScramVerifier } from "../../src/postgres/auth/scram.js";
import type { TlsMode } from "../../src/postgres/server-connection.js";
import { RecordingSink } from "./observer-harness.js";
import { connectServer, openSocket } from "./wire.js";

export interface Upstream {
  readonly port: number;
  readonly user: string;
  readonly password?: string;
  readonly database: string;
  readonly tls?: TlsMode;
}

export interface MiniGatewayOptions {
  /** identity name → SCRAM verifier; unknown names fail SCRAM. */
  readonly identities: ReadonlyMap<string, ScramVerifier>;
  /** connection name (the client's database) → the real server. */
  readonly connections: ReadonlyMap<string, Upstream>;
}

export interface Capture {
  /** Relayed chunks after startup, in the order the gateway saw them. */
  readonly chunks: { readonly from: "frontend" | "backend"; readonly bytes: Uint8Array }[];
  readonly sink: RecordingSink;
  closed: Promise<void>;
}

export interface MiniGateway {
  readonly port: number;
  readonly sessions: Capture[];
  close(): Promise<void>;
}

const now = (): number => Math.round(performance.timeOrigin * 1000 + performance.now() * 1000);

export async function startMiniGateway(options: MiniGatewayOptions): Promise<MiniGateway> {
  const sessions: Capture[] = [];
  /** The key we hand each client → the real server's key and port. */
  const cancelKeys = new Map<string, { processId: number; secretKey: Uint8Array; port: number }>();
  const sockets = new Set<Socket>();

  const server: Server = createServer((client) => {
    client.setNoDelay(true);
    sockets.add(client);
    client.on("close", () => sockets.delete(client));
    client.on("error", () => client.destroy());
    const startup = new ClientStartup();
    let user = "";
    let connection: Upstream | undefined;

    const startRelay = async (): Promise<void> => {
      const upstream = connection!;
      const { socket: server, ready, leftover } = await connectServer(upstream.port, {
        user: upstream.user,
        database: upstream.database,
        tls: upstream.tls ?? "disable",
        ...(upstream.password === undefined ? {} : { password: upstream.password }),
      });
      const ourKey = { processId: 0x7fff0000 + cancelKeys.size, secretKey: randomBytes(4) };
      if (ready.backendKey !== undefined) {
        cancelKeys.set(`${ourKey.processId}:${Buffer.from(ourKey.secretKey).toString("hex")}`, { ...ready.backendKey, port: upstream.port });
      }
      const sink = new RecordingSink();
      let resolveClosed!: () => void;
      const capture: Capture = { chunks: [], sink, closed: new Promise((r) => (resolveClosed = r)) };
      sessions.push(capture);
      const observer = new PostgresObserver(sink as ObserverSink, { now });
      const fromClient = (bytes: Uint8Array): void => {
        capture.chunks.push({ from: "frontend", bytes: Uint8Array.from(bytes) });
        observer.frontend(bytes);
        server.write(bytes);
      };
      const fromServer = (bytes: Uint8Array): void => {
        capture.chunks.push({ from: "backend", bytes: Uint8Array.from(bytes) });
        observer.backend(bytes);
        client.write(bytes);
      };
      server.setNoDelay(true);
      client.removeAllListeners("data");
      client.write(startup.complete({ parameters: ready.parameters, backendKey: ourKey }));
      for (const bytes of startup.remaining()) fromClient(bytes);
      for (const bytes of leftover) fromServer(bytes);
      client.on("data", fromClient);
      server.on("data", fromServer);
      let closing = 0;
      const close = (): void => {
        if (++closing > 1) return;
        observer.end();
        client.end();
        server.end();
        resolveClosed();
      };
      client.on("close", close);
      server.on("close", close);
      server.on("error", () => server.destroy());
    };

    const decide = async (event: ClientStartupEvent): Promise<void> => {
      switch (event.type) {
        case "write":
          client.write(event.bytes);
          return;
        case "sslRequest":
          client.write(startup.answerSsl(false));
          return;
        case "directTls":
        case "terminate":
          client.destroy();
          return;
        case "cancelRequest": {
          const real = cancelKeys.get(`${event.processId}:${Buffer.from(event.secretKey).toString("hex")}`);
          client.destroy();
          if (real !== undefined) {
            const s = await openSocket(real.port);
            s.end(encodeCancelRequest(real));
          }
          return;
        }
        case "startup":
          user = event.user;
          connection = options.connections.get(event.database);
          client.write(startup.requestScram({ verifier: options.identities.get(user), mockSecret: new Uint8Array(32) }));
          return;
        case "password":
          client.end(startup.fail({ code: "28P01", message: "password authentication is not configured" }));
          return;
        case "authenticationFailed":
          client.end(startup.fail({ code: "28P01", message: `password authentication failed for user "${user}"` }));
          return;
        case "authenticated":
          if (connection === undefined) {
            client.end(startup.fail({ code: "3D000", message: "no such connection" }));
            return;
          }
          await startRelay();
          return;
      }
    };

    let queue = Promise.resolve();
    client.on("data", (chunk: Buffer) => {
      queue = queue.then(async () => {
        try {
          startup.push(chunk);
          for (let event = startup.next(); event !== undefined; event = startup.next()) await decide(event);
        } catch (error) {
          if (error instanceof PostgresProtocolError) client.end(errorResponseFor(error));
          else client.destroy(error as Error);
        }
      });
    });
  });

  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  return {
    port: typeof address === "object" && address !== null ? address.port : 0,
    sessions,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

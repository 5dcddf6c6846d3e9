import { join } from "node:path";
import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import { createEventWriter, openStore, type EventWriter, type Store } from "@gatehouse/store";
import type { GatewayConfig } from "./config/schema.js";
import { formatHostPort, type HostPort } from "./config/address.js";
import { systemClock, type Clock } from "./clock.js";
import { adminTokenHash, ensureDataDir, removeState, writeState } from "./data-dir.js";
import { GatewayError } from "./errors.js";
import type { Logger } from "./logger.js";
import { createApiServer } from "./api/http-api.js";
import { TcpListener } from "./listeners/tcp-listener.js";
import { PostgresListener } from "./listeners/postgres/postgres-listener.js";
import { loadTlsMaterial } from "./tls-material.js";
import { Recorder } from "./sessions/recorder.js";
import { AccessKeys } from "./identity/access-keys.js";
import { PasswordAuthenticator } from "./identity/authenticator.js";
import { SessionBroker } from "./sessions/session-broker.js";
import { ConnectorRegistry } from "./tunnel/connector-registry.js";
import { TunnelServer } from "./tunnel/tunnel-server.js";

export interface GatewayOptions {
  logger: Logger;
  clock?: Clock;
  /** Called once with a freshly generated admin token, so the CLI can print it. */
  onAdminTokenGenerated?: (token: string, file: string) => void;
}

export interface Gateway {
  readonly apiUrl: string;
  readonly dataDir: string;
  /** Bound addresses of tcp connections' listeners, by connection name. */
  readonly tcpListeners: ReadonlyMap<string, HostPort>;
  /** Bound address of the Postgres listener, when listen.postgres is set. */
  readonly postgres: HostPort | undefined;
  readonly registry: ConnectorRegistry;
  readonly store: Store;
  close(): Promise<void>;
}

/** Starts every listener of a validated config; rejects (after undoing what started) if any cannot start. */
export async function startGateway(config: GatewayConfig, options: GatewayOptions): Promise<Gateway> {
  const { logger } = options;
  const clock = options.clock ?? systemClock;
  const dataDir = ensureDataDir(config.dataDir);
  const cleanup: Array<() => Promise<void> | void> = [];
  const undo = async () => {
    for (const step of cleanup.reverse()) await Promise.resolve(step()).catch((err: unknown) => logger.warn({ err }, "cleanup step failed"));
  };

  try {
    const store = await openStore(config.store.url ? { url: config.store.url, maxConnections: config.store.maxConnections } : { dataDir: join(dataDir, "store") });
    cleanup.push(() => store.close());
    const writer: EventWriter = createEventWriter(store);
    cleanup.push(() => writer.close());

    const admin = adminTokenHash(dataDir, config.api.adminTokenSha256);
    if (admin.generated) options.onAdminTokenGenerated?.(admin.generated, join(dataDir, "admin-token"));

    const current = () => config;
    const registry = new ConnectorRegistry();
    const tunnel = new TunnelServer({ config: current, registry, logger, clock });
    cleanup.push(() => tunnel.close());
    const recorder = new Recorder(store, writer, clock, logger);
    const broker = new SessionBroker(recorder, registry, logger);

    const accessKeys = new AccessKeys(store, clock);
    const api = createApiServer({ config: current, store, registry, tunnel, adminTokenSha256: admin.sha256, accessKeys, logger });
    const apiAddress = await listen(api, config.listen.api, "listen.api");
    cleanup.push(() => closeServer(api));
    const scheme = config.api.tls ? "https" : "http";
    const apiUrl = `${scheme}://${formatHostPort({ host: connectHost(apiAddress.host), port: apiAddress.port })}`;

    const tcpListeners = new Map<string, HostPort>();
    for (const [i, connection] of config.connections.entries()) {
      if (connection.protocol !== "tcp") continue;
      const listener = new TcpListener(connection, broker, logger.child({ connection: connection.name }));
      tcpListeners.set(connection.name, await listenOrFail(() => listener.listen(), connection.listen!, `connections[${i}].listen`));
      cleanup.push(() => listener.close());
    }

    let postgres: HostPort | undefined;
    if (config.listen.postgres) {
      const tls = await loadTlsMaterial(dataDir, config.postgres.tls, "postgres.tls");
      const passwords = new PasswordAuthenticator(accessKeys);
      const listener = new PostgresListener({ config: current, broker, recorder, accessKeys, passwords, tls, clock, logger });
      postgres = await listenOrFail(() => listener.listen(config.listen.postgres!), config.listen.postgres, "listen.postgres");
      cleanup.push(() => listener.close());
      logger.info({ tls: tls.source, requireTls: config.postgres.requireTls }, "postgres listener ready");
    }

    writeState(dataDir, { pid: process.pid, apiUrl, startedAt: new Date().toISOString() });
    cleanup.push(() => removeState(dataDir, process.pid));
    logger.info({ apiUrl, dataDir, store: config.store.url ? "postgres" : "embedded", postgres: postgres ?? null, tcp: Object.fromEntries(tcpListeners) }, "gateway started");

    let closing: Promise<void> | undefined;
    return {
      apiUrl,
      dataDir,
      tcpListeners,
      postgres,
      registry,
      store,
      close: () => (closing ??= undo()),
    };
  } catch (error) {
    await undo();
    throw error;
  }
}

function listen(server: Server, at: HostPort, key: string): Promise<HostPort> {
  return new Promise((resolvePromise, reject) => {
    server.once("error", (cause) => reject(new GatewayError("LISTEN_FAILED", `${key}: cannot listen on ${formatHostPort(at)}: ${cause.message}`, { cause })));
    server.listen(at.port, at.host, () => {
      const address = server.address() as AddressInfo;
      resolvePromise({ host: address.address, port: address.port });
    });
  });
}

async function listenOrFail(start: () => Promise<HostPort>, at: HostPort, key: string): Promise<HostPort> {
  try {
    return await start();
  } catch (cause) {
    throw new GatewayError("LISTEN_FAILED", `${key}: cannot listen on ${formatHostPort(at)}: ${(cause as Error).message}`, { cause });
  }
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolvePromise) => {
    server.close(() => resolvePromise());
    server.closeAllConnections();
  });
}

/** A wildcard bind is reached through loopback from this machine. */
function connectHost(host: string): string {
  if (host === "0.0.0.0") return "127.0.0.1";
  if (host === "::") return "::1";
  return host;
}


import { join } from "node:path";
import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import { openStore, type Store } from "@gatehouse/store";
import type { Registry } from "prom-client";
import type { GatewayConfig } from "./config/schema.js";
import { formatHostPort, type HostPort } from "./config/address.js";
import { storeOpenOptions } from "./config/store-connection.js";
import { systemClock, type Clock } from "./clock.js";
import { adminTokenHash, ensureDataDir, removeState, writeState } from "./data-dir.js";
import { GatewayError } from "./errors.js";
import type { Logger } from "./logger.js";
import { connectorLinkViews, createApiServer, sshHostKeyView, type ConnectorLinkView } from "./api/http-api.js";
import { TcpListener } from "./listeners/tcp/tcp-listener.js";
import { PostgresListener } from "./listeners/postgres/postgres-listener.js";
import { MysqlListener } from "./listeners/mysql/mysql-listener.js";
import { SshListener } from "./listeners/ssh/ssh-listener.js";
import { KUBE_PATH_PREFIX, KubernetesListener } from "./listeners/kubernetes/kubernetes-listener.js";
import { loadSshHostKey, type SshHostKey } from "./listeners/ssh/host-key.js";
import type { SshKeyLookup } from "./listeners/ssh/ssh-auth.js";
import { AdmissionLimits } from "./listeners/admission-limits.js";
import { AuthThrottle } from "./identity/auth-throttle.js";
import { loadTlsMaterial, type TlsMaterial } from "./tls-material.js";
import { startRecording } from "./evidence/recording.js";
import { EMBEDDED_STORE_GATHER_MS } from "./journal/shipper.js";
import { AccessKeys } from "./identity/access-keys.js";
import { SshKeys } from "./identity/ssh-keys.js";
import { IdentityDirectory } from "./identity/identity-settings.js";
import { followStoreChanges } from "./identity/store-changes.js";
import { readiness, workersReadiness, type Readiness, type WorkerReadiness } from "./api/readiness.js";
import { CredentialChecker } from "./identity/credential-checker.js";
import { currentOidcVerifier, readOidcCa } from "./identity/oidc-verifier.js";
import { Policy } from "./policy.js";
import { SessionBroker } from "./sessions/session-broker.js";
import { ConnectorRegistry } from "./tunnel/connector-registry.js";
import { TunnelServer, type WorkerSlot } from "./tunnel/tunnel-server.js";
import { GatewayMetrics } from "./metrics/gateway-metrics.js";
import { registerStateGauges } from "./metrics/state-gauges.js";
import { createMetricsServer } from "./metrics/metrics-server.js";
import { ServerWatch, type ListenerState } from "./listeners/server-watch.js";
import { PeerCancels } from "./listeners/peer-cancels.js";
import { Console } from "./console/console-routes.js";
import { consoleVerifyKeys, SessionRoutes } from "./console/session-routes.js";

export interface GatewayOptions {
  logger: Logger;
  clock?: Clock;
  /** Where `env:` references in the config (store.password) are resolved. Default: process.env. */
  env?: NodeJS.ProcessEnv;
  /** Called once with a freshly generated admin token, so the CLI can print it. */
  onAdminTokenGenerated?: (token: string, file: string) => void;
  /** The identities' registered SSH public keys (identity/ssh-keys.ts). Left out: the SSH listener takes no public keys. */
  sshKeys?: SshKeyLookup;
  /** Node process metrics (CPU, memory, event loop) in /metrics. Default true; tests that start many gateways turn them off. */
  processMetrics?: boolean;
  /**
   * This process is one worker of `gatehouse gateway --workers N` (cli/gateway-workers.ts): its journal
   * and signing key live in DATA_DIR/workers/INDEX (each worker is a gateway of its own in the record),
   * the TLS material, SSH host key and admin token are the data directory's, shared, and the process
   * that supervises the workers writes DATA_DIR/gateway.json.
   */
  worker?: WorkerSlot & {
    /** The /metrics text of all the workers together (the supervisor aggregates them). */
    metrics?: () => Promise<{ contentType: string; text: string }>;
    /**
     * Given this worker's own view of each topic, the function that gathers every worker's (cli/gateway-workers.ts):
     * GET /api/v1/connectors lists every worker's links, /readyz is ready only when every worker is.
     */
    gather?: (local: { links: () => ConnectorLinkView[]; readiness: () => Readiness }) => (topic: "links" | "readiness") => Promise<Array<{ worker: number; value: unknown }>>;
  };
}

export interface Gateway {
  readonly apiUrl: string;
  /** Where Prometheus scrapes: the api listener's /metrics, or listen.metrics's when configured. */
  readonly metricsUrl: string;
  readonly dataDir: string;
  /** Bound addresses of tcp connections' listeners, by connection name. */
  readonly tcpListeners: ReadonlyMap<string, HostPort>;
  /** Bound address of the Postgres listener, when listen.postgres is set. */
  readonly postgres: HostPort | undefined;
  /** Bound address of the MySQL listener, when listen.mysql is set. */
  readonly mysql: HostPort | undefined;
  /** Bound address of the SSH listener, when listen.ssh is set, and its host key (public line, fingerprint). */
  readonly ssh: HostPort | undefined;
  readonly sshHostKey: SshHostKey | undefined;
  /** Bound address of the Kubernetes listener, when listen.kubernetes is set. */
  readonly kubernetes: HostPort | undefined;
  readonly registry: ConnectorRegistry;
  readonly store: Store;
  /** This process's Prometheus registry (a worker hands it to the supervisor's aggregation). */
  readonly metricsRegistry: Registry;
  /** The config new sessions see. */
  config(): GatewayConfig;
  /**
   * Swaps in a validated config: new sessions see its connections, policy and
   * identity settings; open sessions go on. Settings bound at start
   * (listener addresses, TLS files, the store...) keep their old values until
   * a restart; `restartNeeded` names those that differ from what is running
   * (not from the previous reload). Throws GatewayError (and keeps the
   * old config) when the new one cannot be used (an unreadable identity.oidc.ca).
   */
  reload(next: GatewayConfig): ReloadResult;
  /**
   * Stops: takes no new sessions, lets open ones finish for `graceMs` (default: the config's
   * shutdown.graceMs), ends the rest (Postgres: FATAL 57P01) and seals them with end reason
   * `gateway_shutdown`, then closes the tunnel, API, journal and store, all within about 2 s
   * after the grace. Calling it again with `graceMs: 0` cuts a running grace short.
   */
  close(options?: { graceMs?: number }): Promise<void>;
}

export interface ReloadResult {
  /** Keys whose change takes effect only after a restart, e.g. "listen.postgres", "connections[name=echo]". */
  restartNeeded: string[];
}

/** Starts every listener of a validated config; rejects (after undoing what started) if any cannot start. */
export async function startGateway(initial: GatewayConfig, options: GatewayOptions): Promise<Gateway> {
  let config = initial;
  /** What the listeners, TLS and store were started with: a reload's restartNeeded compares with this. */
  const running = initial;
  const { logger } = options;
  const clock = options.clock ?? systemClock;
  const dataDir = ensureDataDir(config.dataDir);
  const cleanup: Array<() => Promise<void> | void> = [];
  const undo = async () => {
    for (const step of cleanup.reverse()) await Promise.resolve(step()).catch((err: unknown) => logger.warn({ err }, "cleanup step failed"));
  };

  // One registry per gateway (metrics/gateway-metrics.ts); the listeners' states feed /readyz and /metrics.
  const metrics = new GatewayMetrics({ processMetrics: options.processMetrics ?? true });
  const listenerStates = new Map<string, () => ListenerState>();
  try {
    const store = await openStore(storeOpenOptions({ ...config, dataDir }, options.env ?? process.env));
    cleanup.push(() => store.close());
    // Journal, signing key and shipper (docs/evidence.md); closed after the listeners, before the store.
    const recordingDir = options.worker ? ensureDataDir(join(dataDir, "workers", String(options.worker.index))) : dataDir;
    const recording = await startRecording({ dataDir: recordingDir, store, settings: config.recording, clock, logger, ...(config.store.url ? {} : { shipper: { gatherMs: EMBEDDED_STORE_GATHER_MS } }), metrics });
    // A stopping gateway gives the shipper what is left of its 2 s after the grace, 5 s at most.
    let exitDeadline: number | undefined;
    cleanup.push(() => recording.close(exitDeadline === undefined ? undefined : Math.max(0, exitDeadline - SHUTDOWN_MARGIN_MS - Date.now())));

    const admin = adminTokenHash(dataDir, config.api.adminTokenSha256);
    if (admin.generated) options.onAdminTokenGenerated?.(admin.generated, join(dataDir, "admin-token"));

    const current = () => config;
    readOidcCa(config.identity.oidc);
    const oidc = currentOidcVerifier(() => config.identity.oidc, { clock, logger: logger.child({ component: "oidc" }) });
    const warmUpOidc = () => {
      const verifier = oidc();
      if (!verifier) return;
      void verifier.warmUp().then((result) => {
        if (!result.ok) logger.warn({ issuer: verifier.settings.issuer, reason: result.message }, "oidc issuer not reachable yet; tokens are refused until it is");
      });
    };
    warmUpOidc();
    const registry = new ConnectorRegistry();
    const tunnel = new TunnelServer({ config: current, registry, logger, clock, ...(options.worker ? { worker: { index: options.worker.index, count: options.worker.count } } : {}) });
    const { recorder } = recording;
    // Identities disabled in the store (shared by the gateways of a store), beside identity.disabled.
    const identities = new IdentityDirectory(store, clock, logger);
    await identities.load();
    const broker = new SessionBroker(recorder, registry, new Policy(current, clock, (name) => identities.isDisabled(name)), logger);

    const accessKeys = new AccessKeys(store, clock, {
      onOutage: (identity, error) =>
        logger.warn({ identity, err: error }, "the store cannot be reached; checking the key against the identity's keys as last read"),
    });
    cleanup.push(() => accessKeys.close());
    const sshKeys = new SshKeys(store, clock, {
      onOutage: (identity, error) =>
        logger.warn({ identity, err: error }, "the store cannot be reached; looking the SSH key up among the identity's keys as last read"),
    });
    cleanup.push(() => sshKeys.close());
    // Changes made through other gateways of a Postgres store reach these caches (LISTEN/NOTIFY, polled as a fallback).
    const changes = await followStoreChanges(store, { accessKeys, sshKeys, identities, sealKeyId: recording.signingKey.keyId }, { logger, pollMs: config.store.changePollMs });
    cleanup.push(() => changes.close());
    const evidence = {
      minRetentionDays: () => config.recording.minRetentionDays,
      shippedHead: async () => {
        const head = { gateway: recording.checkpoints.gateway, ...recording.checkpoints.head };
        return (await recording.shipper.drain(5_000)) ? head : undefined;
      },
      signRetention: async (cutoffUs: number, horizonUs: number) => {
        const { checkpoint } = await recorder.checkpointRetention(cutoffUs, horizonUs);
        if (!(await recording.shipper.drain(10_000))) throw new GatewayError("RECORDING_UNAVAILABLE", "the retention checkpoint is journaled but has not reached the store yet; nothing was dropped");
        logger.info({ seq: checkpoint.seq, cutoffUs, horizonUs }, "signed a retention checkpoint");
        return checkpoint;
      },
    };
    const storeFailing = () => recording.shipper.stats.storeDown || accessKeys.storeFailing || sshKeys.storeFailing;
    const listeners = () => Object.fromEntries([...listenerStates].map(([key, state]) => [key, state()]));
    const ready = () => {
      const downSince = recording.shipper.stats.storeDownSinceMs;
      return readiness({
        recordingMode: recorder.mode,
        journalProblem: recording.journal.problem(),
        storeFailing: storeFailing(),
        storeDownForSeconds: downSince === undefined ? undefined : (Date.now() - downSince) / 1000,
        listeners: listeners(),
      });
    };
    registerStateGauges(metrics.registry, { config: current, recorder, journal: recording.journal, shipper: recording.shipper, registry, storeFailing, listeners, ready: () => ready().ready });
    const exposition = options.worker?.metrics ?? (() => metrics.exposition());
    // Set once the SSH listener is up (below); the API's host-key route reads them then.
    let ssh: HostPort | undefined;
    let sshHostKey: SshHostKey | undefined;
    const sshHostKeyForApi = () => (ssh && sshHostKey ? sshHostKeyView(sshHostKey.publicLine, formatHostPort(ssh)) : undefined);
    let kubernetes: HostPort | undefined;
    let kubernetesTls: TlsMaterial | undefined;
    const kubernetesEndpoint = () =>
      kubernetes && kubernetesTls ? { listen: formatHostPort(kubernetes), certificatePem: kubernetesTls.cert, source: kubernetesTls.source, pathPrefix: KUBE_PATH_PREFIX } : undefined;
    // The web console (/ui) and the session routes it reads (verify, live tail); docs/console.md.
    const webConsole = new Console({ config: current, adminTokenSha256: admin.sha256, clock, logger: logger.child({ component: "console" }), env: options.env ?? process.env, dataDir });
    const verifyKeys = consoleVerifyKeys(config.console.publicKeys, recording.signingKey, store, logger);
    const sessionRoutes = new SessionRoutes({ store, verifyKeys, onShipped: (listener) => recording.shipper.onShipped(listener), logger });
    const worker = options.worker;
    const gather = worker?.gather?.({ links: () => connectorLinkViews(registry, worker.index), readiness: ready });
    const connectorLinks = gather && (async () => (await gather("links")).flatMap((r) => (Array.isArray(r.value) ? (r.value as ConnectorLinkView[]) : [])));
    const apiReadiness = gather ? async () => workersReadiness((await gather("readiness")) as Array<{ worker: number; value: WorkerReadiness }>) : ready;
    const api = createApiServer({
      config: current,
      store,
      registry,
      tunnel,
      adminTokenSha256: admin.sha256,
      accessKeys,
      sshKeys,
      sshHostKey: sshHostKeyForApi,
      kubernetesEndpoint,
      logger,
      readiness: apiReadiness,
      clock,
      evidence,
      fleet: { sealKeyId: recording.signingKey.keyId, identities },
      console: webConsole,
      sessionRoutes,
      ...(config.listen.metrics ? {} : { metrics: exposition }),
      ...(connectorLinks ? { connectorLinks } : {}),
    });
    const apiWatch = new ServerWatch(api);
    const apiAddress = await listen(api, config.listen.api, "listen.api");
    cleanup.push(() => (apiWatch.stopping(), closeServer(api)));
    listenerStates.set("listen.api", () => apiWatch.state);
    // Before the API server, which carries the tunnel: its close waits for every socket it
    // accepted, the connectors' upgraded ones included, so the links must be closed first.
    cleanup.push(() => tunnel.close());
    const scheme = config.api.tls ? "https" : "http";
    const apiUrl = `${scheme}://${formatHostPort({ host: connectHost(apiAddress.host), port: apiAddress.port })}`;
    let metricsUrl = `${apiUrl}/metrics`;
    if (config.listen.metrics) {
      const server = createMetricsServer(exposition, (err) => logger.error({ err }, "metrics could not be collected"));
      const watch = new ServerWatch(server);
      const at = await listen(server, config.listen.metrics, "listen.metrics");
      cleanup.push(() => (watch.stopping(), closeServer(server)));
      listenerStates.set("listen.metrics", () => watch.state);
      metricsUrl = `http://${formatHostPort({ host: connectHost(at.host), port: at.port })}/metrics`;
    }

    /** Each listener's graceful stop (drain.ts), run before the cleanup closes anything. */
    const drains: Array<(grace: AbortSignal) => Promise<void>> = [];
    const tcpListeners = new Map<string, HostPort>();
    for (const [i, connection] of config.connections.entries()) {
      if (connection.protocol !== "tcp") continue;
      const listener = new TcpListener(connection, broker, logger.child({ connection: connection.name }));
      tcpListeners.set(connection.name, await listenOrFail(() => listener.listen(), connection.listen!, `connections[${i}].listen`));
      listenerStates.set(`connections[${connection.name}].listen`, () => listener.state);
      cleanup.push(() => listener.close());
      drains.push((grace) => listener.drain(grace));
    }

    // One set of admission limits and one auth throttle for every protocol's listener: an identity's
    // sessions and a guessing client's failures count across Postgres and MySQL alike.
    const admission = new AdmissionLimits(() => current().limits);
    const throttle = new AuthThrottle(() => current().limits.authThrottle, () => clock() / 1000);
    // Gateways sharing a Postgres store hand each other cancels and KILLs that reached the wrong one.
    const peers = config.listen.postgres || config.listen.mysql ? await PeerCancels.start(store, logger) : undefined;
    if (peers) cleanup.push(() => peers.close());
    let postgres: HostPort | undefined;
    if (config.listen.postgres) {
      const tls = await loadTlsMaterial(dataDir, config.postgres.tls, "postgres.tls");
      const credentials = new CredentialChecker(accessKeys, oidc);
      const listener = new PostgresListener({ config: current, broker, recorder, accessKeys, credentials, tls, clock, logger, limits: admission, throttle, ...(peers ? { peers } : {}) });
      postgres = await listenOrFail(() => listener.listen(config.listen.postgres!), config.listen.postgres, "listen.postgres");
      listenerStates.set("listen.postgres", () => listener.state);
      cleanup.push(() => listener.close());
      drains.push((grace) => listener.drain(grace));
      logger.info({ tls: tls.source, requireTls: config.postgres.requireTls }, "postgres listener ready");
    }

    let mysql: HostPort | undefined;
    if (config.listen.mysql) {
      // The same certificate as the Postgres listener (postgres.tls, or the generated pair).
      const tls = await loadTlsMaterial(dataDir, config.postgres.tls, "postgres.tls");
      const credentials = new CredentialChecker(accessKeys, oidc);
      const listener = new MysqlListener({ config: current, broker, recorder, accessKeys, credentials, tls, clock, logger, limits: admission, throttle, ...(peers ? { peers } : {}) });
      mysql = await listenOrFail(() => listener.listen(config.listen.mysql!), config.listen.mysql, "listen.mysql");
      listenerStates.set("listen.mysql", () => listener.state);
      cleanup.push(() => listener.close());
      drains.push((grace) => listener.drain(grace));
      logger.info({ tls: tls.source, requireTls: config.mysql.requireTls }, "mysql listener ready");
    }

    if (config.listen.ssh) {
      sshHostKey = loadSshHostKey(dataDir, config.ssh.hostKey);
      const credentials = new CredentialChecker(accessKeys, oidc);
      const listener = new SshListener({ config: current, broker, recorder, credentials, hostKey: sshHostKey, keys: options.sshKeys ?? sshKeys, clock, logger, limits: admission, throttle });
      ssh = await listenOrFail(() => listener.listen(config.listen.ssh!), config.listen.ssh, "listen.ssh");
      listenerStates.set("listen.ssh", () => listener.state);
      cleanup.push(() => listener.close());
      drains.push((grace) => listener.drain(grace));
      logger.info({ hostKey: sshHostKey.fingerprint, source: sshHostKey.source }, "ssh listener ready");
    }

    if (config.listen.kubernetes) {
      // Its own certificate if configured, else the Postgres listener's (postgres.tls, or the generated pair).
      kubernetesTls = config.kubernetes.tls
        ? await loadTlsMaterial(dataDir, config.kubernetes.tls, "kubernetes.tls")
        : await loadTlsMaterial(dataDir, config.postgres.tls, "postgres.tls");
      const credentials = new CredentialChecker(accessKeys, oidc);
      const listener = new KubernetesListener({ config: current, broker, recorder, credentials, tls: kubernetesTls, clock, logger, limits: admission, throttle });
      kubernetes = await listenOrFail(() => listener.listen(config.listen.kubernetes!), config.listen.kubernetes, "listen.kubernetes");
      listenerStates.set("listen.kubernetes", () => listener.state);
      cleanup.push(() => listener.close());
      drains.push((grace) => listener.drain(grace));
      logger.info({ tls: kubernetesTls.source }, "kubernetes listener ready");
    }

    if (!options.worker) {
      writeState(dataDir, { pid: process.pid, apiUrl, startedAt: new Date().toISOString() });
      cleanup.push(() => removeState(dataDir, process.pid));
    }
    logger.info({ apiUrl, dataDir, store: config.store.url ? "postgres" : "embedded", postgres: postgres ?? null, mysql: mysql ?? null, ssh: ssh ?? null, kubernetes: kubernetes ?? null, tcp: Object.fromEntries(tcpListeners), ...(peers ? { gatewayId: peers.gatewayId } : {}) }, options.worker ? "gateway worker started" : "gateway started");

    let closing: Promise<void> | undefined;
    const graceOver = new AbortController();
    const drainAndClose = async (graceMs: number) => {
      exitDeadline = Date.now() + graceMs + SHUTDOWN_EXIT_MS;
      logger.info({ graceMs }, "gateway draining: no new sessions; open ones have the grace period to finish");
      const timer = setTimeout(() => graceOver.abort(), graceMs);
      try {
        await Promise.all(drains.map((drain) => drain(graceOver.signal)));
      } finally {
        clearTimeout(timer);
      }
      await undo();
    };
    return {
      apiUrl,
      metricsUrl,
      metricsRegistry: metrics.registry,
      dataDir,
      tcpListeners,
      postgres,
      mysql,
      ssh,
      sshHostKey,
      kubernetes,
      registry,
      store,
      config: current,
      reload(next) {
        readOidcCa(next.identity.oidc);
        // Against what runs, not the previous reload: a second SIGHUP still names a listener that moved.
        const restartNeeded = startBoundChanges(running, next);
        const oidcChanged = JSON.stringify(config.identity.oidc) !== JSON.stringify(next.identity.oidc);
        config = next;
        if (oidcChanged) warmUpOidc();
        return { restartNeeded };
      },
      close(options = {}) {
        if (options.graceMs === 0) graceOver.abort();
        return (closing ??= drainAndClose(options.graceMs ?? config.shutdown.graceMs));
      },
    };
  } catch (error) {
    await undo();
    throw error;
  }
}

/** A stopping gateway exits within the grace period plus this. */
const SHUTDOWN_EXIT_MS = 2_000;
/** Kept back from that for closing the store and the process's own exit. */
const SHUTDOWN_MARGIN_MS = 500;

/**
 * The settings read once at start, whose change a reload cannot apply:
 * listener addresses and the sockets behind them, TLS files, the store, the
 * data directory, the log level, and tcp connections (each owns a listener).
 */
export function startBoundChanges(before: GatewayConfig, after: GatewayConfig): string[] {
  const changed: string[] = [];
  const differ = (a: unknown, b: unknown) => JSON.stringify(a) !== JSON.stringify(b);
  if (differ(before.dataDir, after.dataDir)) changed.push("dataDir");
  for (const key of new Set([...Object.keys(before.listen), ...Object.keys(after.listen)])) {
    if (differ(before.listen[key as keyof GatewayConfig["listen"]], after.listen[key as keyof GatewayConfig["listen"]])) changed.push(`listen.${key}`);
  }
  if (differ(before.api, after.api)) changed.push("api");
  if (differ(before.store, after.store)) changed.push("store");
  if (differ(before.recording.mode, after.recording.mode)) changed.push("recording.mode");
  if (differ(before.recording.journal, after.recording.journal)) changed.push("recording.journal");
  if (differ(before.postgres.tls, after.postgres.tls)) changed.push("postgres.tls");
  if (differ(before.ssh.hostKey, after.ssh.hostKey)) changed.push("ssh.hostKey");
  if (differ(before.kubernetes.tls, after.kubernetes.tls)) changed.push("kubernetes.tls");
  if (differ(before.log, after.log)) changed.push("log.level");
  const tcp = (config: GatewayConfig) => new Map(config.connections.filter((c) => c.protocol === "tcp").map((c) => [c.name, JSON.stringify(c)]));
  const [tcpBefore, tcpAfter] = [tcp(before), tcp(after)];
  for (const name of new Set([...tcpBefore.keys(), ...tcpAfter.keys()])) {
    if (tcpBefore.get(name) !== tcpAfter.get(name)) changed.push(`connections[name=${name}]`);
  }
  return changed;
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


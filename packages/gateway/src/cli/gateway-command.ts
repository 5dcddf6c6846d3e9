import { GatewayError } from "../errors.js";
import { loadConfigFile } from "../config/load.js";
import { createLogger, LOG_LEVELS, type Logger, type LogLevel } from "../logger.js";
import type { Gateway } from "../gateway.js";
import { parseCommand, UsageError, write, type CommandContext } from "./command.js";
import { announceWorker, clusterMetrics, parseWorkers, prepareWorkerProcess, prepareWorkers, superviseWorkers, workerGather, workerSlot, type StopMessage } from "./gateway-workers.js";

export const GATEWAY_HELP = `Usage: gatehouse gateway --config FILE [--log-level LEVEL] [--workers N|auto]

Runs the gateway: the API and connector tunnel on listen.api, and a listener
per protocol. Logs are JSON lines on stdout.

SIGHUP reloads the config file: new sessions see the new connections, policy
and identity settings; open sessions go on. A file that fails validation is
rejected (every problem is logged) and the running config stays; check one
first with "gatehouse config check FILE". Listener addresses, TLS files, the
store and the data directory change only with a restart (the log says so).

SIGTERM or SIGINT stops it gracefully: no new sessions, open ones get
shutdown.graceMs (default 10 s) to finish, then they are ended (Postgres
clients get FATAL 57P01 admin_shutdown) and sealed with end reason
gateway_shutdown; the process exits within about 2 s after the grace. A second
signal ends the grace at once.

--workers N runs N gateway processes (auto: one per core) that share every
listener; each connection goes to the next worker in turn. Each worker keeps
its own journal and signing key under DATA_DIR/workers/N and records as a
gateway of its own; the store must be Postgres (store.url). Connectors keep a
link to each worker by themselves. A worker that dies is started again.

Options:
  --config FILE       gateway config (YAML); see docs/configuration.md
  --log-level LEVEL   ${LOG_LEVELS.join(", ")} (default: the config's log.level, else info)
  --workers N|auto    gateway processes (default 1)`;

export async function gatewayCommand(ctx: CommandContext): Promise<number> {
  const { values } = parseCommand(ctx.argv, { config: { type: "string", short: "c" }, "log-level": { type: "string" }, workers: { type: "string" } });
  if (values.help) {
    write(ctx.stdout, GATEWAY_HELP);
    return 0;
  }
  if (!values.config) throw new UsageError("gateway needs --config FILE");
  const level = values["log-level"];
  if (level !== undefined && !(LOG_LEVELS as readonly string[]).includes(level)) throw new UsageError(`--log-level: expected one of ${LOG_LEVELS.join(", ")}`);

  let config;
  try {
    config = loadConfigFile(values.config);
  } catch (error) {
    if (!(error instanceof GatewayError)) throw error;
    write(ctx.stderr, `gatehouse: ${values.config}: ${error.message}`);
    for (const problem of error.problems) write(ctx.stderr, `  ${problem}`);
    return 1;
  }
  const workers = parseWorkers(values.workers);
  const slot = workerSlot(ctx.env);
  const logger = createLogger((level as LogLevel | undefined) ?? config.log.level);
  const onAdminTokenGenerated = (token: string, file: string) =>
    write(ctx.stderr, `gatehouse: generated an admin token (shown once; kept in ${file}):\n  ${token}`);
  if (workers > 1 && !slot) {
    try {
      prepareWorkers(config, workers, onAdminTokenGenerated);
      return await superviseWorkers(config, values.config, workers, logger);
    } catch (error) {
      logger.fatal({ err: error }, "gateway failed to start");
      write(ctx.stderr, `gatehouse: ${(error as Error).message}`);
      for (const problem of (error as GatewayError).problems ?? []) write(ctx.stderr, `  ${problem}`);
      return 1;
    }
  }
  let gateway: Gateway | undefined;
  const file = values.config;
  // Installed before the start so an early SIGHUP does not end the process (its default).
  const onHangup = () => {
    if (gateway) reloadConfig(gateway, file, logger);
    else logger.warn({ file }, "SIGHUP during start-up ignored; send it again once the gateway has started");
  };
  process.on("SIGHUP", onHangup);

  // How a stop arrives: SIGTERM (SIGINT too, for one gateway), and in a worker the supervisor's stop
  // message (and its channel closing, should the supervisor die: the worker drains rather than serve
  // on unsupervised). One arriving during the start is kept and acted on once the gateway runs.
  let closed: Promise<void> | undefined;
  let stopRequested!: () => void;
  const stopping = new Promise<void>((resolve) => (stopRequested = resolve));
  let early: { now: boolean } | undefined;
  const stop = (why: string, now = false) => {
    const running = gateway;
    if (!running) {
      early = { now: now || early !== undefined };
      return;
    }
    if (closed) {
      if (!now && why !== "SIGTERM" && why !== "SIGINT") return; // a repeated stop message is not a second signal
      logger.info({ signal: why }, "second signal: ending open sessions now");
      void running.close({ graceMs: 0 });
      return;
    }
    logger.info({ signal: why, graceMs: running.config().shutdown.graceMs }, "gateway stopping");
    closed = running.close(now ? { graceMs: 0 } : {});
    stopRequested();
  };
  const onSignal = (signal: NodeJS.Signals) => stop(signal);
  const onStopMessage = (message: StopMessage) => {
    if (message?.type === "gatehouse:stop") stop(message.now ? "supervisor (now)" : "supervisor", message.now);
  };
  const orphaned = () => stop("supervisor gone");
  process.on("SIGTERM", onSignal);
  if (slot) {
    // The terminal's Ctrl-C reaches the whole process group: the supervisor passes it on as a message.
    process.on("SIGINT", () => undefined);
    process.on("message", onStopMessage);
    process.once("disconnect", orphaned);
    prepareWorkerProcess();
  } else process.on("SIGINT", onSignal);
  const leaveSupervisor = () => {
    if (!slot) return;
    process.off("disconnect", orphaned);
    process.off("message", onStopMessage);
    // The channel to the supervisor would keep the process alive.
    if (process.connected) process.disconnect();
  };

  try {
    // Loaded here, not at the top, so the other subcommands start without the store drivers.
    const { startGateway } = await import("../gateway.js");
    gateway = await startGateway(config, {
      logger: slot ? logger.child({ worker: slot.index }) : logger,
      env: ctx.env,
      onAdminTokenGenerated,
      ...(slot ? { worker: { ...slot, metrics: clusterMetrics(), gather: workerGather } } : {}),
    });
    if (slot) {
      announceWorker(gateway.metricsRegistry, {
        index: slot.index,
        apiUrl: gateway.apiUrl,
        metricsUrl: gateway.metricsUrl,
        postgres: gateway.postgres ?? null,
        mysql: gateway.mysql ?? null,
        ssh: gateway.ssh ?? null,
        kubernetes: gateway.kubernetes ?? null,
        tcp: Object.fromEntries(gateway.tcpListeners),
      });
    }
  } catch (error) {
    logger.fatal({ err: error }, "gateway failed to start");
    write(ctx.stderr, `gatehouse: ${(error as Error).message}`);
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
    process.off("SIGHUP", onHangup);
    // A worker that cannot start exits (1), so its supervisor sees it.
    leaveSupervisor();
    return 1;
  }
  if (early) stop("SIGTERM (during the start)", early.now);
  await stopping;
  process.off("SIGHUP", onHangup);
  await closed;
  // Only now: a second signal during the drain must cut it short, not kill the process mid-seal.
  process.off("SIGTERM", onSignal);
  process.off("SIGINT", onSignal);
  logger.info("gateway stopped");
  leaveSupervisor();
  return 0;
}

/** Loads and applies the config file again; on any problem the running config stays. */
export function reloadConfig(gateway: Gateway, file: string, logger: Logger): boolean {
  try {
    const next = loadConfigFile(file);
    const { restartNeeded } = gateway.reload(next);
    logger.info({ file, connections: next.connections.length, restartNeeded }, "config reloaded");
    if (restartNeeded.length > 0) {
      logger.warn({ file, restartNeeded }, "config reloaded, but these settings change only when the gateway restarts");
    }
    return true;
  } catch (error) {
    if (!(error instanceof GatewayError)) {
      logger.error({ file, err: error }, "config reload failed; the running config stays");
      return false;
    }
    logger.error({ file, reason: error.message, problems: error.problems }, "config reload rejected; the running config stays");
    return false;
  }
}

import { pino, type Logger } from "pino";
import { startConnector, type StartConnectorOptions } from "./connector.js";
import { ConnectorError } from "./errors.js";
import { CONNECTOR_HELP, parseConnectorSettings } from "./settings.js";

export interface ConnectorCliIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
  /** Where SIGTERM/SIGINT come from. Default: process. */
  signals: {
    on(signal: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): unknown;
    off(signal: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): unknown;
  };
  /** Default: pino JSON on stdout at the log-level setting. */
  logger?: Logger;
  /** Passed to startConnector (tests tune the mux and backoff). */
  connector?: Omit<StartConnectorOptions, "logger">;
}

/**
 * `gatehouse connector`: parses the settings from `argv` (the arguments after the subcommand) and `env`, runs
 * the connector, and on SIGTERM or SIGINT drains it (a second signal cuts the drain short). Resolves with the
 * exit code: 0 after a drain or --help, 2 for invalid settings.
 */
export async function runConnectorCli(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  io: ConnectorCliIo = { stdout: process.stdout, stderr: process.stderr, signals: process },
): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    io.stdout.write(CONNECTOR_HELP);
    return 0;
  }
  let settings;
  try {
    settings = parseConnectorSettings(argv, env);
  } catch (err) {
    if (err instanceof ConnectorError && err.code === "CONFIG_INVALID") {
      io.stderr.write(`gatehouse connector: ${err.message}\n(run "gatehouse connector --help" for the options)\n`);
      return 2;
    }
    throw err;
  }

  const logger = io.logger ?? pino({ level: settings.logLevel });
  const connector = startConnector(settings, { ...io.connector, logger });
  let stopListening = (): void => {};
  let signals = 0;
  let drained!: Promise<void>;
  const signalled = new Promise<void>((resolve) => {
    const onSignal = (signal: NodeJS.Signals): void => {
      signals++;
      if (signals === 1) {
        logger.info({ signal, timeoutMs: settings.drainTimeoutMs }, "signal received; draining");
        drained = connector.drain();
        resolve();
      } else {
        logger.warn({ signal }, "second signal; closing the open streams now");
        void connector.stop();
      }
    };
    io.signals.on("SIGTERM", onSignal);
    io.signals.on("SIGINT", onSignal);
    stopListening = () => {
      io.signals.off("SIGTERM", onSignal);
      io.signals.off("SIGINT", onSignal);
    };
  });
  await signalled;
  await drained;
  // Listeners are removed only now, so a second signal during the drain still reaches us.
  stopListening();
  return 0;
}

import { GatewayError } from "../errors.js";
import { loadConfigFile } from "../config/load.js";
import { createLogger, LOG_LEVELS, type LogLevel } from "../logger.js";
import { parseCommand, UsageError, write, type CommandContext } from "./command.js";

export const GATEWAY_HELP = `Usage: gatehouse gateway --config FILE [--log-level LEVEL]

Runs the gateway: the API and connector tunnel on listen.api, and a listener
per protocol. Logs are JSON lines on stdout.

Options:
  --config FILE       gateway config (YAML); see docs/configuration.md
  --log-level LEVEL   ${LOG_LEVELS.join(", ")} (default: the config's log.level, else info)`;

export async function gatewayCommand(ctx: CommandContext): Promise<number> {
  const { values } = parseCommand(ctx.argv, { config: { type: "string", short: "c" }, "log-level": { type: "string" } });
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
  const logger = createLogger((level as LogLevel | undefined) ?? config.log.level);
  let gateway;
  try {
    // Loaded here, not at the top, so the other subcommands start without the store drivers.
    const { startGateway } = await import("../gateway.js");
    gateway = await startGateway(config, {
      logger,
      onAdminTokenGenerated: (token, file) =>
        write(ctx.stderr, `gatehouse: generated an admin token (shown once; kept in ${file}):\n  ${token}`),
    });
  } catch (error) {
    logger.fatal({ err: error }, "gateway failed to start");
    write(ctx.stderr, `gatehouse: ${(error as Error).message}`);
    return 1;
  }
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      logger.info({ signal }, "gateway stopping");
      resolve();
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
  await gateway.close();
  return 0;
}

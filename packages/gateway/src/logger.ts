import { pino, type Logger } from "pino";

export type { Logger };

export const LOG_LEVELS = ["trace", "debug", "info", "warn", "error", "fatal", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Structured JSON logs on stdout; every line of a session or connector carries its id via child loggers. */
export function createLogger(level: LogLevel = "info", destination?: NodeJS.WritableStream): Logger {
  return pino({ level, base: { service: "gatehouse-gateway" }, timestamp: pino.stdTimeFunctions.isoTime }, destination ?? process.stdout);
}

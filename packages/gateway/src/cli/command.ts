import { parseArgs, type ParseArgsConfig } from "node:util";

/** What every subcommand gets: its arguments, the environment, and where to write. */
export interface CommandContext {
  argv: string[];
  env: NodeJS.ProcessEnv;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
}

export type Options = NonNullable<ParseArgsConfig["options"]>;

/** Thrown for bad usage: the CLI prints the message and the command's help, and exits 2. */
export class UsageError extends Error {}

export function parseCommand<O extends Options>(argv: string[], options: O, allowPositionals = 0) {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { ...options, help: { type: "boolean", short: "h" } }, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (parsed.positionals.length > allowPositionals && !parsed.values.help) {
    throw new UsageError(`unexpected argument "${parsed.positionals[allowPositionals]}"`);
  }
  return parsed;
}

export function write(stream: NodeJS.WritableStream, text: string): void {
  stream.write(text.endsWith("\n") ? text : `${text}\n`);
}

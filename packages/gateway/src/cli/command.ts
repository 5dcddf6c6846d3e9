import { parseArgs, type ParseArgsConfig } from "node:util";

/** What every subcommand gets: its arguments, the environment, and where to write. */
export interface CommandContext {
  argv: string[];
  env: NodeJS.ProcessEnv;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  /** Where "-" reads from (keys add-ssh -); process.stdin when left out. */
  stdin?: NodeJS.ReadableStream;
}

export type Options = NonNullable<ParseArgsConfig["options"]>;

/** Thrown for bad usage: the CLI prints the message and the command's help, and exits 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

type HelpOption = { help: { type: "boolean"; short: "h" } };
type ParsedCommand<O extends Options> = ReturnType<typeof parseArgs<{ args: string[]; options: O & HelpOption; allowPositionals: true; strict: true }>>;

/** Parses a subcommand's flags (plus --help/-h); unknown flags and extra arguments are usage errors. */
export function parseCommand<O extends Options>(argv: string[], options: O, allowPositionals = 0): ParsedCommand<O> {
  let parsed: ParsedCommand<O>;
  try {
    const all = { ...options, help: { type: "boolean", short: "h" } } as O & HelpOption;
    parsed = parseArgs({ args: argv, options: all, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  if (parsed.positionals.length > allowPositionals && !(parsed.values as { help?: boolean }).help) {
    throw new UsageError(`unexpected argument "${parsed.positionals[allowPositionals]}"`);
  }
  return parsed;
}

export function write(stream: NodeJS.WritableStream, text: string): void {
  stream.write(text.endsWith("\n") ? text : `${text}\n`);
}

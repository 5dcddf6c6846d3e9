/**
 * The legacy scp observer (`scp -O`, and every scp before OpenSSH 9): the client runs an exec of
 * `scp -t TARGET` (it uploads: the remote is the *sink*) or `scp -f PATH…` (it downloads: the
 * remote is the *source*). Both ends then speak the old rcp protocol over the channel's stdio
 * (OpenSSH scp.c `source()`/`sink()`; there is no spec but the code):
 *
 *   source → sink, one line at a time, each answered by the sink with an ack:
 *     `T<mtime> 0 <atime> 0\n`     times of the next file or directory (-p)
 *     `C<mode> <size> <name>\n`    a file; after its ack: <size> bytes, then 0x00 (or an error line)
 *     `D<mode> 0 <name>\n`         enter a directory (-r);  `E\n` leave it
 *     0x01/0x02 `<message>\n`      the source failed on a path (warning / fatal); no ack follows
 *   sink → source, the acks:  0x00 ok | 0x01 `<message>\n` (warning) | 0x02 `<message>\n` (fatal)
 *   and the sink speaks first: one 0x00 "ready".
 *
 * The exchange is lockstep (the source waits for each ack), so the observer always knows which
 * line an ack answers. One record per file: `upload /dir/name (SIZE bytes)` or
 * `download /path (SIZE bytes)`, its outcome from the sink's ack after the data (or the source's
 * error). File bytes are counted as they stream past, never held. An upload is mutating: it goes
 * through `sink.commandStarted` when its `C` line is complete, before the listener relays it.
 *
 * Pure: time from `now()`; errors are `SshProtocolError` (`SCP_MALFORMED`); after one the
 * observer is broken and rethrows it.
 */
import { ChunkQueue } from "../shared/chunk-queue.js";
import { SshProtocolError } from "./errors.js";

/** What `scp -t/-f …` asked for, from the exec's command line. */
export interface ScpCommand {
  /** `-t`: the client uploads to TARGET; `-f`: the client downloads PATHS. */
  readonly direction: "upload" | "download";
  /** `-t`: one target; `-f`: the sources (the remote shell split them at spaces: so do we). */
  readonly paths: readonly string[];
  readonly recursive: boolean;
  readonly preserveTimes: boolean;
  /** `-d`: the target must be a directory (several sources). */
  readonly targetIsDirectory: boolean;
}

/** `scp [-r] [-p] [-d] [-v] [-q] (-t|-f) [--] PATH…` as scp runs it remotely, or undefined for any other command. */
export function parseScpCommand(commandLine: string): ScpCommand | undefined {
  const words = shellWords(commandLine);
  if (words === undefined || words.length < 2) return undefined;
  const program = words[0]!;
  if (program !== "scp" && !program.endsWith("/scp")) return undefined;
  let direction: ScpCommand["direction"] | undefined;
  let recursive = false;
  let preserveTimes = false;
  let targetIsDirectory = false;
  let i = 1;
  for (; i < words.length; i++) {
    const word = words[i]!;
    if (word === "--") {
      i++;
      break;
    }
    if (!word.startsWith("-") || word === "-") break;
    for (const flag of word.slice(1)) {
      if (flag === "t") direction = "upload";
      else if (flag === "f") direction = "download";
      else if (flag === "r") recursive = true;
      else if (flag === "p") preserveTimes = true;
      else if (flag === "d") targetIsDirectory = true;
      else if (flag !== "v" && flag !== "q" && flag !== "D") return undefined;
    }
  }
  const paths = words.slice(i);
  if (direction === undefined || paths.length === 0) return undefined;
  return { direction, paths, recursive, preserveTimes, targetIsDirectory };
}

/** POSIX-shell word splitting for one command line: quotes and backslashes, no expansion. */
function shellWords(line: string): string[] | undefined {
  const words: string[] = [];
  let word = "";
  let inWord = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) return undefined;
      word += line.slice(i + 1, end);
      i = end;
      inWord = true;
    } else if (c === '"') {
      let j = i + 1;
      for (; j < line.length && line[j] !== '"'; j++) {
        if (line[j] === "\\" && j + 1 < line.length && '"\\$`'.includes(line[j + 1]!)) j++;
        word += line[j];
      }
      if (j >= line.length) return undefined;
      i = j;
      inWord = true;
    } else if (c === "\\" && i + 1 < line.length) {
      word += line[++i];
      inWord = true;
    } else if (c === " " || c === "\t" || c === "\n") {
      if (inWord) words.push(word);
      word = "";
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  return words;
}

/** One file (or a failed path) as it starts. */
export interface ScpTransfer {
  readonly id: number;
  readonly kind: "scp";
  /** `upload /srv/app/build.tgz (1048576 bytes)`, `download /var/log/syslog (52311 bytes)`. */
  readonly command: string;
  readonly mutating: boolean;
  readonly startedAt: number;
}

export interface ScpCompletion {
  readonly outcome: "ok" | "error";
  readonly completedAt: number;
  readonly durationUs: number;
  /**
   * `path`, `size` (declared), `bytes` (that passed), `mode`; `message` on an error (the scp
   * error line, e.g. "scp: /etc/x: Permission denied"); `interrupted` when the channel ended first;
   * `pathUncertain` when the target may be a file or a directory (single-file upload without -d).
   */
  readonly details: Readonly<Record<string, unknown>>;
}

export interface ScpObserverSink {
  /** An upload is about to be relayed: make it durable first. */
  commandStarted(transfer: ScpTransfer): void;
  commandCompleted(transfer: ScpTransfer, completion: ScpCompletion): void;
}

export interface ScpObserverOptions {
  readonly now: () => number;
  readonly command: ScpCommand;
}

/** A control line longer than this is not scp (OpenSSH's own limit is its 2 KiB buffer + PATH_MAX). */
export const MAX_SCP_LINE = 8192;

/** What the next ack from the sink answers. */
type Awaiting =
  | { readonly type: "ready" }
  | { readonly type: "times" }
  | { readonly type: "dir"; readonly name: string; readonly mode: string }
  | { readonly type: "end-dir" }
  | { readonly type: "header"; readonly file: FileInFlight }
  | { readonly type: "data"; readonly file: FileInFlight; readonly sourceError?: string };

interface FileInFlight {
  readonly transfer: ScpTransfer;
  readonly path: string;
  readonly size: number;
  readonly mode: string;
  /** Upload of one file without -d: the target may be the file itself or its directory. */
  readonly uncertain?: boolean;
  bytes: number;
}

const SourceState = {
  /** Reading a control line (or an error line). */
  Line: "line",
  /** A line was sent; nothing more until the sink's ack. */
  AwaitAck: "await-ack",
  /** File bytes to skip. */
  Data: "data",
  /** The byte after the data: 0x00, or an error line. */
  DataEnd: "data-end",
} as const;
type SourceState = (typeof SourceState)[keyof typeof SourceState];

export class ScpObserver {
  private readonly source = new ChunkQueue();
  private readonly sinkQueue = new ChunkQueue();
  private state: SourceState = SourceState.AwaitAck;
  private awaiting: Awaiting | undefined = { type: "ready" };
  private file: FileInFlight | undefined;
  private readonly dirs: string[] = [];
  private nextId = 1;
  private broken: SshProtocolError | undefined;
  private ended = false;

  constructor(
    private readonly sink: ScpObserverSink,
    private readonly options: ScpObserverOptions,
  ) {}

  /** Bytes from the SSH client (stdin of the remote scp). */
  client(chunk: Uint8Array): void {
    this.guard(() => (this.options.command.direction === "upload" ? this.fromSource(chunk) : this.fromSink(chunk)));
  }

  /** Bytes from the remote scp (its stdout). */
  server(chunk: Uint8Array): void {
    this.guard(() => (this.options.command.direction === "upload" ? this.fromSink(chunk) : this.fromSource(chunk)));
  }

  /** The channel closed: a file in flight is completed as interrupted, with the bytes that passed. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    const file = this.file ?? (this.awaiting?.type === "header" || this.awaiting?.type === "data" ? this.awaiting.file : undefined);
    if (file !== undefined) this.completeFile(file, "error", { interrupted: true });
    this.file = undefined;
    this.awaiting = undefined;
  }

  private guard(work: () => void): void {
    if (this.broken !== undefined) throw this.broken;
    if (this.ended) return;
    try {
      work();
    } catch (error) {
      this.broken = error instanceof SshProtocolError ? error : new SshProtocolError("SCP_MALFORMED", "scp observer failed", { cause: error });
      throw this.broken;
    }
  }

  // --- the source's stream ---

  private fromSource(chunk: Uint8Array): void {
    this.source.push(chunk);
    this.drainSource();
  }

  private drainSource(): void {
    const q = this.source;
    for (;;) {
      switch (this.state) {
        case SourceState.AwaitAck:
          // Lockstep: a real source sends nothing here. Bounded, so a peer that does cannot grow us.
          if (q.length > MAX_SCP_LINE) throw malformed("the source sent data before the sink acknowledged its last line");
          return;
        case SourceState.Data: {
          const file = this.file!;
          const n = Math.min(file.size - file.bytes, q.length);
          q.discard(n);
          file.bytes += n;
          if (file.bytes < file.size) return;
          this.state = SourceState.DataEnd;
          break;
        }
        case SourceState.DataEnd: {
          if (q.length === 0) return;
          const file = this.file!;
          if (q.byteAt(0) === 0) {
            q.discard(1);
            this.file = undefined;
            this.expect({ type: "data", file });
            break;
          }
          const line = this.readLine(q);
          if (line === undefined) return;
          // The source could not read the whole file; it still waits for the sink's ack.
          this.file = undefined;
          this.expect({ type: "data", file, sourceError: errorText(line) });
          break;
        }
        case SourceState.Line: {
          const line = this.readLine(q);
          if (line === undefined) return;
          this.onSourceLine(line);
          break;
        }
      }
    }
  }

  private onSourceLine(line: Uint8Array): void {
    const kind = line[0];
    const text = new TextDecoder().decode(line.subarray(1));
    switch (kind) {
      case 0x43: {
        // C<mode> <size> <name>
        const match = /^([0-7]{4}) (\d+) (.+)$/s.exec(text);
        if (match === null) throw malformed("bad C line", { line: text.slice(0, 200) });
        const [, mode, sizeText, name] = match as unknown as [string, string, string, string];
        const size = Number(sizeText);
        if (!Number.isSafeInteger(size) || name.includes("/") || name === ".." || name === ".") throw malformed("bad C line", { line: text.slice(0, 200) });
        const { path, uncertain } = this.pathFor(name);
        const direction = this.options.command.direction;
        const transfer: ScpTransfer = {
          id: this.nextId++,
          kind: "scp",
          command: `${direction} ${path} (${size} bytes)`,
          mutating: direction === "upload",
          startedAt: this.options.now(),
        };
        const file: FileInFlight = { transfer, path, size, mode, bytes: 0, ...(uncertain ? { uncertain } : {}) };
        if (transfer.mutating) this.sink.commandStarted(transfer);
        this.expect({ type: "header", file });
        return;
      }
      case 0x44: {
        // D<mode> 0 <name>
        const match = /^([0-7]{4}) \d+ (.+)$/s.exec(text);
        if (match === null || match[2]!.includes("/") || match[2] === "..") throw malformed("bad D line", { line: text.slice(0, 200) });
        this.expect({ type: "dir", name: match[2]!, mode: match[1]! });
        return;
      }
      case 0x45:
        if (text !== "") throw malformed("bad E line");
        this.expect({ type: "end-dir" });
        return;
      case 0x54:
        if (!/^\d+ \d+ \d+ \d+$/.test(text)) throw malformed("bad T line", { line: text.slice(0, 200) });
        this.expect({ type: "times" });
        return;
      case 0x01:
      case 0x02:
        // The source failed on a path ("scp: /x: No such file or directory"); no ack follows.
        this.failedPath(errorText(line));
        return;
      default:
        throw malformed(`unknown scp control line starting with byte ${kind}`);
    }
  }

  // --- the sink's acks ---

  private fromSink(chunk: Uint8Array): void {
    const q = this.sinkQueue;
    q.push(chunk);
    while (q.length > 0) {
      const first = q.byteAt(0);
      let error: string | undefined;
      if (first === 0) q.discard(1);
      else if (first === 1 || first === 2) {
        const line = this.readLine(q);
        if (line === undefined) return;
        error = errorText(line);
      } else throw malformed(`the sink sent byte ${first} where an ack belongs`);
      this.onAck(error);
    }
  }

  private onAck(error: string | undefined): void {
    const awaiting = this.awaiting;
    this.awaiting = undefined;
    if (awaiting === undefined) {
      // The sink may send a fatal error any time (e.g. its target vanished): record it, nothing else.
      if (error === undefined) throw malformed("an ack that answers nothing");
      this.failedPath(error);
      return;
    }
    this.state = SourceState.Line;
    switch (awaiting.type) {
      case "ready":
      case "times":
        if (error !== undefined) this.failedPath(error);
        return;
      case "dir":
        if (error !== undefined) this.failedPath(error);
        else this.dirs.push(awaiting.name);
        return;
      case "end-dir":
        this.dirs.pop();
        if (error !== undefined) this.failedPath(error);
        return;
      case "header":
        if (error !== undefined) {
          // The sink refused the file (cannot create it): the source skips its data.
          this.completeFile(awaiting.file, "error", { message: error });
          return;
        }
        this.file = awaiting.file;
        this.state = SourceState.Data;
        this.drainSource();
        return;
      case "data": {
        const message = awaiting.sourceError ?? error;
        this.completeFile(awaiting.file, message === undefined ? "ok" : "error", message === undefined ? {} : { message });
        this.drainSource();
        return;
      }
    }
  }

  private expect(awaiting: Awaiting): void {
    this.awaiting = awaiting;
    this.state = SourceState.AwaitAck;
  }

  // --- records ---

  private completeFile(file: FileInFlight, outcome: "ok" | "error", extra: Record<string, unknown>): void {
    const at = this.options.now();
    this.sink.commandCompleted(file.transfer, {
      outcome,
      completedAt: at,
      durationUs: Math.max(0, at - file.transfer.startedAt),
      details: { path: file.path, size: file.size, bytes: file.bytes, mode: file.mode, ...(file.uncertain ? { pathUncertain: true } : {}), ...extra },
    });
  }

  /** An error that names no file of ours: one record naming the path in the message, or the command's. */
  private failedPath(message: string): void {
    const named = /^scp: (.*): [^:]*$/s.exec(message)?.[1];
    const path = named ?? this.options.command.paths.join(" ");
    const direction = this.options.command.direction;
    const transfer: ScpTransfer = { id: this.nextId++, kind: "scp", command: `${direction} ${path}`, mutating: false, startedAt: this.options.now() };
    this.sink.commandCompleted(transfer, { outcome: "error", completedAt: transfer.startedAt, durationUs: 0, details: { path, message } });
  }

  /** Where a file named in a C line lives on the resource. */
  private pathFor(name: string): { path: string; uncertain: boolean } {
    const { direction, paths, targetIsDirectory, recursive } = this.options.command;
    if (this.dirs.length > 0) return { path: join(this.topLevelBase(), ...this.dirs, name), uncertain: direction === "upload" && !targetIsDirectory };
    return this.topLevel(name, direction, paths, targetIsDirectory || recursive);
  }

  /** Where the outermost directory of a recursive copy sits: in the upload's target, beside the download's source. */
  private topLevelBase(): string {
    const { direction, paths } = this.options.command;
    if (direction === "upload") return paths[0]!;
    const source = paths.find((p) => basename(p) === this.dirs[0]) ?? paths[0]!;
    return dirname(source);
  }

  private topLevel(name: string, direction: ScpCommand["direction"], paths: readonly string[], dirMode: boolean): { path: string; uncertain: boolean } {
    if (direction === "download") {
      const source = paths.find((p) => basename(p) === name);
      return { path: source ?? join(dirname(paths[0]!), name), uncertain: false };
    }
    const target = paths[0]!;
    // `scp f host:/tmp` and `scp f host:/tmp/g` both run `scp -t …`: only the sink knows if the target is a directory.
    if (dirMode || target.endsWith("/")) return { path: join(target, name), uncertain: false };
    if (basename(target) === name) return { path: target, uncertain: false };
    return { path: join(target, name), uncertain: true };
  }

  private readLine(q: ChunkQueue): Uint8Array | undefined {
    const limit = Math.min(q.length, MAX_SCP_LINE);
    for (let i = 0; i < limit; i++) {
      if (q.byteAt(i) === 0x0a) {
        const line = q.take(i + 1);
        return line.subarray(0, i);
      }
    }
    if (q.length >= MAX_SCP_LINE) throw malformed(`an scp line longer than ${MAX_SCP_LINE} bytes`);
    return undefined;
  }
}

function errorText(line: Uint8Array): string {
  return new TextDecoder().decode(line.subarray(1)).trim();
}

function malformed(message: string, context?: Readonly<Record<string, unknown>>): SshProtocolError {
  return new SshProtocolError("SCP_MALFORMED", message, context === undefined ? {} : { context });
}

function join(...parts: string[]): string {
  return parts.reduce((acc, part) => (acc === "" ? part : acc.endsWith("/") ? acc + part : `${acc}/${part}`), "");
}

function basename(path: string): string {
  const trimmed = path.replace(/\/+$/, "");
  return trimmed.slice(trimmed.lastIndexOf("/") + 1);
}

function dirname(path: string): string {
  const trimmed = path.replace(/\/+$/, "");
  const slash = trimmed.lastIndexOf("/");
  return slash < 0 ? "" : slash === 0 ? "/" : trimmed.slice(0, slash);
}

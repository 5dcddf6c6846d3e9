import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

/**
 * A command in a detached tmux pane on a tmux server of its own (`-L`), sized `cols`×`rows`: a real
 * terminal for an interactive client (`kubectl exec -it`), asynchronous, since the test's own event
 * loop may be serving the other side. The command's exit status goes to `exitFile` (`EXIT=N`).
 */
export class TmuxTerminal {
  private constructor(
    private readonly socket: string,
    private readonly exitFile: string,
  ) {}

  static async start(command: string, options: { socket: string; exitFile: string; cols?: number; rows?: number }): Promise<TmuxTerminal> {
    const terminal = new TmuxTerminal(options.socket, options.exitFile);
    await terminal.tmux("new-session", "-d", "-s", "t", "-x", String(options.cols ?? 100), "-y", String(options.rows ?? 30), `${command}; echo EXIT=$? > ${options.exitFile}`);
    return terminal;
  }

  private async tmux(...args: string[]): Promise<string> {
    return (await execFileAsync("tmux", ["-L", this.socket, "-f", "/dev/null", ...args])).stdout;
  }

  /** What the pane shows now. */
  screen(): Promise<string> {
    return this.tmux("capture-pane", "-p", "-t", "t");
  }

  /** Types a line and Enter. */
  async type(line: string): Promise<void> {
    await this.tmux("send-keys", "-t", "t", "-l", line);
    await this.tmux("send-keys", "-t", "t", "Enter");
  }

  async resize(cols: number, rows: number): Promise<void> {
    await this.tmux("resize-window", "-t", "t", "-x", String(cols), "-y", String(rows));
  }

  /** `EXIT=N\n` once the command ended, "" before. */
  exited(): string {
    return existsSync(this.exitFile) ? readFileSync(this.exitFile, "utf8") : "";
  }

  async stop(): Promise<void> {
    await this.tmux("kill-server").catch(() => undefined);
  }
}

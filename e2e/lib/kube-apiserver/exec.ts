// exec over the Kubernetes remote command protocol (WebSocket, v5.channel.k8s.io / v4): each
// message starts with a channel byte — 0 stdin, 1 stdout, 2 stderr, 3 error (a Status as JSON, the
// exit code for a non-zero exit), 4 resize ({"Width":W,"Height":H}); v5 adds 255 "close channel"
// (the client's stdin EOF). The command runs for real, as a container runtime would run it:
// without a TTY as plain pipes; with `tty=true` under a pseudo-terminal (util-linux `script`),
// stdout and stderr merged on channel 1, the terminal size following the resize messages.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { accessSync, constants as fsConstants } from "node:fs";
import { delimiter, join } from "node:path";
import type { WebSocketPeer } from "./websocket.js";

export const EXEC_PROTOCOLS = ["v5.channel.k8s.io", "v4.channel.k8s.io"] as const;

const Channel = { stdin: 0, stdout: 1, stderr: 2, error: 3, resize: 4, close: 255 } as const;
/** With a TTY, how long to wait for the client's first resize message so the command starts at the right size. */
const FIRST_SIZE_WAIT_MS = 500;

export function runExec(peer: WebSocketPeer, query: URLSearchParams): void {
  const command = query.getAll("command");
  const out = (channel: number, data: Buffer) => peer.send(Buffer.concat([Buffer.from([channel]), data]));
  if (command.length === 0) {
    out(Channel.error, Buffer.from(JSON.stringify({ metadata: {}, status: "Failure", message: "you must specify at least 1 command", reason: "BadRequest", code: 400 })));
    return peer.close();
  }
  const failed = (message: string) => {
    out(Channel.error, Buffer.from(JSON.stringify({ metadata: {}, status: "Failure", message: `exec failed: ${message}`, reason: "InternalError" })));
    peer.close();
  };
  const finished = (code: number | null, signal: NodeJS.Signals | null) => {
    const exit = code ?? (signal ? 128 + 9 : 1);
    const status = exit === 0
      ? { metadata: {}, status: "Success" }
      : { metadata: {}, status: "Failure", message: `command terminated with non-zero exit code: exit status ${exit}`, reason: "NonZeroExitCode", details: { causes: [{ reason: "ExitCode", message: String(exit) }] } };
    out(Channel.error, Buffer.from(JSON.stringify(status)));
    peer.close();
  };
  const wire = (child: ChildProcess, stdin: boolean, stderrChannel: number) => {
    child.stdin!.on("error", () => undefined);
    if (!stdin) child.stdin!.end();
    child.stdout!.on("data", (d: Buffer) => out(Channel.stdout, d));
    child.stderr!.on("data", (d: Buffer) => out(stderrChannel, d));
    peer.onClose(() => child.exitCode === null && child.signalCode === null && child.kill("SIGKILL"));
    child.on("error", (e) => failed(e.message));
    child.on("close", finished);
  };
  const stdin = query.get("stdin") === "true";

  if (query.get("tty") !== "true") {
    const child = spawn(command[0]!, command.slice(1), { stdio: ["pipe", "pipe", "pipe"] });
    wire(child, stdin, Channel.stderr);
    peer.onMessage((m) => {
      if (m[0] === Channel.stdin) child.stdin.write(m.subarray(1));
      else if (m[0] === Channel.close && m[1] === Channel.stdin) child.stdin.end();
      // resize without a TTY: nothing to resize, as with a real runtime
    });
    return;
  }

  // TTY: `script -qfec CMD /dev/null` gives the command a pty (echo on, as in a container), and
  // exits with its status. A small sh wrapper reports the pty's name on fd 3 (so later sizes can be
  // set with `stty -F`), sets the first size, then execs the command itself.
  if (!findExecutable(command[0]!)) return failed(`spawn ${command[0]} ENOENT`);
  let child: ChildProcess | undefined;
  let size: { cols: number; rows: number } | undefined;
  let pts: string | undefined;
  let sizing: Promise<void> = Promise.resolve();
  const early: Buffer[] = [];
  const applySize = () => {
    if (!pts || !size) return;
    const { cols, rows } = size;
    const device = pts;
    sizing = sizing.then(() => new Promise<void>((resolve) => void execFile("stty", ["-F", device, "cols", String(cols), "rows", String(rows)], () => resolve())));
  };
  const input = (m: Buffer) => {
    if (m[0] === Channel.stdin) child!.stdin!.write(m.subarray(1));
    else if (m[0] === Channel.close && m[1] === Channel.stdin) child!.stdin!.end();
  };
  const start = () => {
    clearTimeout(waiting);
    if (child) return;
    const wrapper = [
      size ? `stty cols ${size.cols} rows ${size.rows} 2>/dev/null;` : "",
      "tty >&3;",
      `exec ${command.map(shellQuote).join(" ")} 3>&-`,
    ].join(" ");
    // containerd sets TERM=xterm for a TTY exec.
    child = spawn("script", ["-qfec", wrapper, "/dev/null"], { stdio: ["pipe", "pipe", "pipe", "pipe"], env: { ...process.env, SHELL: "/bin/sh", TERM: "xterm" } });
    let name = "";
    child.stdio[3]!.on("data", (d: Buffer) => {
      name += d.toString("utf8");
      if (!pts && name.includes("\n")) {
        pts = name.trim();
        applySize();
      }
    });
    child.stdio[3]!.on("error", () => undefined);
    // The pty's input stays open even without stdin=true: EOF there would reach the command as ^D.
    wire(child, true, Channel.stdout);
    for (const m of early.splice(0)) input(m);
  };
  const waiting = setTimeout(start, FIRST_SIZE_WAIT_MS);
  peer.onClose(() => clearTimeout(waiting));
  peer.onMessage((m) => {
    if (m[0] === Channel.resize) {
      try {
        const s = JSON.parse(m.subarray(1).toString("utf8")) as { Width?: number; Height?: number };
        if (Number.isInteger(s.Width) && Number.isInteger(s.Height)) size = { cols: s.Width!, rows: s.Height! };
      } catch {
        return;
      }
      if (child) applySize();
      else start();
    } else if (child) input(m);
    else early.push(m);
  });
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** PATH lookup as exec does, so a missing command fails the same way with or without a TTY. */
function findExecutable(cmd: string): boolean {
  const candidates = cmd.includes("/") ? [cmd] : (process.env.PATH ?? "/usr/bin:/bin").split(delimiter).map((d) => join(d, cmd));
  return candidates.some((p) => {
    try {
      accessSync(p, fsConstants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

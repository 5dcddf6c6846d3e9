// exec over the Kubernetes remote command protocol (WebSocket, v5.channel.k8s.io / v4): each
// message starts with a channel byte — 0 stdin, 1 stdout, 2 stderr, 3 error (a Status as JSON, the
// exit code for a non-zero exit), 4 resize; v5 adds 255 "close channel" (the client's stdin EOF).
// The command runs for real, as `sh -c` in a container would (no TTY).
import { spawn } from "node:child_process";
import type { WebSocketPeer } from "./websocket.js";

export const EXEC_PROTOCOLS = ["v5.channel.k8s.io", "v4.channel.k8s.io"] as const;

const Channel = { stdin: 0, stdout: 1, stderr: 2, error: 3, resize: 4, close: 255 } as const;

export function runExec(peer: WebSocketPeer, query: URLSearchParams): void {
  const command = query.getAll("command");
  const out = (channel: number, data: Buffer) => peer.send(Buffer.concat([Buffer.from([channel]), data]));
  if (command.length === 0) {
    out(Channel.error, Buffer.from(JSON.stringify({ metadata: {}, status: "Failure", message: "you must specify at least 1 command", reason: "BadRequest", code: 400 })));
    return peer.close();
  }
  const child = spawn(command[0]!, command.slice(1), { stdio: ["pipe", "pipe", "pipe"] });
  child.stdin.on("error", () => undefined);
  if (query.get("stdin") !== "true") child.stdin.end();
  child.stdout.on("data", (d: Buffer) => out(Channel.stdout, d));
  child.stderr.on("data", (d: Buffer) => out(Channel.stderr, d));
  peer.onMessage((m) => {
    const channel = m[0];
    if (channel === Channel.stdin) child.stdin.write(m.subarray(1));
    else if (channel === Channel.close && m[1] === Channel.stdin) child.stdin.end();
  });
  peer.onClose(() => child.exitCode === null && child.kill("SIGKILL"));
  child.on("error", (e) => {
    out(Channel.error, Buffer.from(JSON.stringify({ metadata: {}, status: "Failure", message: `exec failed: ${e.message}`, reason: "InternalError" })));
    peer.close();
  });
  child.on("close", (code, signal) => {
    const exit = code ?? (signal ? 128 + 9 : 1);
    const status = exit === 0
      ? { metadata: {}, status: "Success" }
      : { metadata: {}, status: "Failure", message: `command terminated with non-zero exit code: exit status ${exit}`, reason: "NonZeroExitCode", details: { causes: [{ reason: "ExitCode", message: String(exit) }] } };
    out(Channel.error, Buffer.from(JSON.stringify(status)));
    peer.close();
  });
}

// Follows a kubectl exec/attach over WebSocket — the Kubernetes remote command protocol
// (k8s.io/apimachinery/pkg/util/remotecommand, v4 and v5.channel.k8s.io): every binary message
// starts with its channel byte. 0 stdin, 1 stdout, 2 stderr, 3 the error channel (v4+: a JSON
// `Status` with the exit code), 4 resize (`{"Width":W,"Height":H}`); v5 adds 255, "close
// channel N" (the client's stdin EOF). Other subprotocols (base64 ones, SPDY tunneled in
// WebSocket for port-forward) are not followed: `followsSubprotocol` says which are.

import { WS_OPCODE, WebSocketReader } from "./websocket-reader.js";

export type RemoteCommandEvent =
  | { type: "stdin"; data: Buffer }
  | { type: "stdin_closed" }
  | { type: "resize"; cols: number; rows: number }
  | { type: "stdout"; data: Buffer }
  | { type: "stderr"; data: Buffer }
  /** The error channel's answer: the exit code (0 on Success), or the failure's message. */
  | { type: "status"; exitCode: number | null; reason?: string; message?: string };

const CHANNEL = { stdin: 0, stdout: 1, stderr: 2, error: 3, resize: 4, close: 255 } as const;

export const REMOTE_COMMAND_SUBPROTOCOLS = ["v5.channel.k8s.io", "v4.channel.k8s.io"] as const;

export function followsSubprotocol(protocol: string | undefined): boolean {
  return protocol !== undefined && (REMOTE_COMMAND_SUBPROTOCOLS as readonly string[]).includes(protocol);
}

/** The exit code in a v4+ error-channel Status: 0 on Success, the ExitCode cause on NonZeroExitCode. */
export function exitCodeOf(statusJson: Buffer): { exitCode: number | null; reason?: string; message?: string } {
  let parsed: Record<string, any>;
  try {
    parsed = JSON.parse(statusJson.toString("utf8")) as Record<string, any>;
  } catch {
    return { exitCode: null, message: statusJson.toString("utf8").slice(0, 1024) };
  }
  if (parsed?.status === "Success") return { exitCode: 0 };
  // The kubelet's error-channel Status carries no `kind`, so readStatus (which wants one) does not apply.
  const status = {
    ...(typeof parsed?.reason === "string" && parsed.reason !== "" ? { reason: parsed.reason as string } : {}),
    ...(typeof parsed?.message === "string" ? { message: parsed.message as string } : {}),
  };
  const causes = Array.isArray(parsed?.details?.causes) ? (parsed.details.causes as Array<Record<string, unknown>>) : [];
  const cause = causes.find((c) => c?.reason === "ExitCode");
  const code = cause !== undefined ? Number(cause.message) : NaN;
  return { exitCode: Number.isInteger(code) ? code : null, ...status };
}

export class RemoteCommandObserver {
  private readonly fromClient = new WebSocketReader(true);
  private readonly fromServer = new WebSocketReader(false);

  /** Bytes the client sent (after the 101): its stdin, resizes, stdin's close. Throws WebSocketFrameError on a broken frame. */
  client(chunk: Buffer): RemoteCommandEvent[] {
    const out: RemoteCommandEvent[] = [];
    for (const message of this.fromClient.push(chunk)) {
      if (message.opcode !== WS_OPCODE.binary || message.data.length === 0) continue;
      const channel = message.data[0]!;
      const data = message.data.subarray(1);
      if (channel === CHANNEL.stdin) {
        if (data.length > 0) out.push({ type: "stdin", data });
      } else if (channel === CHANNEL.resize) {
        const size = parseResize(data);
        if (size) out.push({ type: "resize", ...size });
      } else if (channel === CHANNEL.close && data[0] === CHANNEL.stdin) {
        out.push({ type: "stdin_closed" });
      }
    }
    return out;
  }

  /** Bytes the API server sent: stdout, stderr, the exit status. */
  server(chunk: Buffer): RemoteCommandEvent[] {
    const out: RemoteCommandEvent[] = [];
    for (const message of this.fromServer.push(chunk)) {
      if (message.opcode !== WS_OPCODE.binary || message.data.length === 0) continue;
      const channel = message.data[0]!;
      const data = message.data.subarray(1);
      if (channel === CHANNEL.stdout) {
        if (data.length > 0) out.push({ type: "stdout", data });
      } else if (channel === CHANNEL.stderr) {
        if (data.length > 0) out.push({ type: "stderr", data });
      } else if (channel === CHANNEL.error) {
        out.push({ type: "status", ...exitCodeOf(data) });
      }
    }
    return out;
  }
}

function parseResize(data: Buffer): { cols: number; rows: number } | undefined {
  try {
    const size = JSON.parse(data.toString("utf8")) as { Width?: unknown; Height?: unknown };
    const cols = Number(size.Width);
    const rows = Number(size.Height);
    return Number.isInteger(cols) && Number.isInteger(rows) && cols >= 0 && rows >= 0 ? { cols, rows } : undefined;
  } catch {
    return undefined;
  }
}

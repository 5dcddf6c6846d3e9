import type { Socket } from "node:net";
import { ConnectorError } from "../../errors.js";

/** RFC 4253 §4.2: the identification line is at most 255 bytes; lines before it are allowed too. */
const MAX_PREAMBLE_BYTES = 8 * 1024;

/**
 * Waits for the server's SSH identification string ("SSH-2.0-OpenSSH_9.2p1 Debian-2") and returns
 * it, leaving every byte read on the socket (unshifted, paused) for ssh2 to read again. Why read
 * it here: ssh2 keeps the full string to itself, and the gateway reports it to the client as the
 * resource's version; reading it first also tells "not an SSH server" apart from a slow one.
 */
export function readServerIdent(socket: Socket, deadline: AbortSignal, where: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let length = 0;
    const settle = (result: string | ConnectorError): void => {
      socket.off("data", onData);
      socket.off("end", onEnd);
      socket.off("error", onError);
      deadline.removeEventListener("abort", onAbort);
      socket.pause();
      if (typeof result === "string") {
        // ssh2 reads the identification again (the socket is handed over paused, these bytes first).
        if (chunks.length > 0) socket.unshift(Buffer.concat(chunks));
        resolve(result);
      } else reject(result);
    };
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      length += chunk.length;
      const text = Buffer.concat(chunks).toString("latin1");
      for (const line of text.split("\n").slice(0, -1)) {
        const clean = line.replace(/\r$/, "");
        if (clean.startsWith("SSH-")) {
          if (!clean.startsWith("SSH-2.0-") && !clean.startsWith("SSH-1.99-")) {
            settle(new ConnectorError("PROTOCOL_ERROR", `${where} speaks an SSH version the connector does not: ${printable(clean)}`));
          } else settle(clean);
          return;
        }
      }
      if (length > MAX_PREAMBLE_BYTES) {
        settle(new ConnectorError("PROTOCOL_ERROR", `${where} is not an SSH server: it sent ${printable(text.slice(0, 80))}`));
      }
    };
    const onEnd = (): void => {
      const said = Buffer.concat(chunks).toString("latin1");
      settle(new ConnectorError("PROTOCOL_ERROR", `${where} closed the connection before identifying as an SSH server${said ? `: it sent ${printable(said.slice(0, 80))}` : ""}`));
    };
    const onError = (err: Error): void =>
      settle(new ConnectorError("TARGET_UNREACHABLE", `connection to ${where} failed: ${err.message}`, { cause: err }));
    const onAbort = (): void =>
      settle(
        deadline.reason instanceof DOMException && deadline.reason.name === "TimeoutError"
          ? new ConnectorError("TARGET_UNREACHABLE", `${where} sent no SSH identification in time`)
          : new ConnectorError("TARGET_UNREACHABLE", `dial to ${where} cancelled`, { cause: deadline.reason }),
      );
    if (deadline.aborted) {
      onAbort();
      return;
    }
    socket.on("data", onData);
    socket.once("end", onEnd);
    socket.once("error", onError);
    deadline.addEventListener("abort", onAbort, { once: true });
  });
}

/** A peer's bytes as a quoted, single-line, ASCII-only string for a message. */
function printable(text: string): string {
  return JSON.stringify(text.replace(/[^\x20-\x7e]/g, "?"));
}

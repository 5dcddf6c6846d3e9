import { Duplex } from "node:stream";
import type { Client } from "ssh2";
import { ConnectorError } from "../../errors.js";

/**
 * The main stream's socket: carries no bytes, it stands for the SSH connection to the resource. It
 * ends when the connection ends (an error, such as a keepalive timeout, destroys it with the reason,
 * which the relay carries to the gateway), and the gateway ending or resetting the main stream
 * ends the connection, so neither side keeps an SSH connection its session no longer has.
 */
export function sshLifeline(client: Client, where: string): Duplex {
  let failure: Error | null = null;
  const lifeline = new Duplex({
    allowHalfOpen: true,
    read() {},
    write(_chunk, _encoding, callback) {
      callback(new ConnectorError("PROTOCOL_ERROR", "the ssh main stream carries no bytes; channels have streams of their own"));
    },
    final(callback) {
      client.end();
      callback();
    },
    destroy(error, callback) {
      client.end();
      callback(error);
    },
  });
  client.on("error", (err: Error) => {
    failure ??= new ConnectorError("TARGET_UNREACHABLE", `ssh connection to ${where} failed: ${err.message}`, { cause: err });
  });
  client.once("close", () => {
    if (failure !== null) lifeline.destroy(failure);
    else lifeline.push(null);
  });
  return lifeline;
}

import type { Duplex } from "node:stream";
import { MysqlProtocolError, PacketReader, encodeErrPacket, encodeOkPacket, encodePacket, isMysqlProtocolError, type MysqlObservedCommand, type ServerErrorFields } from "@gatehouse/protocols/mysql";
import type { RecordedSession } from "../../sessions/recorder.js";
import { commandDraft } from "./command-events.js";

/** `KILL [HARD|SOFT] [QUERY|CONNECTION] <id>` as the mariadb and mysql clients send it. */
export const KILL_STATEMENT = /^\s*KILL\s+(?:(?:HARD|SOFT)\s+)?(?:(QUERY|CONNECTION)\s+)?(\d{1,10})\s*;?\s*$/i;

const COM_QUIT = 0x01;
const COM_QUERY = 0x03;
const COM_PROCESS_KILL = 0x0c;
const COM_PING = 0x0e;

export interface GatewayOnlyOptions {
  /** The record of this connection-less session. */
  session: RecordedSession;
  /** The client's capabilities (OK packets depend on them). */
  capabilities: number;
  /** The ERR for anything but KILL, PING and QUIT. */
  noConnection: ServerErrorFields;
  /** Answers a KILL (the listener's own, as from a relayed session) and records it. */
  kill: (command: MysqlObservedCommand, sequenceId: number) => Promise<Uint8Array>;
  /** The ERR a client gets for a packet that breaks the protocol, before it is closed. */
  violation: (error: Error) => Uint8Array | undefined;
  /** Called with the stopper: a gateway shutting down ends the session. */
  onEnder: (end: () => void) => void;
}

/**
 * A client that authenticated but named no connection, as the mariadb client's second
 * connection does when Ctrl-C sends `KILL QUERY <id>` (it logs in with the user only, never the
 * database). There is no resource behind it: the gateway answers by itself KILL (COM_QUERY or
 * COM_PROCESS_KILL), COM_PING and COM_QUIT; anything else gets `noConnection` (1046), so a
 * client that forgot `-D` learns what to do on its first statement. Resolves when the client is gone.
 */
export async function serveGatewayOnly(client: Duplex, early: Uint8Array[], options: GatewayOnlyOptions): Promise<{ bytesUp: number; bytesDown: number; clientQuit: boolean; error?: Error; violation?: "up" }> {
  const { session, capabilities } = options;
  const reader = new PacketReader();
  let bytesUp = 0;
  let bytesDown = 0;
  let nextId = 1;
  const send = (bytes: Uint8Array) => {
    bytesDown += bytes.byteLength;
    if (!client.destroyed && !client.writableEnded) client.write(bytes);
  };
  const end = () => {
    if (!client.destroyed && !client.writableEnded) client.end();
  };
  options.onEnder(end);

  /** One command packet: its answer, or undefined to close (COM_QUIT). */
  const answer = async (payload: Uint8Array, sequenceId: number): Promise<Uint8Array | undefined> => {
    const startedAt = session.now();
    const reply = sequenceId + 1;
    const code = payload[0];
    if (code === COM_QUIT) {
      await session.record({ kind: "quit", command: "COM_QUIT", outcome: "ok", timeUs: startedAt, details: { command: "COM_QUIT" } }).catch(() => undefined);
      return undefined;
    }
    if (code === COM_PING) {
      await session.record({ kind: "ping", command: "COM_PING", outcome: "ok", timeUs: startedAt, details: { command: "COM_PING" } }).catch(() => undefined);
      return encodePacket(reply, encodeOkPacket({ statusFlags: 0x2, info: "" }, capabilities));
    }
    let command: MysqlObservedCommand | undefined;
    if (code === COM_PROCESS_KILL && payload.byteLength >= 5) {
      const connectionId = (payload[1]! | (payload[2]! << 8) | (payload[3]! << 16) | (payload[4]! << 24)) >>> 0;
      command = { id: nextId++, kind: "kill", command: "COM_PROCESS_KILL", text: "", textTruncated: false, startedAt, connectionId };
    } else if (code === COM_QUERY) {
      const text = Buffer.from(payload.subarray(1)).toString("utf8");
      if (KILL_STATEMENT.test(text)) command = { id: nextId++, kind: "kill", command: "COM_QUERY", text, textTruncated: false, startedAt };
      else {
        await session
          .record({ kind: "query", command: text.slice(0, 4096), outcome: "error", timeUs: startedAt, details: { command: "COM_QUERY", errno: options.noConnection.errno, sqlstate: options.noConnection.sqlState, message: options.noConnection.message } })
          .catch(() => undefined);
      }
    } else {
      await session
        .record({ kind: "other", command: `0x${(code ?? 0).toString(16).padStart(2, "0")}`, outcome: "error", timeUs: startedAt, details: { errno: options.noConnection.errno, sqlstate: options.noConnection.sqlState, message: options.noConnection.message } })
        .catch(() => undefined);
    }
    if (!command) return encodePacket(reply, encodeErrPacket(options.noConnection));
    // Write-ahead as any relayed command: in strict mode a KILL that cannot be recorded is not run.
    session.commandStarted(command, commandDraft(command));
    await session.writeAhead();
    return options.kill(command, reply);
  };

  const chunks: AsyncIterable<Uint8Array> = (async function* () {
    yield* early;
    // Not destroyed when the loop stops: an ERR may still be on its way out (client.end(reply)).
    yield* (client as Duplex & { iterator(options: { destroyOnReturn: boolean }): AsyncIterable<Uint8Array> }).iterator({ destroyOnReturn: false });
  })();
  try {
    for await (const chunk of chunks) {
      bytesUp += chunk.byteLength;
      reader.push(chunk);
      for (let packet = reader.read(); packet; packet = reader.read()) {
        if (packet.sequenceId !== 0) {
          throw new MysqlProtocolError("PACKETS_OUT_OF_ORDER", `a command packet has sequence id ${packet.sequenceId}, expected 0`, { context: { sequenceId: packet.sequenceId, expected: 0 } });
        }
        const reply = await answer(packet.payload, packet.lastSequenceId);
        if (!reply) {
          end();
          return { bytesUp, bytesDown, clientQuit: true };
        }
        send(reply);
      }
    }
    return { bytesUp, bytesDown, clientQuit: false };
  } catch (error) {
    if (isMysqlProtocolError(error)) {
      const reply = options.violation(error);
      if (reply && !client.destroyed && !client.writableEnded) client.end(reply);
      else client.destroy();
      return { bytesUp, bytesDown, clientQuit: false, error, violation: "up" };
    }
    client.destroy();
    return { bytesUp, bytesDown, clientQuit: false, error: error as Error };
  } finally {
    // A client that does not close after the gateway's last word is cut off.
    setTimeout(() => client.destroy(), 2_000).unref();
  }
}

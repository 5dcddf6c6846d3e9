import { connect, type Socket } from "node:net";
import { ConnectorError } from "../../errors.js";
import type { DialContext, DialResult, Dialer } from "../types.js";

/** TCP keepalive probe delay for relayed connections: long-idle database sessions survive NAT and firewalls. */
const KEEPALIVE_INITIAL_DELAY_MS = 30_000;

/** `host:port` with an IPv6 host in brackets, for messages. */
export function formatTarget(host: string, port: number): string {
  return host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * Opens a TCP connection to the target and hands the socket over as is: no handshake, no credential. Refusals,
 * DNS failures and timeouts become TARGET_UNREACHABLE with the OS reason.
 */
export const dialTcp: Dialer = async (open, ctx) => {
  const host = open.target?.host ?? "";
  const port = open.target?.port ?? 0;
  const socket = await connectTcp(host, port, ctx);
  return { socket } satisfies DialResult;
};

/** net.connect with a connect timeout and cancellation; exported for dialers that speak a protocol over TCP. */
export function connectTcp(host: string, port: number, ctx: Pick<DialContext, "signal" | "timeoutMs">): Promise<Socket> {
  const where = formatTarget(host, port);
  return new Promise<Socket>((resolve, reject) => {
    if (ctx.signal.aborted) {
      reject(new ConnectorError("TARGET_UNREACHABLE", `dial to ${where} cancelled`, { cause: ctx.signal.reason }));
      return;
    }
    const socket = connect({
      host,
      port,
      // The relay half-closes: the target's FIN must not end our side of the connection by itself.
      allowHalfOpen: true,
      noDelay: true,
      keepAlive: true,
      keepAliveInitialDelay: KEEPALIVE_INITIAL_DELAY_MS,
    });
    const settle = (err: ConnectorError | null): void => {
      clearTimeout(timer);
      ctx.signal.removeEventListener("abort", onAbort);
      socket.off("connect", onConnect);
      socket.off("error", onError);
      if (err === null) {
        resolve(socket);
      } else {
        socket.destroy();
        reject(err);
      }
    };
    const onConnect = (): void => settle(null);
    const onError = (err: NodeJS.ErrnoException): void =>
      // err.message is the OS's own account, e.g. "connect ECONNREFUSED 10.0.0.5:5432" or "getaddrinfo ENOTFOUND db".
      settle(new ConnectorError("TARGET_UNREACHABLE", `cannot reach ${where}: ${err.message}`, { cause: err }));
    const onAbort = (): void =>
      settle(new ConnectorError("TARGET_UNREACHABLE", `dial to ${where} cancelled`, { cause: ctx.signal.reason }));
    const timer = setTimeout(
      () => settle(new ConnectorError("TARGET_UNREACHABLE", `cannot reach ${where}: no answer within ${ctx.timeoutMs} ms`)),
      ctx.timeoutMs,
    );
    socket.once("connect", onConnect);
    socket.once("error", onError);
    ctx.signal.addEventListener("abort", onAbort, { once: true });
  });
}

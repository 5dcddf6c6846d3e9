import { connect } from "node:net";

/**
 * The errors of a dial that never reached the gateway's TCP port (it is down, restarting, or
 * the network is): for these the connector watches the port instead of waiting out its backoff.
 */
const UNREACHABLE_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "EHOSTUNREACH", "ENETUNREACH", "ETIMEDOUT", "EPIPE"]);

export function isGatewayUnreachable(error: Error | null): boolean {
  const code = (error as NodeJS.ErrnoException | null)?.code;
  return code !== undefined && UNREACHABLE_CODES.has(code);
}

/** The host and TCP port a ws(s):// URL dials. */
export function gatewayAddress(url: URL): { host: string; port: number } {
  const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
  const port = url.port === "" ? (url.protocol === "wss:" ? 443 : 80) : Number(url.port);
  return { host, port };
}

export interface ProbeOptions {
  /** Mean ms between probes; each wait is drawn from [intervalMs / 2, intervalMs * 3 / 2) so a fleet does not probe in step. */
  intervalMs: number;
  /** How long one probe may take to connect, in ms. */
  timeoutMs: number;
  random: () => number;
  signal: AbortSignal;
}

/**
 * Resolves true as soon as a plain TCP connection to `address` succeeds (it is closed at once:
 * no TLS, no HTTP, nothing for the gateway to authenticate), false when `signal` aborts first.
 * A connector whose backoff has grown to tens of seconds during an outage uses it to come back
 * within about a second of the gateway, instead of up to a full backoff later.
 */
export async function whenGatewayAnswers(address: { host: string; port: number }, options: ProbeOptions): Promise<boolean> {
  const { signal } = options;
  while (!signal.aborted) {
    const wait = options.intervalMs * (0.5 + options.random());
    if (!(await sleep(wait, signal))) return false;
    if (await answers(address, options.timeoutMs, signal)) return !signal.aborted;
  }
  return false;
}

function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve(false);
    const done = (slept: boolean) => {
      clearTimeout(timer);
      signal.removeEventListener("abort", abort);
      resolve(slept);
    };
    const abort = () => done(false);
    const timer = setTimeout(() => done(true), ms);
    signal.addEventListener("abort", abort, { once: true });
  });
}

function answers(address: { host: string; port: number }, timeoutMs: number, signal: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: address.host, port: address.port });
    const done = (ok: boolean) => {
      clearTimeout(timer);
      signal.removeEventListener("abort", abort);
      socket.destroy();
      resolve(ok);
    };
    const abort = () => done(false);
    const timer = setTimeout(() => done(false), timeoutMs);
    signal.addEventListener("abort", abort, { once: true });
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

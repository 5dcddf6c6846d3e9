import { isIP } from "node:net";

/** A listen or target address. `host` is a name or an IP literal (IPv6 without brackets). */
export interface HostPort {
  host: string;
  port: number;
}

/**
 * Parses "host:port", "[v6]:port" or ":port" (all interfaces). Returns a
 * message instead of throwing so the config schema can attach the key's path.
 */
export function parseHostPort(text: string): HostPort | string {
  const match = /^(?:\[([^\]]+)\]|([^:\s]*)):(\d{1,5})$/.exec(text.trim());
  if (!match) return `expected "host:port", got "${text}"`;
  const host = match[1] ?? (match[2] || "0.0.0.0");
  if (match[1] !== undefined && isIP(match[1]) !== 6) return `"${match[1]}" is not an IPv6 address`;
  const port = Number(match[3]);
  if (port > 65535) return `port ${port} is out of range (0-65535)`;
  return { host, port };
}

export function formatHostPort({ host, port }: HostPort): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

const LOOPBACK_V4 = /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/;

/** True for addresses that never leave this machine. */
export function isLoopback(address: string): boolean {
  const plain = address.startsWith("::ffff:") ? address.slice(7) : address;
  return plain === "localhost" || plain === "::1" || LOOPBACK_V4.test(plain);
}

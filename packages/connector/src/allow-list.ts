import { ConnectorError } from "./errors.js";

/**
 * The connector's own list of targets it may dial. The gateway names the target of every stream, but the
 * gateway's word is not enough: a target that matches no entry here is refused with TARGET_NOT_ALLOWED.
 *
 * Entry syntax: `host:port`
 *   host  `*`                     any host
 *         `10.0.0.0/8`, `[fd00::/8]`  any IP literal inside the CIDR (IPv6 in brackets)
 *         `10.1.2.3`, `[::1]`     exactly that IP literal
 *         `db.internal`           exactly that name (case-insensitive, a trailing dot ignored)
 *   port  `5432`, `5432-5439` (inclusive), or `*` (1-65535)
 *
 * Matching is purely textual, DNS is never consulted:
 * - IP and CIDR entries match targets given as IP literals only. A target given as a name never matches them,
 *   even when the name resolves inside the CIDR: listing `10.0.0.0/8` does not let the gateway reach arbitrary
 *   names.
 * - A name entry matches that name only, whatever it resolves to when the connector dials. It trusts the DNS
 *   the connector uses for that name; to pin the addresses instead, list IPs or CIDRs and have the gateway
 *   send IP targets.
 * - An IP literal is recognised in its strict form only (dotted quad without leading zeros, RFC 4291 IPv6 text
 *   without a zone). Forms such as `010.0.0.1`, `10.1` or `0x0a000001` that the resolver would turn into some
 *   other address are treated as names, and a name entry may not look like a number, so they match nothing.
 * - IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`) match as the IPv4 address they carry.
 */
export interface AllowRule {
  /** The entry as written, for logs. */
  readonly source: string;
  readonly host: HostPattern;
  /** Inclusive port range. */
  readonly ports: { readonly from: number; readonly to: number };
}

export type HostPattern =
  | { readonly kind: "any" }
  | { readonly kind: "name"; readonly name: string }
  /** An exact IP is a CIDR with the full prefix. `bytes` has 4 (IPv4) or 16 (IPv6) entries. */
  | { readonly kind: "cidr"; readonly bytes: Uint8Array; readonly prefix: number };

export interface Target {
  readonly host: string;
  readonly port: number;
}

export class AllowList {
  constructor(readonly rules: readonly AllowRule[]) {}

  /** Parses entries (`host:port` each); throws a CONFIG_INVALID ConnectorError naming the bad entry. */
  static parse(entries: readonly string[]): AllowList {
    return new AllowList(entries.map(parseAllowEntry));
  }

  /** The first rule the target matches, or null when it matches none. */
  match(target: Target): AllowRule | null {
    if (!Number.isInteger(target.port) || target.port < 1 || target.port > 65_535) return null;
    const ip = parseIp(target.host);
    const name = ip === null ? normalizeName(target.host) : null;
    for (const rule of this.rules) {
      if (target.port < rule.ports.from || target.port > rule.ports.to) continue;
      if (hostMatches(rule.host, ip, name)) return rule;
    }
    return null;
  }

  allows(target: Target): boolean {
    return this.match(target) !== null;
  }
}

function hostMatches(pattern: HostPattern, ip: Uint8Array | null, name: string | null): boolean {
  switch (pattern.kind) {
    case "any":
      return true;
    case "name":
      return name !== null && name === pattern.name;
    case "cidr":
      return ip !== null && inCidr(ip, pattern.bytes, pattern.prefix);
  }
}

function inCidr(ip: Uint8Array, net: Uint8Array, prefix: number): boolean {
  if (ip.length !== net.length) return false;
  const whole = prefix >> 3;
  for (let i = 0; i < whole; i++) if (ip[i] !== net[i]) return false;
  const rest = prefix & 7;
  if (rest === 0) return true;
  const mask = (0xff << (8 - rest)) & 0xff;
  return ((ip[whole] ?? 0) & mask) === ((net[whole] ?? 0) & mask);
}

/** Parses one `host:port` entry. */
export function parseAllowEntry(entry: string): AllowRule {
  const source = entry.trim();
  const fail = (why: string): never => {
    throw new ConnectorError("CONFIG_INVALID", `allow entry "${source}": ${why}`);
  };
  if (source === "") fail("empty entry");

  let hostText: string;
  let portText: string;
  let bracketed = false;
  if (source.startsWith("[")) {
    const close = source.indexOf("]");
    if (close < 0) fail("missing ']' after an IPv6 host");
    hostText = source.slice(1, close);
    if (source[close + 1] !== ":") fail("expected ':port' after ']'");
    portText = source.slice(close + 2);
    bracketed = true;
  } else {
    const colon = source.lastIndexOf(":");
    if (colon < 0) fail("expected host:port (use '*' for any port)");
    hostText = source.slice(0, colon);
    portText = source.slice(colon + 1);
    if (hostText.includes(":")) fail("put an IPv6 host in brackets, e.g. [fd00::/8]:5432");
  }

  return { source, host: parseHostPattern(hostText, bracketed, fail), ports: parsePortPattern(portText, fail) };
}

function parseHostPattern(text: string, bracketed: boolean, fail: (why: string) => never): HostPattern {
  if (text === "*") {
    if (bracketed) fail("'*' needs no brackets");
    return { kind: "any" };
  }
  const slash = text.indexOf("/");
  if (slash >= 0) {
    const addressText = text.slice(0, slash);
    const prefixText = text.slice(slash + 1);
    const bytes = parseIp(addressText);
    if (bytes === null) return fail(`"${addressText}" is not an IP address`);
    const written6 = addressText.includes(":");
    if (written6 && !bracketed) fail("put an IPv6 CIDR in brackets");
    const max = written6 ? 128 : 32;
    if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > max) fail(`prefix must be 0-${max}`);
    let prefix = Number(prefixText);
    if (written6 && bytes.length === 4) {
      // An IPv4-mapped network (::ffff:a.b.c.d/n) is matched as the IPv4 network it carries.
      if (prefix < 96) fail("an IPv4-mapped prefix must be at least /96");
      prefix -= 96;
    }
    if (hasHostBits(bytes, prefix)) {
      fail(`address has bits set past the /${prefixText} prefix (did you mean the network address?)`);
    }
    return { kind: "cidr", bytes, prefix };
  }
  const ip = parseIp(text);
  if (ip !== null) return { kind: "cidr", bytes: ip, prefix: ip.length * 8 };
  if (bracketed) fail(`"${text}" is not an IPv6 address`);
  const name = normalizeName(text);
  if (!isHostname(name)) fail(`"${text}" is not a host name, IP address, CIDR or '*'`);
  if (looksNumeric(name)) fail(`"${text}" looks like an IP address but is not one in standard form`);
  return { kind: "name", name };
}

function hasHostBits(bytes: Uint8Array, prefix: number): boolean {
  for (let bit = prefix; bit < bytes.length * 8; bit++) {
    if (((bytes[bit >> 3] ?? 0) >> (7 - (bit & 7))) & 1) return true;
  }
  return false;
}

function parsePortPattern(text: string, fail: (why: string) => never): { from: number; to: number } {
  if (text === "*") return { from: 1, to: 65_535 };
  const range = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(text);
  if (range === null) return fail(`port "${text}" must be a number, a range a-b, or '*'`);
  const from = Number(range[1]);
  const to = range[2] === undefined ? from : Number(range[2]);
  if (from < 1 || to > 65_535) fail("ports are 1-65535");
  if (from > to) fail(`port range ${from}-${to} is backwards`);
  return { from, to };
}

function normalizeName(host: string): string {
  const lower = host.toLowerCase();
  return lower.endsWith(".") ? lower.slice(0, -1) : lower;
}

function isHostname(name: string): boolean {
  if (name.length === 0 || name.length > 253) return false;
  // Underscores appear in real internal names (SRV-style, some cloud DNS), so they are accepted.
  return name.split(".").every((label) => /^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$/.test(label));
}

/** A name whose last label is numeric is one the WHATWG URL parser and many resolvers read as an IPv4 address. */
function looksNumeric(name: string): boolean {
  const last = name.slice(name.lastIndexOf(".") + 1);
  return /^(?:\d+|0x[0-9a-f]*)$/.test(last);
}

/**
 * Parses a strict IP literal into 4 or 16 bytes; IPv4-mapped IPv6 comes back as its 4 IPv4 bytes.
 * Returns null for anything else (names, zone ids, shorthand IPv4 forms).
 */
export function parseIp(text: string): Uint8Array | null {
  const v4 = parseIpv4(text);
  if (v4 !== null) return v4;
  const v6 = parseIpv6(text);
  if (v6 === null) return null;
  const mapped = v6.subarray(0, 10).every((b) => b === 0) && v6[10] === 0xff && v6[11] === 0xff;
  return mapped ? v6.slice(12) : v6;
}

function parseIpv4(text: string): Uint8Array | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  const bytes = new Uint8Array(4);
  for (const [i, part] of parts.entries()) {
    // No leading zeros: "010" is octal 8 to inet_aton, so accepting it would check one address and dial another.
    if (!/^(?:0|[1-9]\d{0,2})$/.test(part)) return null;
    const n = Number(part);
    if (n > 255) return null;
    bytes[i] = n;
  }
  return bytes;
}

function parseIpv6(text: string): Uint8Array | null {
  if (!/^[0-9a-fA-F:.]+$/.test(text)) return null;
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const groupsOf = (part: string): number[] | null => {
    if (part === "") return [];
    const out: number[] = [];
    const pieces = part.split(":");
    for (const [i, piece] of pieces.entries()) {
      if (i === pieces.length - 1 && piece.includes(".")) {
        const v4 = parseIpv4(piece);
        if (v4 === null) return null;
        out.push(((v4[0] ?? 0) << 8) | (v4[1] ?? 0), ((v4[2] ?? 0) << 8) | (v4[3] ?? 0));
        continue;
      }
      if (!/^[0-9a-fA-F]{1,4}$/.test(piece)) return null;
      out.push(parseInt(piece, 16));
    }
    return out;
  };
  const head = groupsOf(halves[0] ?? "");
  const tail = halves.length === 2 ? groupsOf(halves[1] ?? "") : [];
  if (head === null || tail === null) return null;
  // An embedded IPv4 may only end the address.
  if (halves.length === 2 && (halves[0] ?? "").includes(".")) return null;
  const total = head.length + tail.length;
  if (halves.length === 1 ? total !== 8 : total > 7) return null;
  const groups = [...head, ...new Array<number>(8 - total).fill(0), ...tail];
  const bytes = new Uint8Array(16);
  for (const [i, g] of groups.entries()) {
    bytes[i * 2] = g >> 8;
    bytes[i * 2 + 1] = g & 0xff;
  }
  return bytes;
}

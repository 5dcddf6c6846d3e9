import { BlockList, isIP, SocketAddress } from "node:net";
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
 *
 * IP literals are recognised by `node:net`'s `isIP` (which already refuses the shorthand IPv4 forms) minus zone
 * ids, and each IP or CIDR entry is a `node:net` `BlockList` holding that one subnet, so the bit matching (and
 * the IPv4-mapped equivalence) is Node's.
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
  /**
   * An exact IP is a CIDR with the full prefix. An IPv4-mapped network (`::ffff:10.0.0.0/104`) is kept as the
   * IPv4 network it carries (`10.0.0.0/8`). `subnet` holds just this network, for matching.
   */
  | {
      readonly kind: "cidr";
      readonly address: string;
      readonly family: IpFamily;
      readonly prefix: number;
      readonly subnet: BlockList;
    };

export type IpFamily = "ipv4" | "ipv6";

/** An IP literal in Node's canonical text; IPv4-mapped IPv6 is given as the IPv4 address it carries. */
export interface IpAddress {
  readonly address: string;
  readonly family: IpFamily;
}

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

function hostMatches(pattern: HostPattern, ip: IpAddress | null, name: string | null): boolean {
  switch (pattern.kind) {
    case "any":
      return true;
    case "name":
      return name !== null && name === pattern.name;
    case "cidr":
      // Families first: BlockList would let an IPv6 network such as ::/0 match every IPv4 address (as mapped),
      // while an IPv6 entry here means IPv6 targets only.
      return ip !== null && ip.family === pattern.family && pattern.subnet.check(ip.address, ip.family);
  }
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
    const ip = parseIp(addressText);
    if (ip === null) return fail(`"${addressText}" is not an IP address`);
    const written6 = addressText.includes(":");
    if (written6 && !bracketed) fail("put an IPv6 CIDR in brackets");
    const max = written6 ? 128 : 32;
    if (!/^\d{1,3}$/.test(prefixText) || Number(prefixText) > max) fail(`prefix must be 0-${max}`);
    let prefix = Number(prefixText);
    if (written6 && ip.family === "ipv4") {
      // An IPv4-mapped network (::ffff:a.b.c.d/n) is matched as the IPv4 network it carries.
      if (prefix < 96) fail("an IPv4-mapped prefix must be at least /96");
      prefix -= 96;
    }
    if (hasHostBits(ip, prefix)) {
      fail(`address has bits set past the /${prefixText} prefix (did you mean the network address?)`);
    }
    return cidr(ip, prefix);
  }
  const ip = parseIp(text);
  if (ip !== null) return cidr(ip, ip.family === "ipv4" ? 32 : 128);
  if (bracketed) fail(`"${text}" is not an IPv6 address`);
  const name = normalizeName(text);
  if (!isHostname(name)) fail(`"${text}" is not a host name, IP address, CIDR or '*'`);
  if (looksNumeric(name)) fail(`"${text}" looks like an IP address but is not one in standard form`);
  return { kind: "name", name };
}

function cidr(ip: IpAddress, prefix: number): HostPattern {
  const subnet = new BlockList();
  subnet.addSubnet(ip.address, prefix, ip.family);
  return { kind: "cidr", address: ip.address, family: ip.family, prefix, subnet };
}

/**
 * Whether bits past the prefix are set (`10.0.0.1/8`). BlockList would quietly mask them; an entry written so
 * is more likely a typo than a wish for the whole network.
 */
function hasHostBits(ip: IpAddress, prefix: number): boolean {
  const width = ip.family === "ipv4" ? 32 : 128;
  const hostMask = (1n << BigInt(width - prefix)) - 1n;
  return (addressBits(ip) & hostMask) !== 0n;
}

/** The address as a 32- or 128-bit number. */
function addressBits(ip: IpAddress): bigint {
  if (ip.family === "ipv4") return ip.address.split(".").reduce((bits, part) => (bits << 8n) | BigInt(part), 0n);
  // The WHATWG URL serialiser writes IPv6 as hex groups only (an embedded IPv4 tail becomes two groups).
  const hex = new URL(`http://[${ip.address}]/`).hostname.slice(1, -1);
  const [head = "", tail] = hex.split("::");
  const groupsOf = (part: string) => (part === "" ? [] : part.split(":"));
  const before = groupsOf(head);
  const after = tail === undefined ? [] : groupsOf(tail);
  const groups = [...before, ...new Array<string>(8 - before.length - after.length).fill("0"), ...after];
  return groups.reduce((bits, group) => (bits << 16n) | BigInt(parseInt(group, 16)), 0n);
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
 * Reads a strict IP literal (`node:net` `isIP`: dotted quad without leading zeros, RFC 4291 IPv6 text) in Node's
 * canonical text; IPv4-mapped IPv6 comes back as the IPv4 address it carries. Returns null for anything else:
 * names, shorthand IPv4 forms (`10.1`, `010.0.0.1`) and zone ids (`fe80::1%eth0`, which isIP accepts but which
 * names an interface, not an address).
 */
export function parseIp(text: string): IpAddress | null {
  const version = text.includes("%") ? 0 : isIP(text);
  if (version === 4) return { address: text, family: "ipv4" };
  if (version !== 6) return null;
  const { address } = new SocketAddress({ address: text, family: "ipv6" });
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(address);
  return mapped === null ? { address, family: "ipv6" } : { address: mapped[1]!, family: "ipv4" };
}

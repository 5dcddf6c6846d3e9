import { describe, expect, it } from "vitest";
import { AllowList, parseAllowEntry, parseIp } from "./allow-list.js";
import { ConnectorError } from "./errors.js";

const allows = (entries: string[], host: string, port: number) => AllowList.parse(entries).allows({ host, port });

describe("parseIp", () => {
  it("reads strict IPv4 and IPv6 literals in canonical form", () => {
    expect(parseIp("10.1.2.3")).toEqual({ address: "10.1.2.3", family: "ipv4" });
    expect(parseIp("::1")).toEqual({ address: "::1", family: "ipv6" });
    expect(parseIp("0:0:0:0:0:0:0:1")).toEqual({ address: "::1", family: "ipv6" });
    expect(parseIp("FD00::")).toEqual({ address: "fd00::", family: "ipv6" });
    expect(parseIp("1:2:3:4:5:6:7:8")?.address).toBe("1:2:3:4:5:6:7:8");
    expect(parseIp("64:ff9b::192.0.2.1")).toEqual({ address: "64:ff9b::c000:201", family: "ipv6" });
  });

  it("returns IPv4-mapped IPv6 as IPv4", () => {
    expect(parseIp("::ffff:10.0.0.1")).toEqual({ address: "10.0.0.1", family: "ipv4" });
    expect(parseIp("::FFFF:a00:1")).toEqual({ address: "10.0.0.1", family: "ipv4" });
    expect(parseIp("0:0:0:0:0:ffff:10.0.0.1")).toEqual({ address: "10.0.0.1", family: "ipv4" });
  });

  it("rejects forms a resolver would read as some other address", () => {
    for (const text of ["010.0.0.1", "10.1", "0x0a.0.0.1", "167772161", "256.0.0.1", "10.0.0.1.", "1::2::3",
      "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "fe80::1%eth0", "::1.2.3.4:5", "1.2.3.4::", "db.internal", ""]) {
      expect(parseIp(text), text).toBeNull();
    }
  });
});

describe("parseAllowEntry", () => {
  it("parses each host and port form", () => {
    expect(parseAllowEntry("*:*")).toMatchObject({ host: { kind: "any" }, ports: { from: 1, to: 65535 } });
    expect(parseAllowEntry("DB.Internal.:5432")).toMatchObject({ host: { kind: "name", name: "db.internal" }, ports: { from: 5432, to: 5432 } });
    expect(parseAllowEntry("10.0.0.0/8:5432-5439")).toMatchObject({ host: { kind: "cidr", prefix: 8 }, ports: { from: 5432, to: 5439 } });
    expect(parseAllowEntry("10.1.2.3:22")).toMatchObject({ host: { kind: "cidr", prefix: 32 } });
    expect(parseAllowEntry("[::1]:22")).toMatchObject({ host: { kind: "cidr", prefix: 128 } });
    expect(parseAllowEntry("[fd00::/8]:*")).toMatchObject({ host: { kind: "cidr", prefix: 8 } });
    expect(parseAllowEntry("[::ffff:10.0.0.0/104]:1")).toMatchObject({ host: { kind: "cidr", address: "10.0.0.0", family: "ipv4", prefix: 8 } });
    expect(parseAllowEntry("[2001:DB8::/33]:1")).toMatchObject({ host: { kind: "cidr", address: "2001:db8::", family: "ipv6", prefix: 33 } });
    expect(parseAllowEntry(" pg_1.svc:1 ").source).toBe("pg_1.svc:1");
  });

  it.each([
    ["db.internal", /host:port/],
    ["db.internal:", /port "" must be/],
    ["db.internal:0", /1-65535/],
    ["db.internal:70000", /1-65535/],
    ["db.internal:20-10", /backwards/],
    ["db.internal:5432,5433", /must be a number/],
    ["::1:5432", /brackets/],
    ["[::1:5432", /missing '\]'/],
    ["[::1]5432", /':port'/],
    ["[db.internal]:1", /not an IPv6 address/],
    ["10.0.0.1/8:1", /bits set past/],
    ["[fd00::1/8]:1", /bits set past/],
    ["[2001:db8:8000::/32]:1", /bits set past/],
    ["[2001:db8::1:0:0:1/112]:1", /bits set past/],
    ["[::ffff:10.0.0.1/104]:1", /bits set past/],
    ["[::ffff:10.0.0.0/80]:1", /IPv4-mapped prefix must be at least \/96/],
    ["10.0.0.0/33:1", /prefix must be 0-32/],
    ["[fd00::/129]:1", /prefix must be 0-128/],
    ["db..internal:1", /not a host name/],
    ["-db:1", /not a host name/],
    ["010.0.0.1:1", /looks like an IP/],
    ["10.1:1", /looks like an IP/],
    [":1", /not a host name/],
    ["", /empty/],
  ])("rejects %j", (entry, why) => {
    const err = (() => {
      try {
        parseAllowEntry(entry);
      } catch (e) {
        return e;
      }
      return null;
    })();
    expect(err).toBeInstanceOf(ConnectorError);
    expect((err as ConnectorError).code).toBe("CONFIG_INVALID");
    expect((err as ConnectorError).message).toMatch(why);
  });
});

describe("AllowList.match", () => {
  it("matches a name entry on that name only, case-insensitively", () => {
    expect(allows(["db.internal:5432"], "db.internal", 5432)).toBe(true);
    expect(allows(["db.internal:5432"], "DB.INTERNAL.", 5432)).toBe(true);
    expect(allows(["db.internal:5432"], "db.internal", 5433)).toBe(false);
    expect(allows(["db.internal:5432"], "x.db.internal", 5432)).toBe(false);
    expect(allows(["db.internal:5432"], "db.internal.evil.com", 5432)).toBe(false);
  });

  it("matches IP and CIDR entries against IP literal targets only, never names", () => {
    expect(allows(["10.0.0.0/8:*"], "10.200.3.4", 22)).toBe(true);
    expect(allows(["10.0.0.0/8:*"], "11.0.0.1", 22)).toBe(false);
    expect(allows(["10.0.0.0/8:*"], "localhost", 22)).toBe(false);
    expect(allows(["127.0.0.1:*"], "localhost", 22)).toBe(false);
    expect(allows(["192.168.4.0/22:1"], "192.168.7.255", 1)).toBe(true);
    expect(allows(["192.168.4.0/22:1"], "192.168.8.0", 1)).toBe(false);
    expect(allows(["0.0.0.0/0:1"], "8.8.8.8", 1)).toBe(true);
    expect(allows(["0.0.0.0/0:1"], "::1", 1)).toBe(false);
  });

  it("does not let non-standard IPv4 spellings slip into a CIDR", () => {
    expect(allows(["10.0.0.0/8:*"], "010.0.0.1", 1)).toBe(false);
    expect(allows(["10.0.0.0/8:*"], "10.1", 1)).toBe(false);
    expect(allows(["10.0.0.0/8:*"], "167772161", 1)).toBe(false);
  });

  it("matches IPv6 CIDRs and IPv4-mapped targets", () => {
    expect(allows(["[fd00::/8]:*"], "fd12:3456::1", 1)).toBe(true);
    expect(allows(["[fd00::/8]:*"], "fe80::1", 1)).toBe(false);
    expect(allows(["[::1]:*"], "0:0:0:0:0:0:0:1", 1)).toBe(true);
    expect(allows(["[2001:db8::/33]:*"], "2001:db8:7fff::1", 1)).toBe(true);
    expect(allows(["[2001:db8::/33]:*"], "2001:db8:8000::1", 1)).toBe(false);
    expect(allows(["10.0.0.0/8:*"], "::ffff:10.9.9.9", 1)).toBe(true);
    expect(allows(["[::ffff:10.0.0.0/104]:*"], "10.9.9.9", 1)).toBe(true);
    expect(allows(["[fd00::/8]:*"], "fd00::1%eth0", 1)).toBe(false);
    expect(allows(["[::ffff:10.0.0.0/104]:*"], "::ffff:a09:909", 1)).toBe(true);
    expect(allows(["[::ffff:10.0.0.0/104]:*"], "11.0.0.1", 1)).toBe(false);
    expect(allows(["[::/0]:*"], "10.0.0.1", 1)).toBe(false);
  });

  it("checks port ranges inclusively and refuses impossible ports", () => {
    expect(allows(["*:5432-5434"], "x", 5432)).toBe(true);
    expect(allows(["*:5432-5434"], "x", 5434)).toBe(true);
    expect(allows(["*:5432-5434"], "x", 5435)).toBe(false);
    expect(allows(["*:*"], "x", 0)).toBe(false);
    expect(allows(["*:*"], "x", 65536)).toBe(false);
    expect(allows(["*:*"], "x", 1.5)).toBe(false);
  });

  it("returns the first matching rule and null when none match", () => {
    const list = AllowList.parse(["db.internal:5432", "10.0.0.0/8:5432", "*:22"]);
    expect(list.match({ host: "10.0.0.5", port: 5432 })?.source).toBe("10.0.0.0/8:5432");
    expect(list.match({ host: "anything", port: 22 })?.source).toBe("*:22");
    expect(list.match({ host: "anything", port: 5432 })).toBeNull();
    expect(new AllowList([]).match({ host: "db.internal", port: 5432 })).toBeNull();
  });
});

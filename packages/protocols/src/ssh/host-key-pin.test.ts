import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HostKeyPinError, blobKeyType, fingerprint, matches, parseHostKeyPin, pinnedFingerprints } from "./host-key-pin.js";

// Real keys from ssh-keygen, and its own fingerprints, so "OpenSSH's form" is checked against OpenSSH.
interface Key {
  line: string; // "ssh-ed25519 AAAA… comment"
  blob: Uint8Array;
  sshKeygenFingerprint: string;
}
let dir: string;
let ed25519: Key;
let rsa: Key;
let ecdsa: Key;

function makeKey(type: string, extra: string[] = []): Key {
  const path = join(dir, `key_${type}`);
  execFileSync("ssh-keygen", ["-q", "-t", type, ...extra, "-N", "", "-C", `pin test ${type}`, "-f", path]);
  const line = readFileSync(`${path}.pub`, "utf8").trim();
  const blob = new Uint8Array(Buffer.from(line.split(" ")[1]!, "base64"));
  const sshKeygenFingerprint = execFileSync("ssh-keygen", ["-l", "-E", "sha256", "-f", `${path}.pub`], { encoding: "utf8" }).split(/\s+/)[1]!;
  return { line, blob, sshKeygenFingerprint };
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "gatehouse-pin-"));
  ed25519 = makeKey("ed25519");
  rsa = makeKey("rsa", ["-b", "2048"]);
  ecdsa = makeKey("ecdsa");
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("fingerprint", () => {
  it("equals ssh-keygen -l -E sha256 for ed25519, rsa and ecdsa keys", () => {
    for (const key of [ed25519, rsa, ecdsa]) {
      expect(fingerprint(key.blob)).toBe(key.sshKeygenFingerprint);
      expect(fingerprint(key.blob)).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    }
  });

  it("reads the key type from the blob", () => {
    expect(blobKeyType(ed25519.blob)).toBe("ssh-ed25519");
    expect(blobKeyType(rsa.blob)).toBe("ssh-rsa");
    expect(blobKeyType(ecdsa.blob)).toBe("ecdsa-sha2-nistp256");
    expect(blobKeyType(Uint8Array.of(0, 0, 0, 9, 1))).toBeUndefined();
  });
});

describe("parseHostKeyPin and matches", () => {
  const forms = () => [
    ["a known_hosts line with [host]:port", `[127.0.0.1]:2222 ${ed25519.line}`],
    ["a known_hosts line with a host list and a comment", `web1,10.0.0.5 ${ed25519.line}`],
    ["a hashed known_hosts line", `|1|F1E1KeoE/eEWhi10WpGv4OdiO6Y=|3988QV0VE8wmZL7suNrYQLITLCg= ${ed25519.line}`],
    ["a public key line", ed25519.line.split(" ").slice(0, 2).join(" ")],
    ["a fingerprint", ed25519.sshKeygenFingerprint],
  ] as const;

  it("accepts every form and matches only the pinned key", () => {
    for (const [form, text] of forms()) {
      const pin = parseHostKeyPin(text);
      expect(matches(pin, ed25519.blob), form).toBe(true);
      expect(matches(pin, rsa.blob), form).toBe(false);
      expect(pinnedFingerprints(pin), form).toEqual([ed25519.sshKeygenFingerprint]);
    }
  });

  it("takes several lines, skipping blanks and comments; any pinned key matches", () => {
    const pin = parseHostKeyPin(`# web1's keys\n\n[web1]:22 ${rsa.line}\r\n${ecdsa.sshKeygenFingerprint}\n`);
    expect(pin.keys.map((k) => k.type)).toEqual(["ssh-rsa"]);
    expect(matches(pin, rsa.blob)).toBe(true);
    expect(matches(pin, ecdsa.blob)).toBe(true);
    expect(matches(pin, ed25519.blob)).toBe(false);
    expect(pinnedFingerprints(pin)).toEqual([rsa.sshKeygenFingerprint, ecdsa.sshKeygenFingerprint]);
  });

  it("accepts a fingerprint with its base64 padding", () => {
    expect(matches(parseHostKeyPin(`${ed25519.sshKeygenFingerprint}=`), ed25519.blob)).toBe(true);
  });

  it("refuses what is not a pin, saying which line", () => {
    expect(() => parseHostKeyPin("")).toThrow(/empty/);
    expect(() => parseHostKeyPin("# only a comment\n")).toThrow(/empty/);
    expect(() => parseHostKeyPin("web1 ssh-ed25519 not-base64!")).toThrow(HostKeyPinError);
    // A key type that does not match the blob's own type is not a key.
    expect(() => parseHostKeyPin(`ssh-rsa ${ed25519.line.split(" ")[1]}`)).toThrow(/neither/);
    expect(() => parseHostKeyPin("SHA256:tooShort")).toThrow(HostKeyPinError);
    expect(() => parseHostKeyPin("MD5:aa:bb")).toThrow(HostKeyPinError);
    expect(() => parseHostKeyPin(`${ed25519.line}\nnonsense`)).toThrow(/line 2 of the host key pin/);
    expect(() => parseHostKeyPin(`@cert-authority *.example.com ${ed25519.line}`)).toThrow(/@cert-authority lines are not supported/);
    expect(() => parseHostKeyPin(`@revoked web1 ${ed25519.line}`)).toThrow(/@revoked/);
  });
});

import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { SshProtocolError } from "./errors.js";
import type { SftpCompletion, SftpOperation } from "./sftp-observer.js";
import { SftpObserver } from "./sftp-observer.js";
import { MAX_SFTP_PACKET, SftpType } from "./sftp-packets.js";

// --- a tiny SFTP encoder: the fields of draft-ietf-secsh-filexfer-02 §3 ---
type Field = number | string | Uint8Array | { u64: number };
function packet(type: number, ...fields: Field[]): Uint8Array {
  const parts: Uint8Array[] = [];
  for (const f of fields) {
    if (typeof f === "number") parts.push(u32(f));
    else if (typeof f === "string") parts.push(str(new TextEncoder().encode(f)));
    else if (f instanceof Uint8Array) parts.push(str(f));
    else parts.push(u32(Math.floor(f.u64 / 2 ** 32)), u32(f.u64 % 2 ** 32));
  }
  const body = Buffer.concat(parts);
  return Buffer.concat([u32(body.length + 1), Uint8Array.of(type), body]);
}
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
};
const str = (b: Uint8Array) => Buffer.concat([u32(b.length), b]);
const H = Uint8Array.of(0, 0, 0, 7);

function harness() {
  const started: SftpOperation[] = [];
  const done: { op: SftpOperation; c: SftpCompletion }[] = [];
  let t = 0;
  const observer = new SftpObserver(
    { commandStarted: (op) => started.push(op), commandCompleted: (op, c) => done.push({ op, c }) },
    { now: () => (t += 5) },
  );
  return { observer, started, done, commands: () => done.map((d) => d.op.command) };
}

describe("SftpObserver", () => {
  it("announces a mutating request before the server sees it, and completes it on the reply", () => {
    const h = harness();
    h.observer.client(packet(SftpType.REMOVE, 9, "/etc/app.conf"));
    expect(h.started.map((o) => o.command)).toEqual(["remove /etc/app.conf"]);
    expect(h.done).toEqual([]);
    h.observer.server(packet(SftpType.STATUS, 9, 3, "Permission denied", ""));
    expect(h.done[0]!.c).toMatchObject({ outcome: "error", details: { status: "PERMISSION_DENIED", statusCode: 3, message: "Permission denied" } });
  });

  /** Streams `total` bytes of WRITEs through an open handle; `chunk(n)` makes each payload chunk. */
  function upload(total: number, chunk: (n: number) => Uint8Array) {
    const h = harness();
    h.observer.client(packet(SftpType.OPEN, 1, "/big", 0x1a, 0));
    h.observer.server(packet(SftpType.HANDLE, 1, H));
    let offset = 0;
    let id = 2;
    while (offset < total) {
      const n = Math.min(255 * 1024, total - offset);
      const head = packet(SftpType.WRITE, id, H, { u64: offset }, n);
      // The header claims n payload bytes; the payload follows as a chunk of its own.
      Buffer.from(head.buffer, head.byteOffset).writeUInt32BE(head.length - 4 + n, 0);
      h.observer.client(head);
      h.observer.client(chunk(n));
      h.observer.server(packet(SftpType.STATUS, id, 0, "", ""));
      offset += n;
      id++;
    }
    h.observer.client(packet(SftpType.CLOSE, id, H));
    h.observer.server(packet(SftpType.STATUS, id, 0, "", ""));
    return h;
  }

  it("counts a 1 GiB upload on its handle's close", () => {
    const payload = new Uint8Array(255 * 1024);
    const h = upload(2 ** 30, (n) => payload.subarray(0, n));
    expect(h.done.at(-1)).toMatchObject({ op: { command: "close /big" }, c: { outcome: "ok", details: { bytesWritten: 2 ** 30, writes: Math.ceil(2 ** 30 / (255 * 1024)) } } });
    expect(h.observer.pendingCount).toBe(0);
  });

  it("keeps no payload chunk: 256 MiB of fresh chunks leave no trace in memory", () => {
    // A real collection before each reading (vitest's workers run without --expose-gc): left to
    // itself, V8 may not have collected yet, and the reading measured its timing, not the observer.
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as () => void;
    gc();
    const before = process.memoryUsage().arrayBuffers;
    const h = upload(256 * 2 ** 20, (n) => new Uint8Array(n));
    gc();
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(64 * 2 ** 20);
    expect(h.done.at(-1)?.c.details.bytesWritten).toBe(256 * 2 ** 20);
  });

  it("refuses a packet over the limit before buffering it", () => {
    const h = harness();
    const header = Buffer.concat([u32(MAX_SFTP_PACKET + 1), Uint8Array.of(SftpType.OPEN)]);
    expect(() => h.observer.client(header)).toThrow(expect.objectContaining({ code: "SFTP_PACKET_TOO_LARGE" }));
    // Broken once, broken for good: nothing runs on a lost position.
    expect(() => h.observer.client(packet(SftpType.REMOVE, 1, "/x"))).toThrow(SshProtocolError);
  });

  it("rejects a reply to no request, and a truncated field, as SFTP_MALFORMED", () => {
    expect(() => harness().observer.server(packet(SftpType.STATUS, 42, 0, "", ""))).toThrow(expect.objectContaining({ code: "SFTP_MALFORMED" }));
    expect(() => harness().observer.client(packet(SftpType.RENAME, 1, "/only-one"))).toThrow(expect.objectContaining({ code: "SFTP_MALFORMED" }));
  });

  it("completes what is left as interrupted when the channel ends: the requests in flight and the open handles with their bytes", () => {
    const h = harness();
    h.observer.client(packet(SftpType.OPEN, 1, "/f", 0x01, 0));
    h.observer.server(packet(SftpType.HANDLE, 1, H));
    h.observer.client(packet(SftpType.READ, 2, H, { u64: 0 }, 100));
    h.observer.server(Buffer.concat([packet(SftpType.DATA, 2, new Uint8Array(100))]));
    h.observer.client(packet(SftpType.MKDIR, 3, "/d", 0));
    h.observer.end();
    expect(h.done.map((d) => [d.op.command, d.c.outcome, d.c.details.interrupted ?? false, d.c.details.bytesRead])).toEqual([
      ["open /f (read)", "ok", false, undefined],
      ["mkdir /d", "error", true, undefined],
      ["close /f", "error", true, 100],
    ]);
  });

  it("names the extensions OpenSSH uses: posix-rename, hardlink, copy-data, statvfs", () => {
    const h = harness();
    h.observer.client(packet(SftpType.EXTENDED, 1, "posix-rename@openssh.com", "/a", "/b"));
    h.observer.client(packet(SftpType.EXTENDED, 2, "hardlink@openssh.com", "/t", "/l"));
    h.observer.client(packet(SftpType.EXTENDED, 3, "statvfs@openssh.com", "/"));
    h.observer.client(packet(SftpType.EXTENDED, 4, "mystery@example.com", "x"));
    for (const id of [1, 2, 3, 4]) h.observer.server(packet(SftpType.STATUS, id, 0, "", ""));
    h.observer.end();
    expect(h.started.map((o) => o.command)).toEqual(["rename /a /b", "hardlink /l -> /t", "extended mystery@example.com"]);
    expect(h.commands()).toEqual(["rename /a /b", "hardlink /l -> /t", "extended mystery@example.com", "lookup 1 path (statvfs /)"]);
  });

  it("throws nothing but SshProtocolError on any bytes, in either direction", () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), fc.uint8Array({ maxLength: 64 })), { maxLength: 20 }), (chunks) => {
        const h = harness();
        try {
          for (const [fromClient, bytes] of chunks) (fromClient ? h.observer.client(bytes) : h.observer.server(bytes));
          h.observer.end();
        } catch (error) {
          expect(error).toBeInstanceOf(SshProtocolError);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it("throws nothing but SshProtocolError on well-framed packets with random bodies", () => {
    const types = Object.values(SftpType);
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.boolean(), fc.constantFrom(...types), fc.uint8Array({ maxLength: 48 })), { maxLength: 20 }), (packets) => {
        const h = harness();
        try {
          for (const [fromClient, type, body] of packets) {
            const bytes = Buffer.concat([u32(body.length + 1), Uint8Array.of(type), body]);
            if (fromClient) h.observer.client(bytes);
            else h.observer.server(bytes);
          }
          h.observer.end();
        } catch (error) {
          expect(error).toBeInstanceOf(SshProtocolError);
        }
      }),
      { numRuns: 3000 },
    );
  });
});

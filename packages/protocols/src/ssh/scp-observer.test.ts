import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { SshProtocolError } from "./errors.js";
import type { ScpCompletion, ScpTransfer } from "./scp-observer.js";
import { MAX_SCP_LINE, ScpObserver, parseScpCommand } from "./scp-observer.js";

const text = (s: string) => new TextEncoder().encode(s);

function harness(commandLine: string) {
  const started: ScpTransfer[] = [];
  const done: { t: ScpTransfer; c: ScpCompletion }[] = [];
  let clock = 0;
  const observer = new ScpObserver(
    { commandStarted: (t) => started.push(t), commandCompleted: (t, c) => done.push({ t, c }) },
    { now: () => (clock += 1), command: parseScpCommand(commandLine)! },
  );
  return { observer, started, done };
}

describe("ScpObserver", () => {
  it("streams a 1 GiB upload past without holding it, and closes it as interrupted when the channel ends midway", () => {
    const h = harness("scp -t /srv");
    h.observer.server(Uint8Array.of(0));
    h.observer.client(text(`C0600 ${2 ** 30} big.iso\n`));
    expect(h.started.map((t) => t.command)).toEqual(["upload /srv/big.iso (1073741824 bytes)"]);
    h.observer.server(Uint8Array.of(0));
    const block = new Uint8Array(1 << 20);
    for (let i = 0; i < 1024; i++) h.observer.client(block);
    h.observer.client(Uint8Array.of(0));
    h.observer.server(Uint8Array.of(0));
    expect(h.done[0]?.c).toMatchObject({ outcome: "ok", details: { bytes: 2 ** 30, mode: "0600" } });

    h.observer.client(text("C0644 100 half.txt\n"));
    h.observer.server(Uint8Array.of(0));
    h.observer.client(new Uint8Array(40));
    h.observer.end();
    expect(h.done[1]).toMatchObject({ t: { command: "upload /srv/half.txt (100 bytes)" }, c: { outcome: "error", details: { bytes: 40, interrupted: true } } });
  });

  it("rejects a control line that is not scp, and an endless line, as SCP_MALFORMED", () => {
    const bad = harness("scp -t /srv");
    bad.observer.server(Uint8Array.of(0));
    expect(() => bad.observer.client(text("C0644 12 ../../etc/passwd\n"))).toThrow(expect.objectContaining({ code: "SCP_MALFORMED" }));
    const long = harness("scp -f /x");
    long.observer.client(Uint8Array.of(0));
    expect(() => long.observer.server(new Uint8Array(MAX_SCP_LINE + 1).fill(0x43))).toThrow(expect.objectContaining({ code: "SCP_MALFORMED" }));
  });

  it("throws nothing but SshProtocolError on any bytes, either way", () => {
    const lines = fc.constantFrom("C0644 5 a\n", "D0755 0 d\n", "E\n", "T1 0 1 0\n", "\u0001scp: x: nope\n", "\u0000", "hello", "\u0002fatal\n");
    const chunk = fc.oneof(lines.map(text), fc.uint8Array({ maxLength: 32 }));
    fc.assert(
      fc.property(fc.constantFrom("scp -t /d", "scp -r -f /a/b"), fc.array(fc.tuple(fc.boolean(), chunk), { maxLength: 30 }), (command, chunks) => {
        const h = harness(command);
        try {
          for (const [fromClient, bytes] of chunks) (fromClient ? h.observer.client(bytes) : h.observer.server(bytes));
          h.observer.end();
        } catch (error) {
          expect(error).toBeInstanceOf(SshProtocolError);
        }
      }),
      { numRuns: 3000 },
    );
  });
});

import { describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import { CancelKeys, cancelRouteKey, type CancelRoute } from "./cancel-keys.js";

// Routes are opaque to CancelKeys; only the server key is read.
const route = (processId: number, tag: string) => ({ tag, serverKey: { processId, secretKey: new Uint8Array([1, 2, 3, 4]) } }) as unknown as CancelRoute;

describe("CancelKeys", () => {
  it("hands the client the server's pid with a secret of its own", () => {
    const keys = new CancelKeys();
    const key = keys.issue(route(4242, "a"));
    expect(key.processId).toBe(4242);
    expect(key.secretKey).toHaveLength(4);
    expect([...key.secretKey]).not.toEqual([1, 2, 3, 4]);
  });

  it("tells apart sessions of different servers with the same pid by their secret", () => {
    const keys = new CancelKeys();
    const a = route(77, "a");
    const b = route(77, "b");
    const keyA = keys.issue(a);
    const keyB = keys.issue(b);
    expect(Buffer.from(keyA.secretKey).equals(Buffer.from(keyB.secretKey))).toBe(false);
    expect(keys.find(keyA)).toBe(a);
    expect(keys.find(keyB)).toBe(b);
    expect(keys.size).toBe(2);
    keys.release(keyA);
    expect(keys.find(keyA)).toBeUndefined();
    expect(keys.find(keyB)).toBe(b);
    expect(keys.size).toBe(1);
  });

  it("finds nothing for a wrong secret, a wrong pid, or a secret of the wrong length", () => {
    const keys = new CancelKeys();
    const key = keys.issue(route(9, "a"));
    const wrong = new Uint8Array(key.secretKey);
    wrong[0] = wrong[0]! ^ 0xff;
    expect(keys.find({ processId: 9, secretKey: wrong })).toBeUndefined();
    expect(keys.find({ processId: 10, secretKey: key.secretKey })).toBeUndefined();
    expect(keys.find({ processId: 9, secretKey: key.secretKey.subarray(0, 3) })).toBeUndefined();
  });

  it("names each key in the store by a hash of pid and secret, and finds a forwarded cancel by it until release", () => {
    const keys = new CancelKeys();
    const a = route(0x01020304, "a");
    const key = keys.issue(a);
    const expected = createHash("sha256").update(Buffer.from([1, 2, 3, 4])).update(key.secretKey).digest("hex");
    expect(cancelRouteKey(key)).toBe(`pg:${expected}`);
    expect(keys.findByRouteKey(cancelRouteKey(key))).toBe(a);
    const wrong = new Uint8Array(key.secretKey);
    wrong[3] = wrong[3]! ^ 1;
    expect(keys.findByRouteKey(cancelRouteKey({ processId: key.processId, secretKey: wrong }))).toBeUndefined();
    keys.release(key);
    expect(keys.findByRouteKey(cancelRouteKey(key))).toBeUndefined();
  });
});

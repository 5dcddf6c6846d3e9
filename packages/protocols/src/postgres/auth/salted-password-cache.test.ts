import { describe, expect, it } from "vitest";
import { SaltedPasswordCache } from "./salted-password-cache.js";
import { saltedPassword } from "./scram.js";

describe("SaltedPasswordCache", () => {
  const salt = Buffer.from("0123456789abcdef");

  it("derives once per password, salt and iteration count, and gives the same value again", () => {
    const cache = new SaltedPasswordCache();
    const first = cache.get("secret", salt, 4096);
    expect(Buffer.from(first)).toEqual(Buffer.from(saltedPassword("secret", salt, 4096)));
    expect(cache.get("secret", salt, 4096)).toBe(first);
    // Any of the three different: derived anew, and right.
    for (const [password, s, i] of [["other", salt, 4096], ["secret", Buffer.from("fedcba9876543210"), 4096], ["secret", salt, 4097]] as const) {
      const value = cache.get(password, s, i);
      expect(value).not.toBe(first);
      expect(Buffer.from(value)).toEqual(Buffer.from(saltedPassword(password, s, i)));
    }
  });

  it("keeps at most its limit, dropping the oldest", () => {
    const cache = new SaltedPasswordCache(2);
    const a = cache.get("a", salt, 16);
    cache.get("b", salt, 16);
    cache.get("c", salt, 16);
    expect(cache.get("a", salt, 16)).not.toBe(a); // dropped, derived again
    expect(Buffer.from(cache.get("a", salt, 16))).toEqual(Buffer.from(a));
  });
});

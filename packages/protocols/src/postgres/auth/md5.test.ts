import { describe, expect, it } from "vitest";
import { md5PasswordResponse, md5StoredPassword } from "./md5.js";

describe("MD5 password", () => {
  // Known answers computed independently with Python's hashlib.
  it("computes the stored form md5(password + user)", () => {
    expect(md5StoredPassword("alice", "secret")).toBe("md54a0a68b43b6cd5cf266fa02f196e2371");
  });
  it("computes the salted response md5(hex(md5(password + user)) + salt)", () => {
    expect(md5PasswordResponse("alice", "secret", new Uint8Array([1, 2, 3, 4]))).toBe("md598a0412b9c31436fc53776e863350083");
    expect(md5PasswordResponse("alice", "secret", new Uint8Array([1, 2, 3, 5]))).not.toBe("md598a0412b9c31436fc53776e863350083");
  });
});

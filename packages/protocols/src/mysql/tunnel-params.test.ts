import { describe, expect, it } from "vitest";
import { decodeDialRequest, decodeDialResult, decodeKillResult, encodeDialRequest, encodeDialResult, encodeKillResult } from "./tunnel-params.js";

describe("mysql tunnel params", () => {
  it("round-trips a dial request with the client's capabilities and attributes in order", () => {
    const request = {
      client: {
        capabilities: 0xa3_af_f2_05,
        mariadbCapabilities: 4,
        characterSet: 224,
        maxPacketSize: 16_777_216,
        attributes: [["_client_name", "libmariadb"], ["program_name", "mariadb"], ["kill.connectionId", "trick"]] as const,
      },
    };
    const decoded = decodeDialRequest(encodeDialRequest(request));
    expect(decoded.client).toEqual({ ...request.client, attributes: request.client.attributes.map((a) => [...a]) });
    expect(decoded.kill).toBeUndefined();
  });

  it("carries the client's initial database only when it gave one", () => {
    const client = { capabilities: 1, mariadbCapabilities: 0, characterSet: 45, maxPacketSize: 0, attributes: [] };
    expect(decodeDialRequest(encodeDialRequest({ client: { ...client, database: "shop" } })).client?.database).toBe("shop");
    expect(decodeDialRequest(encodeDialRequest({ client })).client).not.toHaveProperty("database");
  });

  it("round-trips a KILL stream request and ignores a malformed id", () => {
    expect(decodeDialRequest(encodeDialRequest({ kill: { connectionId: 4_000_000_000 } }))).toEqual({ kill: { connectionId: 4_000_000_000 } });
    expect(decodeDialRequest({ "kill.connectionId": "12; DROP" })).toEqual({});
    expect(decodeDialRequest({ "kill.connectionId": "99999999999" })).toEqual({});
  });

  it("round-trips a dial result", () => {
    const result = {
      serverVersion: "5.5.5-10.11.6-MariaDB",
      serverCapabilities: 0xf7_fe_ff_fe,
      serverMariadbCapabilities: 0x1d,
      characterSet: 45,
      capabilities: 0x81_af_a2_05,
      mariadbCapabilities: 0,
      statusFlags: 0x4002,
      connectionId: 31,
      authPlugin: "mysql_native_password",
      tls: true,
    };
    expect(decodeDialResult(encodeDialResult(result))).toEqual(result);
    expect(decodeDialResult({}).tls).toBe(false);
  });

  it("round-trips a KILL outcome; a missing or unknown one reads as an error, never as success", () => {
    expect(decodeKillResult(encodeKillResult({ ok: true }))).toEqual({ ok: true });
    const refused = { ok: false as const, errno: 1094, sqlState: "HY000", message: "Unknown thread id: 7" };
    expect(decodeKillResult(encodeKillResult(refused))).toEqual(refused);
    expect(decodeKillResult({})).toMatchObject({ ok: false, errno: 0 });
    expect(decodeKillResult({ "kill.outcome": "sent" })).toMatchObject({ ok: false });
  });
});

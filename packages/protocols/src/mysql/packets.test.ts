import { describe, expect, it } from "vitest";
import { PayloadReader, PayloadWriter } from "./bytes.js";
import { Capability, MariadbCapability, ServerStatus, SessionTrack } from "./constants.js";
import { MysqlProtocolError } from "./errors.js";
import {
  decodeAuthMoreData,
  decodeAuthSwitchRequest,
  decodeEofPacket,
  decodeErrPacket,
  decodeHandshakeResponse41,
  decodeHandshakeV10,
  decodeOkPacket,
  decodeSslRequest,
  encodeAuthMoreData,
  encodeAuthSwitchRequest,
  encodeEofPacket,
  encodeErrPacket,
  encodeHandshakeResponse41,
  encodeHandshakeV10,
  encodeOkPacket,
  encodeSslRequest,
  isEofPacket,
  isSslRequest,
  type HandshakeResponse41,
  type HandshakeV10,
} from "./packets.js";

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"));
const scramble = Uint8Array.from({ length: 20 }, (_, i) => i + 1);

/** Every strict prefix of a valid payload is a coded truncation error, never a crash or a wrong value. */
function expectTruncationsRejected(payload: Uint8Array, decode: (p: Uint8Array) => unknown, optionalTailFrom = payload.byteLength): void {
  for (let cut = 0; cut < Math.min(optionalTailFrom, payload.byteLength); cut++) {
    expect(() => decode(payload.subarray(0, cut)), `cut at ${cut}`).toThrow(MysqlProtocolError);
  }
}

describe("length-encoded integers and strings", () => {
  it("round-trip at every size boundary", () => {
    for (const n of [0, 250, 251, 0xffff, 0x10000, 0xffffff, 0x1000000, 2 ** 40]) {
      const bytes = new PayloadWriter().lenencInt(n).finish();
      const r = new PayloadReader(bytes);
      expect(r.lenencInt()).toBe(n);
      expect(r.remaining).toBe(0);
    }
    const s = new PayloadWriter().lenencString("héllo").nulString("x").finish();
    const r = new PayloadReader(s);
    expect([r.lenencString(), r.nulString()]).toEqual(["héllo", "x"]);
  });

  it("reads 0xFB as NULL and refuses 0xFF and truncated values with coded errors", () => {
    expect(new PayloadReader(Uint8Array.of(0xfb)).lenencIntOrNull()).toBeNull();
    expect(() => new PayloadReader(Uint8Array.of(0xff)).lenencInt()).toThrow(expect.objectContaining({ code: "PROTOCOL_VIOLATION" }));
    expect(() => new PayloadReader(Uint8Array.of(0xfd, 1, 2)).lenencInt()).toThrow(expect.objectContaining({ code: "PROTOCOL_VIOLATION" }));
    expect(() => new PayloadReader(Uint8Array.of(5, 0x61)).lenencString()).toThrow(MysqlProtocolError);
  });
});

describe("HandshakeV10", () => {
  const greeting: HandshakeV10 = {
    serverVersion: "8.0.36-gatehouse",
    connectionId: 0x01020304,
    scramble,
    capabilities: 0xdfffffff & ~Capability.CLIENT_COMPRESS,
    mariadbCapabilities: 0,
    characterSet: 255,
    statusFlags: ServerStatus.SERVER_STATUS_AUTOCOMMIT,
    authPluginName: "caching_sha2_password",
  };

  it("round-trips", () => {
    expect(decodeHandshakeV10(encodeHandshakeV10(greeting))).toEqual({ ...greeting, capabilities: greeting.capabilities >>> 0 });
  });

  it("carries MariaDB's extended capabilities when CLIENT_LONG_PASSWORD (CLIENT_MYSQL) is clear", () => {
    const mariadb = {
      ...greeting,
      serverVersion: "5.5.5-10.11.19-MariaDB",
      capabilities: (greeting.capabilities & ~Capability.CLIENT_LONG_PASSWORD) >>> 0,
      mariadbCapabilities: MariadbCapability.MARIADB_CLIENT_STMT_BULK_OPERATIONS | MariadbCapability.MARIADB_CLIENT_EXTENDED_METADATA,
      authPluginName: "mysql_native_password",
    };
    expect(decodeHandshakeV10(encodeHandshakeV10(mariadb))).toEqual(mariadb);
  });

  it("decodes a greeting captured from MariaDB 10.11", () => {
    // Payload of the first packet read from 127.0.0.1:3306 (MariaDB 10.11.19, Debian 12) on 2026-12-04.
    const captured = hex(
      "0a352e352e352d31302e31312e31392d4d6172696144422d302b64656231327531004b000000327d41696c64316300fef72d0200ff81150000000000001d00000021785b406a76333a687c577c006d7973716c5f6e61746976655f70617373776f726400",
    );
    const decoded = decodeHandshakeV10(captured);
    expect(decoded.serverVersion).toBe("5.5.5-10.11.19-MariaDB-0+deb12u1");
    expect(decoded.connectionId).toBe(75);
    expect(decoded.scramble.byteLength).toBe(20);
    expect(decoded.authPluginName).toBe("mysql_native_password");
    expect(decoded.mariadbCapabilities).toBe(0x1d);
    expect(decoded.capabilities & Capability.CLIENT_PROTOCOL_41).toBeTruthy();
  });

  it("rejects truncations and other protocol versions with coded errors", () => {
    expectTruncationsRejected(encodeHandshakeV10(greeting), decodeHandshakeV10, 16);
    expect(() => decodeHandshakeV10(Uint8Array.of(9, 0))).toThrow(expect.objectContaining({ code: "UNSUPPORTED_CAPABILITY" }));
  });
});

describe("HandshakeResponse41 and SSLRequest", () => {
  const response: HandshakeResponse41 = {
    capabilities:
      Capability.CLIENT_PROTOCOL_41 |
      Capability.CLIENT_SECURE_CONNECTION |
      Capability.CLIENT_PLUGIN_AUTH |
      Capability.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA |
      Capability.CLIENT_CONNECT_WITH_DB |
      Capability.CLIENT_CONNECT_ATTRS |
      Capability.CLIENT_LONG_PASSWORD,
    mariadbCapabilities: 0,
    maxPacketSize: 16 * 1024 * 1024,
    characterSet: 45,
    username: "copilot-agent",
    authResponse: scramble,
    database: "app",
    authPluginName: "mysql_native_password",
    attributes: [
      ["_client_name", "libmariadb"],
      ["program_name", "mariadb"],
    ],
  };

  it("round-trips with every optional field, and with 1-byte-length auth data", () => {
    expect(decodeHandshakeResponse41(encodeHandshakeResponse41(response))).toEqual(response);
    const short = { ...response, capabilities: response.capabilities & ~Capability.CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA & ~Capability.CLIENT_CONNECT_WITH_DB, database: undefined };
    expect(decodeHandshakeResponse41(encodeHandshakeResponse41(short))).toEqual({ ...short, capabilities: short.capabilities >>> 0 });
  });

  it("carries MariaDB extended capabilities in the filler", () => {
    const mariadb = { ...response, capabilities: (response.capabilities & ~Capability.CLIENT_LONG_PASSWORD) >>> 0, mariadbCapabilities: 0x1c };
    expect(decodeHandshakeResponse41(encodeHandshakeResponse41(mariadb))).toEqual(mariadb);
  });

  it("tells an SSLRequest apart and round-trips it", () => {
    const ssl = { capabilities: (response.capabilities | Capability.CLIENT_SSL) >>> 0, mariadbCapabilities: 0, maxPacketSize: 1 << 24, characterSet: 33 };
    const bytes = encodeSslRequest(ssl);
    expect(bytes.byteLength).toBe(32);
    expect(isSslRequest(bytes)).toBe(true);
    expect(isSslRequest(encodeHandshakeResponse41(response))).toBe(false);
    expect(decodeSslRequest(bytes)).toEqual(ssl);
  });

  it("refuses a pre-4.1 client and truncated responses with coded errors", () => {
    const old = encodeHandshakeResponse41(response);
    old[1] = old[1]! & ~0x02; // clear CLIENT_PROTOCOL_41 (0x200)
    expect(() => decodeHandshakeResponse41(old)).toThrow(expect.objectContaining({ code: "UNSUPPORTED_CAPABILITY", errno: 1251 }));
    const bytes = encodeHandshakeResponse41(response);
    // Up to and including the auth data every byte is required.
    expectTruncationsRejected(bytes, decodeHandshakeResponse41, 32 + "copilot-agent".length + 1 + 1 + 20);
    // A lying attributes length is refused.
    const lying = encodeHandshakeResponse41(response);
    expect(() => decodeHandshakeResponse41(lying.subarray(0, lying.byteLength - 3))).toThrow(MysqlProtocolError);
  });
});

describe("authentication packets", () => {
  it("AuthSwitchRequest round-trips (the trailing NUL is the server's, not the data's)", () => {
    const request = { pluginName: "mysql_clear_password", pluginData: scramble };
    const bytes = encodeAuthSwitchRequest(request);
    expect(bytes[bytes.byteLength - 1]).toBe(0);
    expect(decodeAuthSwitchRequest(bytes)).toEqual(request);
    expect(() => decodeAuthSwitchRequest(Uint8Array.of(0xfe))).toThrow(expect.objectContaining({ code: "UNSUPPORTED_AUTH" }));
  });

  it("AuthMoreData round-trips", () => {
    expect(decodeAuthMoreData(encodeAuthMoreData(Uint8Array.of(4)))).toEqual(Uint8Array.of(4));
    expect(() => decodeAuthMoreData(Uint8Array.of(0))).toThrow(MysqlProtocolError);
  });
});

describe("OK, ERR, EOF", () => {
  const caps41 = Capability.CLIENT_PROTOCOL_41;
  const capsTrack = Capability.CLIENT_PROTOCOL_41 | Capability.CLIENT_SESSION_TRACK;

  it("OK round-trips with and without session tracking", () => {
    const ok = { header: 0, affectedRows: 70_000, lastInsertId: 2 ** 33, statusFlags: 3, warnings: 1, info: "Rows matched: 1", sessionStateChanges: [] };
    expect(decodeOkPacket(encodeOkPacket(ok, caps41), caps41)).toEqual(ok);
    expect(decodeOkPacket(encodeOkPacket(ok, capsTrack), capsTrack)).toEqual(ok);
  });

  it("decodes session state changes, keeping an unparsable entry raw", () => {
    const schema = new PayloadWriter().lenencString("app").finish();
    const variable = new PayloadWriter().lenencString("autocommit").lenencString("OFF").finish();
    const ok = encodeOkPacket(
      {
        statusFlags: ServerStatus.SERVER_SESSION_STATE_CHANGED,
        sessionStateChanges: [
          { type: SessionTrack.SESSION_TRACK_SCHEMA, data: schema },
          { type: SessionTrack.SESSION_TRACK_SYSTEM_VARIABLES, data: variable },
          { type: SessionTrack.SESSION_TRACK_SCHEMA, data: Uint8Array.of(9) },
          { type: 99, data: Uint8Array.of(1, 2) },
        ],
      },
      capsTrack,
    );
    const changes = decodeOkPacket(ok, capsTrack).sessionStateChanges;
    expect(changes.map((c) => [c.type, c.schema, c.variable])).toEqual([
      [1, "app", undefined],
      [0, undefined, ["autocommit", "OFF"]],
      [1, undefined, undefined],
      [99, undefined, undefined],
    ]);
  });

  it("ERR round-trips, and decodes one without the SQLSTATE marker", () => {
    const err = { errno: 1045, sqlState: "28000", message: "Access denied for user 'x'" };
    expect(decodeErrPacket(encodeErrPacket(err))).toEqual(err);
    expect(decodeErrPacket(Uint8Array.of(0xff, 0x10, 0x04, 0x42, 0x79))).toEqual({ errno: 1040, sqlState: "HY000", message: "By" });
    expectTruncationsRejected(encodeErrPacket(err), decodeErrPacket, 3);
  });

  it("EOF round-trips and is told apart from a 0xFE OK", () => {
    const eof = { warnings: 2, statusFlags: 0x22 };
    const bytes = encodeEofPacket(eof, caps41);
    expect(isEofPacket(bytes)).toBe(true);
    expect(decodeEofPacket(bytes, caps41)).toEqual(eof);
    expect(isEofPacket(encodeOkPacket({ header: 0xfe, info: "long enough info" }, caps41))).toBe(false);
    expect(() => decodeEofPacket(bytes.subarray(0, 3), caps41)).toThrow(MysqlProtocolError);
  });
});

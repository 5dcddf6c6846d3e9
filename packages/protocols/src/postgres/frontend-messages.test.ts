import { describe, expect, it } from "vitest";
import { concat, onlyMessage, readMessages, utf8 } from "../../test/helpers/frames.js";
import type { FrontendMessage, StartupPacket } from "./frontend-messages.js";
import {
  decodeBind,
  decodeFrontendMessage,
  decodeParse,
  decodePasswordMessage,
  decodeSASLInitialResponse,
  decodeSASLResponse,
  decodeStartupPacket,
  encodeBind,
  encodeCancelRequest,
  encodeFrontendMessage,
  encodeGSSENCRequest,
  encodePasswordMessage,
  encodeQuery,
  encodeSASLInitialResponse,
  encodeSASLResponse,
  encodeSSLRequest,
  encodeStartupMessage,
  encodeSync,
} from "./frontend-messages.js";
import { PostgresProtocolError } from "./errors.js";

const bytes = (...values: number[]): Uint8Array => new Uint8Array(values);

describe("startup packets", () => {
  const cases: [string, Uint8Array, StartupPacket][] = [
    [
      "StartupMessage",
      encodeStartupMessage({ params: { user: "copilot-agent", database: "app", application_name: "psql", "_pq_.x": "1" } }),
      {
        type: "StartupMessage",
        protocolVersion: 196608,
        params: Object.assign(Object.create(null) as object, {
          user: "copilot-agent",
          database: "app",
          application_name: "psql",
          "_pq_.x": "1",
        }),
      },
    ],
    ["SSLRequest", encodeSSLRequest(), { type: "SSLRequest" }],
    ["GSSENCRequest", encodeGSSENCRequest(), { type: "GSSENCRequest" }],
    [
      "CancelRequest",
      encodeCancelRequest({ processId: 4242, secretKey: bytes(1, 2, 3, 4) }),
      { type: "CancelRequest", processId: 4242, secretKey: bytes(1, 2, 3, 4) },
    ],
    [
      "CancelRequest with a 3.2 (32-byte) key",
      encodeCancelRequest({ processId: 7, secretKey: new Uint8Array(32).fill(9) }),
      { type: "CancelRequest", processId: 7, secretKey: new Uint8Array(32).fill(9) },
    ],
  ];
  for (const [name, encoded, expected] of cases) {
    it(`round-trips ${name}`, () => {
      const { code, body } = onlyMessage(encoded, "startup");
      expect(code).toBe("");
      expect(decodeStartupPacket(body)).toEqual(expected);
    });
  }

  it("matches the spec's bytes for SSLRequest (length 8, code 80877103)", () => {
    expect([...encodeSSLRequest()]).toEqual([0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);
  });

  it("keeps a __proto__ parameter as a plain key", () => {
    const { body } = onlyMessage(encodeStartupMessage({ params: JSON.parse('{"user":"u","__proto__":"x"}') as Record<string, string> }), "startup");
    const packet = decodeStartupPacket(body);
    expect(packet.type === "StartupMessage" && Object.entries(packet.params)).toEqual([
      ["user", "u"],
      ["__proto__", "x"],
    ]);
  });

  it("reads only the version of a non-3 protocol", () => {
    const { body } = onlyMessage(encodeStartupMessage({ protocolVersion: 2 << 16, params: { user: "u" } }), "startup");
    expect(decodeStartupPacket(body)).toMatchObject({ type: "StartupMessage", protocolVersion: 131072 });
  });

  it("rejects a StartupMessage without the final terminator", () => {
    const good = onlyMessage(encodeStartupMessage({ params: { user: "u" } }), "startup").body;
    expect(() => decodeStartupPacket(good.subarray(0, good.byteLength - 1))).toThrow(PostgresProtocolError);
  });
});

describe("typed frontend messages", () => {
  const messages: FrontendMessage[] = [
    { type: "Query", query: "SELECT 1; SELECT 'é'" },
    { type: "Parse", name: "s1", query: "SELECT $1::int + $2", paramTypes: [23, 0] },
    { type: "Parse", name: "", query: "SELECT 1", paramTypes: [] },
    {
      type: "Bind",
      portal: "p1",
      statement: "s1",
      paramFormats: [0, 1],
      params: [utf8("42"), bytes(0, 0, 0, 7), null],
      resultFormats: [1],
    },
    { type: "Bind", portal: "", statement: "", paramFormats: [], params: [], resultFormats: [] },
    { type: "Describe", target: "S", name: "s1" },
    { type: "Describe", target: "P", name: "" },
    { type: "Execute", portal: "p1", maxRows: 100 },
    { type: "Sync" },
    { type: "Flush" },
    { type: "Close", target: "S", name: "s1" },
    { type: "Close", target: "P", name: "p1" },
    { type: "FunctionCall", functionOid: 952, argFormats: [1], args: [bytes(0, 0, 1, 0), null], resultFormat: 1 },
    { type: "CopyData", data: utf8("1\tone\n") },
    { type: "CopyDone" },
    { type: "CopyFail", message: "aborted by user" },
    { type: "Terminate" },
  ];
  for (const msg of messages) {
    it(`round-trips ${msg.type} ${JSON.stringify(msg).slice(0, 60)}`, () => {
      const { code, body } = onlyMessage(encodeFrontendMessage(msg));
      expect(decodeFrontendMessage(code, body)).toEqual(msg);
    });
  }

  it("round-trips the 'p' family with the decoder that matches the request", () => {
    const password = onlyMessage(encodePasswordMessage({ password: "s3cret" }), "auth");
    expect(password.code).toBe("p");
    expect(decodePasswordMessage(password.body)).toEqual({ type: "PasswordMessage", password: "s3cret" });

    const initial = onlyMessage(encodeSASLInitialResponse({ mechanism: "SCRAM-SHA-256", data: utf8("n,,n=,r=abc") }), "auth");
    expect(decodeSASLInitialResponse(initial.body)).toEqual({
      type: "SASLInitialResponse",
      mechanism: "SCRAM-SHA-256",
      data: utf8("n,,n=,r=abc"),
    });
    const none = onlyMessage(encodeSASLInitialResponse({ mechanism: "SCRAM-SHA-256", data: null }), "auth");
    expect(decodeSASLInitialResponse(none.body).data).toBeNull();

    const response = onlyMessage(encodeSASLResponse({ data: utf8("c=biws,r=abc,p=xyz") }), "auth");
    expect(decodeSASLResponse(response.body)).toEqual({ type: "SASLResponse", data: utf8("c=biws,r=abc,p=xyz") });
    expect(decodeFrontendMessage("p", response.body)).toEqual({ type: "AuthenticationResponse", data: utf8("c=biws,r=abc,p=xyz") });
  });

  it("matches the spec's bytes for Query and Sync", () => {
    expect([...encodeQuery({ query: "x" })]).toEqual([0x51, 0, 0, 0, 6, 0x78, 0]);
    expect([...encodeSync()]).toEqual([0x53, 0, 0, 0, 4]);
  });

  it("reads parameter counts unsigned, as the server does (65535 parameters)", () => {
    const params = Array.from({ length: 65535 }, () => null);
    const { body } = onlyMessage(encodeBind({ portal: "", statement: "", paramFormats: [], params, resultFormats: [] }));
    expect(decodeBind(body).params).toHaveLength(65535);
    const parse = onlyMessage(encodeFrontendMessage({ type: "Parse", name: "", query: "q", paramTypes: Array(40000).fill(25) }));
    expect(decodeParse(parse.body).paramTypes).toHaveLength(40000);
  });

  it("rejects malformed bodies with PROTOCOL_VIOLATION", () => {
    const cases: [string, Uint8Array][] = [
      ["Q", utf8("no terminator")],
      ["Q", concat([utf8("a"), bytes(0, 1)])],
      ["D", concat([utf8("X"), utf8("s1"), bytes(0)])],
      ["E", concat([utf8("p"), bytes(0, 0, 0)])],
      ["S", bytes(1)],
      ["B", concat([bytes(0, 0), bytes(0, 0), bytes(0, 1), bytes(0xff, 0xff, 0xff, 0xfe)])],
      ["Z", bytes()],
    ];
    for (const [code, body] of cases) {
      try {
        decodeFrontendMessage(code, body);
        expect.unreachable(`decoding ${code} should fail`);
      } catch (error) {
        expect(error).toBeInstanceOf(PostgresProtocolError);
        expect((error as PostgresProtocolError).code).toBe("PROTOCOL_VIOLATION");
        expect((error as PostgresProtocolError).sqlState).toBe("08P01");
      }
    }
  });

  it("gives the same messages when a pipeline is split at every offset", () => {
    const stream = concat(messages.map(encodeFrontendMessage));
    const whole = readMessages([stream]);
    expect(whole).toHaveLength(messages.length);
    for (let at = 0; at <= stream.byteLength; at++) {
      expect(readMessages([stream.slice(0, at), stream.slice(at)])).toEqual(whole);
    }
    expect(readMessages(Array.from(stream, (b) => bytes(b)))).toEqual(whole);
  });
});

import { describe, expect, it } from "vitest";
import { DEFAULT_BACKEND_LIMITS } from "./framing.js";
import { concat, onlyMessage, readMessages, utf8 } from "../../test/helpers/frames.js";
import type { BackendMessage } from "./backend-messages.js";
import {
  decodeBackendMessage,
  decodeErrorFields,
  encodeBackendMessage,
  errorResponse,
  errorResponseFor,
  noticeResponse,
} from "./backend-messages.js";
import { PostgresProtocolError } from "./errors.js";
import { SqlState } from "./sqlstate.js";

const bytes = (...values: number[]): Uint8Array => new Uint8Array(values);

const messages: BackendMessage[] = [
  { type: "AuthenticationOk" },
  { type: "AuthenticationKerberosV5" },
  { type: "AuthenticationCleartextPassword" },
  { type: "AuthenticationMD5Password", salt: bytes(1, 2, 3, 4) },
  { type: "AuthenticationGSS" },
  { type: "AuthenticationGSSContinue", data: bytes(9, 8, 7) },
  { type: "AuthenticationSSPI" },
  { type: "AuthenticationSASL", mechanisms: ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"] },
  { type: "AuthenticationSASLContinue", data: utf8("r=abc,s=c2FsdA==,i=4096") },
  { type: "AuthenticationSASLFinal", data: utf8("v=c2lnbmF0dXJl") },
  { type: "ParameterStatus", name: "server_version", value: "15.20" },
  { type: "BackendKeyData", processId: 31337, secretKey: bytes(0xde, 0xad, 0xbe, 0xef) },
  { type: "ReadyForQuery", status: "idle" },
  { type: "ReadyForQuery", status: "in_transaction" },
  { type: "ReadyForQuery", status: "in_failed_transaction" },
  {
    type: "ErrorResponse",
    fields: {
      severity: "ERROR",
      severityNonLocalized: "ERROR",
      code: "42P01",
      message: 'relation "nope" does not exist',
      position: "15",
      file: "parse_relation.c",
      line: "1392",
      routine: "parserOpenTable",
    },
  },
  {
    type: "NoticeResponse",
    fields: { severity: "NOTICE", code: "00000", message: "table does not exist, skipping", hint: "none", where: "here" },
  },
  {
    type: "RowDescription",
    fields: [
      { name: "id", tableOid: 16384, columnAttribute: 1, typeOid: 23, typeSize: 4, typeModifier: -1, format: 0 },
      { name: "ñame", tableOid: 0, columnAttribute: 0, typeOid: 25, typeSize: -1, typeModifier: -1, format: 1 },
    ],
  },
  { type: "DataRow", values: [utf8("1"), null, bytes()] },
  { type: "CommandComplete", tag: "INSERT 0 3" },
  { type: "EmptyQueryResponse" },
  { type: "ParseComplete" },
  { type: "BindComplete" },
  { type: "CloseComplete" },
  { type: "NoData" },
  { type: "PortalSuspended" },
  { type: "ParameterDescription", paramTypes: [23, 25, 4294967295] },
  { type: "CopyInResponse", format: 0, columnFormats: [0, 0] },
  { type: "CopyOutResponse", format: 1, columnFormats: [1] },
  { type: "CopyBothResponse", format: 0, columnFormats: [] },
  { type: "CopyData", data: utf8("1\tone\n") },
  { type: "CopyDone" },
  { type: "NotificationResponse", processId: 99, channel: "jobs", payload: '{"id":1}' },
  { type: "FunctionCallResponse", result: bytes(0, 0, 0, 1) },
  { type: "FunctionCallResponse", result: null },
  { type: "NegotiateProtocolVersion", newestMinorVersion: 0, unrecognizedOptions: ["_pq_.compression"] },
];

describe("backend messages", () => {
  for (const msg of messages) {
    it(`round-trips ${msg.type} ${JSON.stringify(msg).slice(0, 50)}`, () => {
      const { code, body } = onlyMessage(encodeBackendMessage(msg), "backend");
      expect(decodeBackendMessage(code, body)).toEqual(msg);
    });
  }

  it("matches the spec's bytes for AuthenticationOk and ReadyForQuery", () => {
    expect([...encodeBackendMessage({ type: "AuthenticationOk" })]).toEqual([0x52, 0, 0, 0, 8, 0, 0, 0, 0]);
    expect([...encodeBackendMessage({ type: "ReadyForQuery", status: "idle" })]).toEqual([0x5a, 0, 0, 0, 5, 0x49]);
  });

  it("builds the ErrorResponse the gateway sends", () => {
    const { code, body } = onlyMessage(
      errorResponse({
        severity: "FATAL",
        code: SqlState.invalidPassword,
        message: 'password authentication failed for user "copilot-agent"',
        hint: "check the access key",
      }),
      "backend",
    );
    expect(code).toBe("E");
    expect(decodeBackendMessage(code, body)).toEqual({
      type: "ErrorResponse",
      fields: {
        severity: "FATAL",
        severityNonLocalized: "FATAL",
        code: "28P01",
        message: 'password authentication failed for user "copilot-agent"',
        hint: "check the access key",
      },
    });
    const notice = onlyMessage(noticeResponse({ severity: "WARNING", code: "01000", message: "recording degraded" }), "backend");
    expect(decodeBackendMessage(notice.code, notice.body)).toMatchObject({ type: "NoticeResponse", fields: { code: "01000" } });
  });

  it("answers a PostgresProtocolError with its client-safe wire form", () => {
    const error = new PostgresProtocolError("MESSAGE_TOO_LARGE", "message 'Q' of 2000000000 bytes exceeds the limit of 1");
    const { code, body } = onlyMessage(errorResponseFor(error), "backend");
    expect(decodeBackendMessage(code, body)).toMatchObject({
      fields: { severity: "FATAL", code: "08P01", message: "invalid message length" },
    });
  });

  it("skips unknown error field types and decodes truncated fields leniently on request", () => {
    const body = concat([utf8("S"), utf8("ERROR"), bytes(0), utf8("Z"), utf8("future"), bytes(0), utf8("C"), utf8("22012"), bytes(0), utf8("Mdivision by zero"), bytes(0, 0)]);
    expect(decodeErrorFields(body)).toEqual({ severity: "ERROR", code: "22012", message: "division by zero" });
    expect(decodeErrorFields(body.subarray(0, 31), "ErrorResponse", true)).toMatchObject({ code: "22012", message: "division" });
    expect(() => decodeErrorFields(body.subarray(0, 30))).toThrow(PostgresProtocolError);
  });

  it("rejects malformed bodies with PROTOCOL_VIOLATION", () => {
    const cases: [string, Uint8Array][] = [
      ["R", bytes(0, 0, 0, 6)],
      ["R", bytes(0, 0, 0, 5, 1, 2)],
      ["Z", bytes(0x58)],
      ["K", bytes(0, 0, 0, 1, 2)],
      ["D", bytes(0, 1, 0, 0, 0, 9, 1)],
      ["C", utf8("SELECT 1")],
      ["1", bytes(0)],
      ["v", bytes(0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff)],
      ["?", bytes()],
    ];
    for (const [code, body] of cases) {
      expect(() => decodeBackendMessage(code, body), `${code}`).toThrow(PostgresProtocolError);
    }
  });

  it("gives the same messages when a response stream is split at every offset", () => {
    const stream = concat(messages.map(encodeBackendMessage));
    const whole = readMessages([stream], { limits: DEFAULT_BACKEND_LIMITS });
    expect(whole).toHaveLength(messages.length);
    for (let at = 0; at <= stream.byteLength; at++) {
      const split = readMessages([stream.slice(0, at), stream.slice(at)], { limits: DEFAULT_BACKEND_LIMITS });
      expect(split.length).toBe(whole.length);
      split.forEach((m, i) => {
        expect(m.code).toBe(whole[i]!.code);
        expect(Buffer.compare(m.body, whole[i]!.body)).toBe(0);
      });
    }
  });
});

import { describe, expect, it } from "vitest";
import { concat, onlyMessage } from "../../test/helpers/frames.js";
import {
  decodeBackendMessage,
  encodeAuthentication,
  encodeBackendKeyData,
  encodeErrorResponse,
  encodeNoticeResponse,
  encodeParameterStatus,
  encodeReadyForQuery,
} from "./backend-messages.js";
import type { ClientStartupEvent } from "./client-startup.js";
import { ClientStartup } from "./client-startup.js";
import { PostgresProtocolError } from "./errors.js";
import {
  decodePasswordMessage,
  decodeStartupPacket,
  encodeCancelRequest,
  encodeGSSENCRequest,
  encodePasswordMessage,
  encodeQuery,
  encodeSSLRequest,
  encodeStartupMessage,
  encodeTerminate,
} from "./frontend-messages.js";
import { md5PasswordResponse } from "./auth/md5.js";
import { scramVerifier } from "./auth/scram.js";
import type { ServerConnectionEvent, ServerReady } from "./server-connection.js";
import { ServerConnection } from "./server-connection.js";

const PARAMETERS = { server_version: "15.20", client_encoding: "UTF8", DateStyle: "ISO, MDY", integer_datetimes: "on" };
const KEY = { processId: 4242, secretKey: new Uint8Array([1, 2, 3, 4]) };

function events<T>(next: () => T | undefined): T[] {
  const out: T[] = [];
  for (let e = next(); e !== undefined; e = next()) out.push(e);
  return out;
}

function code(fn: () => unknown): { code: string; sqlState: string } | undefined {
  try {
    fn();
  } catch (error) {
    if (error instanceof PostgresProtocolError) return { code: error.code, sqlState: error.sqlState };
    throw error;
  }
  return undefined;
}

type Decision = (event: ClientStartupEvent, gateway: ClientStartup) => Uint8Array | undefined;

/**
 * Run our ServerConnection (connector side) against our ClientStartup (gateway side) in memory.
 * `decide` plays the gateway: it answers each ClientStartup event.
 */
function converse(connector: ServerConnection, gateway: ClientStartup, decide: Decision): ServerReady {
  let toGateway: Uint8Array[] = [connector.start()];
  for (let round = 0; round < 20; round++) {
    const toConnector: Uint8Array[] = [];
    for (const chunk of toGateway) {
      gateway.push(chunk);
      for (const event of events(() => gateway.next())) {
        const reply = event.type === "write" ? event.bytes : decide(event, gateway);
        if (reply !== undefined) toConnector.push(reply);
      }
    }
    toGateway = [];
    for (const chunk of toConnector) {
      connector.push(chunk);
      for (const event of events(() => connector.next())) {
        if (event.type === "write") toGateway.push(event.bytes);
        else if (event.type === "upgradeTls") toGateway.push(connector.tlsEstablished());
        else if (event.type === "ready") return event;
      }
    }
  }
  throw new Error("handshake did not finish");
}

describe("ClientStartup ↔ ServerConnection", () => {
  it("SCRAM-SHA-256 after a refused SSLRequest reaches ReadyForQuery with the parameters and key", () => {
    const verifier = scramVerifier("access-key-123", { iterations: 4096 });
    const seen: ClientStartupEvent[] = [];
    const ready = converse(
      new ServerConnection({ user: "copilot-agent", password: "access-key-123", database: "app", params: { application_name: "psql" } }),
      new ClientStartup(),
      (event, gateway) => {
        seen.push(event);
        switch (event.type) {
          case "sslRequest":
            return gateway.answerSsl(false);
          case "startup":
            return gateway.requestScram({ verifier });
          case "authenticated":
            return gateway.complete({ parameters: PARAMETERS, backendKey: KEY });
          default:
            throw new Error(`unexpected ${event.type}`);
        }
      },
    );
    expect(seen.map((e) => e.type)).toEqual(["sslRequest", "startup", "authenticated"]);
    expect(seen[1]).toMatchObject({ type: "startup", user: "copilot-agent", database: "app", tls: false });
    expect(seen[1]?.type === "startup" && seen[1].params.application_name).toBe("psql");
    expect(ready).toEqual({
      type: "ready",
      parameters: PARAMETERS,
      backendKey: KEY,
      transactionStatus: "idle",
      authMethod: "scram-sha-256",
      tls: false,
    });
  });

  it("accepting TLS marks the startup as encrypted; cleartext password is handed to the caller", () => {
    const gateway = new ClientStartup();
    let password = "";
    let startupTls: boolean | undefined;
    const ready = converse(new ServerConnection({ user: "agent", password: "tok3n", tls: "require" }), gateway, (event, g) => {
      switch (event.type) {
        case "sslRequest":
          return g.answerSsl(true);
        case "startup":
          startupTls = event.tls;
          expect(event.database).toBe("agent"); // defaults to the user name
          return g.requestPassword();
        case "password":
          password = event.password;
          return g.complete({ parameters: PARAMETERS, backendKey: KEY });
        default:
          throw new Error(`unexpected ${event.type}`);
      }
    });
    expect(startupTls).toBe(true);
    expect(password).toBe("tok3n");
    expect(ready).toMatchObject({ authMethod: "password", tls: true });
  });

  it("a wrong SCRAM password ends in the gateway's 28P01, surfaced as SERVER_ERROR", () => {
    const verifier = scramVerifier("right", { iterations: 1024 });
    const failure = code(() =>
      converse(new ServerConnection({ user: "agent", password: "wrong", tls: "disable" }), new ClientStartup(), (event, g) => {
        if (event.type === "startup") return g.requestScram({ verifier });
        if (event.type === "authenticationFailed") {
          expect(event.reason).toBe("invalid_proof");
          expect(() => g.complete({ parameters: {} })).toThrow(PostgresProtocolError);
          return g.fail({ code: "28P01", message: 'password authentication failed for user "agent"' });
        }
        throw new Error(`unexpected ${event.type}`);
      }),
    );
    expect(failure).toEqual({ code: "SERVER_ERROR", sqlState: "28P01" });
  });

  it("an unknown identity runs SCRAM against a mock verifier and fails", () => {
    const events: string[] = [];
    const failure = code(() =>
      converse(new ServerConnection({ user: "ghost", password: "x", tls: "disable" }), new ClientStartup(), (event, g) => {
        events.push(event.type);
        if (event.type === "startup") return g.requestScram({ verifier: undefined, mockSecret: new Uint8Array(32) });
        if (event.type === "authenticationFailed") return g.fail({ code: "28P01", message: "password authentication failed" });
        throw new Error(`unexpected ${event.type}`);
      }),
    );
    expect(events).toEqual(["startup", "authenticationFailed"]);
    expect(failure?.sqlState).toBe("28P01");
  });

  it("the connector refuses a method outside allowedAuth (no cleartext to a possible impostor)", () => {
    const failure = code(() =>
      converse(
        new ServerConnection({ user: "agent", password: "x", tls: "disable", allowedAuth: ["scram-sha-256"] }),
        new ClientStartup(),
        (event, g) => (event.type === "startup" ? g.requestPassword() : undefined),
      ),
    );
    expect(failure?.code).toBe("UNSUPPORTED_AUTH");
  });
});

describe("ClientStartup", () => {
  function run(gateway: ClientStartup, ...chunks: Uint8Array[]): ClientStartupEvent[] {
    const out: ClientStartupEvent[] = [];
    for (const c of chunks) {
      gateway.push(c);
      out.push(...events(() => gateway.next()));
    }
    return out;
  }

  it("answers GSSENCRequest with N and goes on to the StartupMessage", () => {
    const gateway = new ClientStartup();
    const out = run(gateway, encodeGSSENCRequest(), encodeStartupMessage({ params: { user: "u", database: "d" } }));
    expect(out[0]).toEqual({ type: "write", bytes: new Uint8Array([0x4e]) });
    expect(out[1]).toMatchObject({ type: "startup", user: "u", database: "d" });
  });

  it("abandons, without a reply, a first packet whose length is impossible (a Terminate as the first bytes, or too long)", () => {
    expect(run(new ClientStartup(), encodeTerminate())).toEqual([{ type: "abandon", reason: expect.stringContaining("startup packet") }]);
    const tooLong = new Uint8Array([0x00, 0x01, 0x00, 0x00, 0x00, 0x03, 0x00, 0x00]);
    const gateway = new ClientStartup();
    expect(run(gateway, tooLong).map((e) => e.type)).toEqual(["abandon"]);
    expect(gateway.state).toBe("closed");
    expect(run(new ClientStartup(), new Uint8Array([0, 0, 0, 4])).map((e) => e.type)).toEqual(["abandon"]);
  });

  it("reports a CancelRequest with its key", () => {
    const out = run(new ClientStartup(), encodeCancelRequest({ processId: 77, secretKey: new Uint8Array([9, 9, 9, 9]) }));
    expect(out).toEqual([{ type: "cancelRequest", processId: 77, secretKey: new Uint8Array([9, 9, 9, 9]) }]);
  });

  it("negotiates a 3.2 client and _pq_ options down to 3.0", () => {
    const out = run(new ClientStartup(), encodeStartupMessage({ protocolVersion: (3 << 16) | 2, params: { user: "u", "_pq_.foo": "1" } }));
    expect(out.map((e) => e.type)).toEqual(["write", "startup"]);
    const first = out[0];
    const npv = first?.type === "write" ? onlyMessage(first.bytes, "backend") : undefined;
    expect(npv && decodeBackendMessage(npv.code, npv.body)).toEqual({
      type: "NegotiateProtocolVersion",
      newestMinorVersion: 0,
      unrecognizedOptions: ["_pq_.foo"],
    });
    expect(out[1]?.type === "startup" && Object.keys(out[1].params)).toEqual(["user"]);
  });

  it("rejects protocol 2.0 with 0A000 and a startup without user with 28000", () => {
    expect(code(() => run(new ClientStartup(), encodeStartupMessage({ protocolVersion: 2 << 16, params: {} })))).toEqual({
      code: "UNSUPPORTED_PROTOCOL",
      sqlState: "0A000",
    });
    expect(code(() => run(new ClientStartup(), encodeStartupMessage({ params: { database: "d" } })))).toEqual({
      code: "PROTOCOL_VIOLATION",
      sqlState: "28000",
    });
  });

  it("refuses plaintext bytes pipelined behind an SSLRequest it is about to accept", () => {
    const gateway = new ClientStartup();
    run(gateway, concat([encodeSSLRequest(), encodeStartupMessage({ params: { user: "u" } })]));
    expect(code(() => gateway.answerSsl(true))?.code).toBe("PROTOCOL_VIOLATION");
  });

  it("spots a direct TLS ClientHello and hands its bytes over", () => {
    const hello = new Uint8Array([0x16, 0x03, 0x01, 0x02, 0x00, 0x01]);
    const out = run(new ClientStartup(), hello);
    expect(out).toEqual([{ type: "directTls", bytes: [hello] }]);
  });

  it("hands bytes sent after the startup to the relay", () => {
    const gateway = new ClientStartup();
    const query = encodeQuery({ query: "SELECT 1" });
    run(gateway, encodeStartupMessage({ params: { user: "u" } }));
    gateway.requestPassword();
    const out = run(gateway, concat([encodePasswordMessage({ password: "pw" }), query]));
    expect(out).toEqual([{ type: "password", password: "pw" }]);
    const reply = gateway.complete({ parameters: { server_version: "15" } });
    expect(concat(gateway.remaining())).toEqual(query);
    expect(reply[0]).toBe(0x52); // AuthenticationOk first
  });

  it("reports Terminate during authentication, and misuse as INVALID_STATE", () => {
    const gateway = new ClientStartup();
    run(gateway, encodeStartupMessage({ params: { user: "u" } }));
    expect(code(() => gateway.answerSsl(true))?.code).toBe("INVALID_STATE");
    gateway.requestPassword();
    expect(run(gateway, encodeTerminate())).toEqual([{ type: "terminate" }]);
  });

  it("refuses messages other than 'p' during authentication", () => {
    const gateway = new ClientStartup();
    run(gateway, encodeStartupMessage({ params: { user: "u" } }));
    gateway.requestPassword();
    expect(code(() => run(gateway, encodeQuery({ query: "SELECT 1" })))?.code).toBe("PROTOCOL_VIOLATION");
  });
});

describe("ServerConnection against scripted server bytes", () => {
  function drive(conn: ServerConnection, ...chunks: Uint8Array[]): ServerConnectionEvent[] {
    const out: ServerConnectionEvent[] = [];
    for (const c of chunks) {
      conn.push(c);
      out.push(...events(() => conn.next()));
    }
    return out;
  }
  const afterOk = concat([
    encodeAuthentication({ type: "AuthenticationOk" }),
    encodeParameterStatus({ name: "server_version", value: "15.20" }),
    encodeBackendKeyData(KEY),
    encodeReadyForQuery({ status: "idle" }),
  ]);

  it("builds the StartupMessage from forwarded params, letting its own user/database win", () => {
    const conn = new ServerConnection({
      user: "app_ro",
      database: "app",
      tls: "disable",
      params: { user: "copilot-agent", database: "wrong", application_name: "psql", "_pq_.x": "y" },
    });
    const packet = decodeStartupPacket(onlyMessage(conn.start(), "startup").body);
    expect(packet.type === "StartupMessage" && { ...packet.params }).toEqual({ user: "app_ro", database: "app", application_name: "psql" });
  });

  it("refuses a NUL byte in a startup parameter (it would smuggle in another user) and in a cleartext password", () => {
    const smuggled = new ServerConnection({ user: "app_ro", tls: "disable", params: { application_name: "psql\0user\0postgres" } });
    expect(() => new ServerConnection({ user: "u", tls: "disable", params: { application_name: "a\0b" } }).start()).toThrow(
      'startup parameter "application_name" contains a NUL byte',
    );
    expect(code(() => smuggled.start())?.code).toBe("PROTOCOL_VIOLATION");
    const inName = new ServerConnection({ user: "app_ro", tls: "prefer", params: { "x\0user": "postgres" } });
    inName.start();
    expect(code(() => drive(inName, new Uint8Array([0x4e])))?.code).toBe("PROTOCOL_VIOLATION");
    const cleartext = new ServerConnection({ user: "u", password: "abc\0def", tls: "disable" });
    cleartext.start();
    expect(code(() => drive(cleartext, encodeAuthentication({ type: "AuthenticationCleartextPassword" })))?.code).toBe("AUTH_FAILED");
  });

  it("answers MD5 with the salted hash", () => {
    const conn = new ServerConnection({ user: "alice", password: "secret", tls: "disable" });
    conn.start();
    const salt = new Uint8Array([1, 2, 3, 4]);
    const out = drive(conn, encodeAuthentication({ type: "AuthenticationMD5Password", salt }));
    expect(out).toHaveLength(1);
    const first = out[0];
    const reply = first?.type === "write" ? onlyMessage(first.bytes, "auth") : undefined;
    expect(reply && decodePasswordMessage(reply.body).password).toBe(md5PasswordResponse("alice", "secret", salt));
    expect(drive(conn, afterOk)).toMatchObject([{ type: "ready", authMethod: "md5" }]);
  });

  it("trust: ready straight away; server bytes after ReadyForQuery are handed over", () => {
    const conn = new ServerConnection({ user: "u", tls: "prefer" });
    conn.start();
    const notice = encodeNoticeResponse({ fields: { severity: "NOTICE", code: "00000", message: "hi" } });
    const out = drive(conn, new Uint8Array([0x4e]));
    expect(out[0]?.type).toBe("write"); // StartupMessage after 'N'
    const rest = drive(conn, concat([notice, afterOk, notice]));
    expect(rest.map((e) => e.type)).toEqual(["notice", "ready"]);
    expect(rest[1]).toMatchObject({ authMethod: "trust", parameters: { server_version: "15.20" }, backendKey: KEY });
    expect(concat(conn.remaining())).toEqual(notice);
  });

  it("tls require: 'N' is TLS_REQUIRED; data injected after 'S' is a violation", () => {
    const refused = new ServerConnection({ user: "u", tls: "require" });
    refused.start();
    expect(code(() => drive(refused, new Uint8Array([0x4e])))?.code).toBe("TLS_REQUIRED");
    const injected = new ServerConnection({ user: "u", tls: "require" });
    injected.start();
    expect(code(() => drive(injected, concat([new Uint8Array([0x53]), afterOk])))?.code).toBe("PROTOCOL_VIOLATION");
  });

  it("surfaces the server's ErrorResponse (3D000 after AuthenticationOk) with its fields", () => {
    const conn = new ServerConnection({ user: "u", database: "nope", tls: "disable" });
    conn.start();
    try {
      drive(
        conn,
        encodeAuthentication({ type: "AuthenticationOk" }),
        encodeErrorResponse({ fields: { severity: "FATAL", code: "3D000", message: 'database "nope" does not exist' } }),
      );
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(PostgresProtocolError);
      const e = error as PostgresProtocolError;
      expect(e.code).toBe("SERVER_ERROR");
      expect(e.sqlState).toBe("3D000");
      expect(e.serverError?.message).toBe('database "nope" does not exist');
    }
  });

  it("refuses a startup message longer than its type's limit from its header, before buffering the body", () => {
    const conn = new ServerConnection({ user: "u", tls: "disable" });
    conn.start();
    drive(conn, encodeAuthentication({ type: "AuthenticationOk" }));
    // A ParameterStatus declaring 2 GiB: refused on its 5 header bytes, not after 2 GiB arrived.
    const header = new Uint8Array([0x53, 0x7f, 0xff, 0xff, 0xf0]);
    expect(code(() => drive(conn, header))?.code).toBe("MESSAGE_TOO_LARGE");
  });

  it("refuses AuthenticationOk before the SCRAM exchange completed", () => {
    const conn = new ServerConnection({ user: "u", password: "pw", tls: "disable" });
    conn.start();
    drive(conn, encodeAuthentication({ type: "AuthenticationSASL", mechanisms: ["SCRAM-SHA-256"] }));
    expect(code(() => drive(conn, encodeAuthentication({ type: "AuthenticationOk" })))?.code).toBe("AUTH_FAILED");
  });

  it("refuses GSS and SASL without SCRAM-SHA-256; asks for a password it lacks", () => {
    const gss = new ServerConnection({ user: "u", tls: "disable" });
    gss.start();
    expect(code(() => drive(gss, encodeAuthentication({ type: "AuthenticationGSS" })))?.code).toBe("UNSUPPORTED_AUTH");
    const plus = new ServerConnection({ user: "u", password: "p", tls: "disable" });
    plus.start();
    expect(code(() => drive(plus, encodeAuthentication({ type: "AuthenticationSASL", mechanisms: ["SCRAM-SHA-256-PLUS"] })))?.code).toBe(
      "UNSUPPORTED_AUTH",
    );
    const nopw = new ServerConnection({ user: "u", tls: "disable" });
    nopw.start();
    expect(code(() => drive(nopw, encodeAuthentication({ type: "AuthenticationCleartextPassword" })))?.code).toBe("AUTH_FAILED");
  });
});

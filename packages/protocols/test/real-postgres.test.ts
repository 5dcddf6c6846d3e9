/**
 * ServerConnection against real Postgres servers:
 *   - the shared server on 127.0.0.1:5432 (pg_hba says trust: it never asks for a password);
 *   - a throwaway cluster with scram-sha-256, md5 and password lines in its pg_hba, and TLS.
 * And the other direction: our SCRAM verifier and MD5 stored form equal what Postgres stores.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import pg from "pg";
import { PostgresProtocolError } from "../src/postgres/errors.js";
import { encodeQuery, encodeTerminate } from "../src/postgres/frontend-messages.js";
import { md5StoredPassword } from "../src/postgres/auth/md5.js";
import { formatScramVerifier, parseScramVerifier, scramVerifier } from "../src/postgres/auth/scram.js";
import { observe } from "./helpers/observer-harness.js";
import type { ThrowawayPostgres } from "./helpers/postgres-server.js";
import { postgresAvailable, startThrowawayPostgres } from "./helpers/postgres-server.js";
import { connectServer } from "./helpers/wire.js";

const SHARED_PORT = 5432;
const UNICODE_PASSWORD = "pässwörd I\u00adX";

async function failure(promise: Promise<unknown>): Promise<PostgresProtocolError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof PostgresProtocolError) return error;
    throw error;
  }
  throw new Error("expected a PostgresProtocolError");
}

/** Send one simple Query over an established connection and return what the observer saw. */
async function runQuery(socket: import("node:net").Socket | import("node:tls").TLSSocket, query: string) {
  const { sink, observer } = observe();
  observer.frontend(encodeQuery({ query }));
  socket.write(encodeQuery({ query }));
  await new Promise<void>((resolve, reject) => {
    socket.on("data", (chunk: Buffer) => {
      try {
        observer.backend(chunk);
        if (sink.completed.length > 0) resolve();
      } catch (error) {
        reject(error);
      }
    });
  });
  socket.end(encodeTerminate());
  return sink.completed;
}

describe("ServerConnection → shared Postgres on 127.0.0.1:5432 (trust)", () => {
  it("reaches ReadyForQuery without a password: ParameterStatus and BackendKeyData", async () => {
    const { socket, ready } = await connectServer(SHARED_PORT, {
      user: "postgres",
      database: "postgres",
      tls: "prefer", // the shared server has ssl=off: it answers 'N' and we go on in plaintext
      params: { application_name: "gatehouse-test" },
    });
    expect(ready.authMethod).toBe("trust");
    expect(ready.tls).toBe(false);
    expect(ready.parameters.server_version).toMatch(/^\d+/);
    expect(ready.parameters.application_name).toBe("gatehouse-test");
    expect(ready.backendKey?.processId).toBeGreaterThan(0);
    const completed = await runQuery(socket, "SELECT current_user, pg_backend_pid()");
    expect(completed[0]?.outcome).toMatchObject({ status: "ok", tag: "SELECT 1", rows: 1, transactionStatus: "idle" });
  });
});

describe("ServerConnection → shared Postgres: forwarded startup parameters", () => {
  // The client's own encoding must reach the server as the only client_encoding: pg-protocol's
  // serialize.startup() appends client_encoding=UTF8 after the given parameters, and the server takes
  // the last one, so a LATIN1 client would get UTF8 bytes (see src/postgres/README.md, pg-protocol).
  it("sends the client's client_encoding and DateStyle, and the server applies them", async () => {
    const { socket, ready } = await connectServer(SHARED_PORT, {
      user: "postgres",
      database: "postgres",
      tls: "disable",
      params: { client_encoding: "LATIN1", DateStyle: "German, DMY" },
    });
    socket.end(encodeTerminate());
    expect(ready.parameters.client_encoding).toBe("LATIN1");
    expect(ready.parameters.DateStyle).toBe("German, DMY");
  });
});

describe.skipIf(!postgresAvailable())("ServerConnection → throwaway Postgres with scram-sha-256, md5, password and TLS", () => {
  let server: ThrowawayPostgres;

  beforeAll(async () => {
    server = await startThrowawayPostgres([
      "hostssl all tls_user 127.0.0.1/32 scram-sha-256",
      "hostnossl all tls_user 127.0.0.1/32 reject",
      "host all scram_user 127.0.0.1/32 scram-sha-256",
      "host all uni_user 127.0.0.1/32 scram-sha-256",
      "host all md5_user 127.0.0.1/32 md5",
      "host all clear_user 127.0.0.1/32 password",
    ]);
    server.sql(`SET password_encryption = 'scram-sha-256';
      CREATE ROLE scram_user LOGIN PASSWORD 'scram-pw';
      CREATE ROLE tls_user LOGIN PASSWORD 'tls-pw';
      CREATE ROLE uni_user LOGIN PASSWORD '${UNICODE_PASSWORD}';
      CREATE ROLE clear_user LOGIN PASSWORD 'clear-pw';`);
    server.sql("SET password_encryption = 'md5'; CREATE ROLE md5_user LOGIN PASSWORD 'md5-pw';");
  });
  afterAll(() => server?.stop());

  it("SCRAM-SHA-256: reaches ReadyForQuery and verified the server's signature", async () => {
    const { socket, ready } = await connectServer(server.port, { user: "scram_user", password: "scram-pw", database: "postgres", tls: "disable" });
    expect(ready).toMatchObject({ authMethod: "scram-sha-256", tls: false, transactionStatus: "idle" });
    expect(ready.parameters.server_version).toMatch(/^15\./);
    expect(ready.parameters.session_authorization).toBe("scram_user");
    expect(ready.backendKey?.secretKey.byteLength).toBe(4);
    const completed = await runQuery(socket, "SELECT 1; SELECT current_user");
    expect(completed.map((c) => c.outcome.tag)).toEqual(["SELECT 1", "SELECT 1"]);
  });

  it("SCRAM-SHA-256 with a non-ASCII password (SASLprep on both sides)", async () => {
    const { socket, ready } = await connectServer(server.port, { user: "uni_user", password: UNICODE_PASSWORD, database: "postgres", tls: "disable" });
    expect(ready.authMethod).toBe("scram-sha-256");
    socket.destroy();
  });

  it("SCRAM-SHA-256 with a wrong password: the server's 28P01 as SERVER_ERROR", async () => {
    const error = await failure(connectServer(server.port, { user: "scram_user", password: "nope", database: "postgres", tls: "disable" }));
    expect(error.code).toBe("SERVER_ERROR");
    expect(error.sqlState).toBe("28P01");
    expect(error.serverError?.message).toContain("password authentication failed");
  });

  it("MD5: reaches ReadyForQuery", async () => {
    const { socket, ready } = await connectServer(server.port, { user: "md5_user", password: "md5-pw", database: "postgres", tls: "disable" });
    expect(ready.authMethod).toBe("md5");
    expect(ready.backendKey?.processId).toBeGreaterThan(0);
    socket.destroy();
  });

  it("cleartext password: reaches ReadyForQuery, and is refused when not allowed", async () => {
    const { socket, ready } = await connectServer(server.port, { user: "clear_user", password: "clear-pw", database: "postgres", tls: "disable" });
    expect(ready.authMethod).toBe("password");
    socket.destroy();
    const error = await failure(
      connectServer(server.port, { user: "clear_user", password: "clear-pw", database: "postgres", tls: "disable", allowedAuth: ["scram-sha-256"] }),
    );
    expect(error.code).toBe("UNSUPPORTED_AUTH");
  });

  it("TLS: SSLRequest → 'S' → upgrade → SCRAM over TLS", async () => {
    const { socket, ready } = await connectServer(server.port, { user: "tls_user", password: "tls-pw", database: "postgres", tls: "require" });
    expect(ready).toMatchObject({ tls: true, authMethod: "scram-sha-256" });
    const completed = await runQuery(socket, "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()");
    expect(completed[0]?.outcome.rows).toBe(1);
  });

  it("an unknown database: the server's 3D000 as SERVER_ERROR", async () => {
    const error = await failure(connectServer(server.port, { user: "scram_user", password: "scram-pw", database: "nope", tls: "disable" }));
    expect(error.sqlState).toBe("3D000");
  });

  it("our SCRAM verifier and MD5 stored form equal what Postgres stores", async () => {
    const client = new pg.Client({ host: server.dir, port: server.port, user: "postgres", database: "postgres" });
    await client.connect();
    try {
      const rows = (await client.query<{ rolname: string; rolpassword: string }>("SELECT rolname, rolpassword FROM pg_authid WHERE rolname IN ('scram_user', 'uni_user', 'md5_user')")).rows;
      const stored = new Map(rows.map((r) => [r.rolname, r.rolpassword]));
      for (const [role, password] of [["scram_user", "scram-pw"], ["uni_user", UNICODE_PASSWORD]] as const) {
        const theirs = parseScramVerifier(stored.get(role)!);
        const ours = scramVerifier(password, { iterations: theirs.iterations, salt: theirs.salt });
        expect(formatScramVerifier(ours)).toBe(stored.get(role));
      }
      expect(md5StoredPassword("md5_user", "md5-pw")).toBe(stored.get("md5_user"));
    } finally {
      await client.end();
    }
  });
});

/**
 * Real clients (psql, pgbench, and our own ServerConnection) through a mini gateway made of
 * this package's parts, to a real Postgres: the startup machines interoperate, the relay works,
 * the observer records what ran. The relayed bytes are captured and replayed split at every
 * offset. `UPDATE_FIXTURES=1` refreshes test/fixtures/ from these captures.
 */
import { execFile } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { encodeCancelRequest, encodeQuery, encodeTerminate } from "../src/postgres/frontend-messages.js";
import { scramVerifier } from "../src/postgres/auth/scram.js";
import type { Capture, MiniGateway } from "./helpers/mini-gateway.js";
import { startMiniGateway } from "./helpers/mini-gateway.js";
import { saveFixture } from "./helpers/fixtures.js";
import { observe } from "./helpers/observer-harness.js";
import type { ThrowawayPostgres } from "./helpers/postgres-server.js";
import { postgresAvailable, startThrowawayPostgres } from "./helpers/postgres-server.js";
import { replay } from "./helpers/replay.js";
import { connectServer, openSocket } from "./helpers/wire.js";

const run = promisify(execFile);
const KEY = "agent-access-key";

describe.skipIf(!postgresAvailable())("psql and pgbench through a gateway built from ClientStartup + ServerConnection + observer", () => {
  let server: ThrowawayPostgres;
  let gateway: MiniGateway;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    server = await startThrowawayPostgres([]);
    server.sql("CREATE DATABASE appdb");
    await run("pgbench", ["-i", "-s", "1", "-q", "-h", server.dir, "-p", String(server.port), "-U", "postgres", "appdb"]);
    gateway = await startMiniGateway({
      identities: new Map([["copilot-agent", scramVerifier(KEY, { iterations: 4096 })]]),
      connections: new Map([["app", { port: server.port, user: "postgres", database: "appdb" }]]),
    });
    env = { ...process.env, PGHOST: "127.0.0.1", PGPORT: String(gateway.port), PGUSER: "copilot-agent", PGDATABASE: "app", PGPASSWORD: KEY };
  });
  afterAll(async () => {
    await gateway?.close();
    server?.stop();
  });

  /** The session the gateway recorded for the last client, once it closed. */
  async function lastSession(): Promise<Capture> {
    const session = gateway.sessions[gateway.sessions.length - 1]!;
    await session.closed;
    return session;
  }

  function expectReplayStable(session: Capture, name: string, description: string): void {
    const fixture = { description, chunks: session.chunks };
    const reference = replay(fixture);
    const longest = Math.max(...session.chunks.map((c) => c.bytes.byteLength));
    for (let cut = 0; cut < longest; cut++) expect(replay(fixture, cut)).toEqual(reference);
    if (process.env.UPDATE_FIXTURES === "1") saveFixture(name, fixture);
  }

  it("psql: several statements in one Query, an error, SCRAM through the gateway", async () => {
    const { stdout } = await run("psql", ["-X", "-A", "-t", "-c", "SELECT 1 AS a; SELECT count(*) FROM pgbench_branches; SELECT 1/0; SELECT 3"], { env }).catch((e: { stdout: string }) => e);
    expect(stdout).toContain("1");
    const session = await lastSession();
    expect(session.sink.completed.map((c) => [c.command.text, c.outcome.status, c.outcome.tag ?? c.outcome.error?.code])).toEqual([
      ["SELECT 1 AS a", "ok", "SELECT 1"],
      ["SELECT count(*) FROM pgbench_branches", "ok", "SELECT 1"],
      ["SELECT 1/0", "error", "22012"],
      ["SELECT 3", "skipped", undefined],
    ]);
    expect(session.sink.events.some((e) => e.event === "terminated")).toBe(true);
    expectReplayStable(session, "psql-simple", "psql -c 'SELECT 1 AS a; SELECT count(*) FROM pgbench_branches; SELECT 1/0; SELECT 3'");
  });

  it("psql: a wrong access key is refused with 28P01", async () => {
    const result = await run("psql", ["-X", "-c", "SELECT 1"], { env: { ...env, PGPASSWORD: "wrong" } }).catch((e: { code: number; stderr: string }) => e);
    expect("code" in result && result.code).toBe(2);
    expect("stderr" in result && result.stderr).toContain('password authentication failed for user "copilot-agent"');
  });

  it("psql \\copy in and out: kind copy, bytes and rows", async () => {
    const csv = join(server.dir, "rows.csv");
    writeFileSync(csv, Array.from({ length: 50 }, (_, i) => `${i},note ${i}`).join("\n") + "\n");
    await run(
      "psql",
      ["-X", "-v", "ON_ERROR_STOP=1", "-c", "CREATE TABLE notes (id int, body text)", "-c", `\\copy notes FROM '${csv}' CSV`, "-c", "\\copy (SELECT * FROM notes WHERE id < 10) TO STDOUT"],
      { env },
    );
    const session = await lastSession();
    const copies = session.sink.completed.filter((c) => c.command.kind === "copy");
    expect(copies.map((c) => [c.outcome.tag, c.outcome.rows, c.outcome.copy?.direction])).toEqual([
      ["COPY 50", 50, "in"],
      ["COPY 10", 10, "out"],
    ]);
    expect(copies[0]?.outcome.copy?.bytes).toBeGreaterThan(500);
    expectReplayStable(session, "psql-copy", "psql \\copy 50 CSV rows in, 10 rows out");
  });

  for (const mode of ["extended", "prepared"] as const) {
    it(`pgbench -M ${mode}: every statement of every transaction recorded with its parameters`, async () => {
      const transactions = 3;
      await run("pgbench", ["-n", "-M", mode, "-t", String(transactions), "-c", "1", "app"], { env });
      const session = await lastSession();
      const executes = session.sink.completed.filter((c) => c.command.kind === "execute");
      // tpcb-like: BEGIN; UPDATE accounts; SELECT; UPDATE tellers; UPDATE branches; INSERT history; END
      expect(executes).toHaveLength(7 * transactions);
      expect(executes.every((c) => c.outcome.status === "ok")).toBe(true);
      const update = executes.find((c) => c.command.text.startsWith("UPDATE pgbench_accounts"));
      expect(update?.command.params).toHaveLength(2);
      expect(update?.outcome).toMatchObject({ tag: "UPDATE 1", rows: 1, transactionStatus: "in_transaction" });
      expect(executes.filter((c) => c.command.text === "END;").every((c) => c.outcome.transactionStatus === "idle")).toBe(true);
      if (mode === "prepared") expect(update?.command.statement).not.toBe("");
      expectReplayStable(session, `pgbench-${mode}`, `pgbench -n -M ${mode} -t ${transactions} (tpcb-like)`);
    });
  }

  it("CancelRequest: the gateway's key is mapped to the real one and the query is cancelled", async () => {
    const { socket, ready } = await connectServer(gateway.port, { user: "copilot-agent", password: KEY, database: "app", tls: "disable" });
    expect(ready.authMethod).toBe("scram-sha-256");
    const { sink, observer } = observe();
    const done = new Promise<void>((resolve) => {
      socket.on("data", (chunk: Buffer) => {
        observer.backend(chunk);
        if (sink.completed.length > 0) resolve();
      });
    });
    observer.frontend(encodeQuery({ query: "SELECT pg_sleep(30)" }));
    socket.write(encodeQuery({ query: "SELECT pg_sleep(30)" }));
    await new Promise((r) => setTimeout(r, 200));
    const cancel = await openSocket(gateway.port);
    cancel.end(encodeCancelRequest(ready.backendKey!));
    await done;
    socket.end(encodeTerminate());
    expect(sink.completed[0]?.outcome).toMatchObject({ status: "error", error: { code: "57014" } });
  });
});

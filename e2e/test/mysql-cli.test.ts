import { rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mariadb, mariadbDump, MariadbTerminal, maskDump, mysqlslap } from "../lib/mysql-clients.js";
import { rawMysql } from "../lib/raw-mysql.js";
import { IDENTITY, startMysqlStack, type MysqlEndpoint, type MysqlStack } from "../lib/mysql-stack.js";
import { statements, type Recorded } from "../lib/postgres-stack.js";

// The MariaDB command-line clients a DBA uses — mariadb (-e, a script with
// errors, an interactive session with Ctrl-C), mariadb-dump, mysqlslap — run
// the same way against the server directly and through gateway + connector:
// what the user sees must not differ, and through the gateway the record
// names who ran what with which outcome.

let stack: MysqlStack | undefined;
let direct: MysqlEndpoint;

beforeAll(async () => {
  // One stack per file: the gateway, a connector and the MariaDB resource (reached directly too), one
  // with TLS so that --ssl runs directly as well (a throwaway with a certificate when the local server has none).
  stack = await startMysqlStack({ tls: true });
  direct = stack.direct();
});

afterAll(async () => {
  await stack?.stop();
});

/** The newest ended session of `agent` on `app` that ran a statement matching `marker`. */
async function sessionRunning(marker: string): Promise<Recorded> {
  const sessions = await stack!.waitForSessions((s) => s.identity.name === IDENTITY && s.connection === "app", { count: 1 });
  for (const s of sessions) if (s.events.some((e) => e.command?.includes(marker))) return s;
  // Not ended yet or not listed first: wait for the one that has it.
  const deadline = Date.now() + 20_000;
  for (;;) {
    const again = await stack!.waitForSessions((s) => s.identity.name === IDENTITY && s.connection === "app");
    const found = again.find((s) => s.events.some((e) => e.command?.includes(marker)));
    if (found) return found;
    if (Date.now() > deadline) throw new Error(`no recorded session ran ${marker}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** `connectionInUser`: through the gateway, the connection named in the user (`agent#app`), for clients that log in without a database. */
const paths: Array<{ name: string; endpoint: (o?: { connectionInUser?: boolean }) => MysqlEndpoint }> = [
  { name: "directly", endpoint: () => direct },
  { name: "through the gateway", endpoint: (o) => stack!.endpoint(o) },
];

for (const path of paths) {
  describe(`the mariadb client ${path.name}`, () => {
    const recorded = path.endpoint === paths[1]!.endpoint;

    it("-e: the rows come back, tab-separated; through the gateway the record names identity, connection and statement", async () => {
      const marker = `cli_e_${Date.now()}`;
      const out = await mariadb(path.endpoint(), ["-e", `SELECT COUNT(*), SUM(amount), '${marker}' FROM orders`]);
      expect(out.stderr).toBe("");
      expect(out.code).toBe(0);
      expect(out.stdout).toBe(`5000\t249750.00\t${marker}\n`);
      if (!recorded) return;
      const { session, events } = await sessionRunning(marker);
      expect(session).toMatchObject({ identity: { name: IDENTITY, method: "access_key" }, connection: "app", protocol: "mysql", connector: "dc1", clientAddress: "127.0.0.1", endReason: "client_closed" });
      expect(events.at(0)?.kind).toBe("connect");
      expect(events.at(-1)?.kind).toBe("disconnect");
      const query = events.find((e) => e.command === `SELECT COUNT(*), SUM(amount), '${marker}' FROM orders`);
      expect(query).toMatchObject({ kind: "query", outcome: "ok", details: expect.objectContaining({ rows: 1 }) });
    });

    it("--ssl: the same answer over TLS (through the gateway the key goes as cleartext inside TLS)", async () => {
      expect(stack!.server.tls).toBe(true);
      const out = await mariadb(path.endpoint(), ["-e", "SELECT COUNT(*), @@have_ssl FROM orders; SHOW SESSION STATUS LIKE 'Ssl_version'"], { tls: true });
      expect(out.stderr).toBe("");
      // Directly, the server's own status shows the TLS session; through the gateway the client's TLS ends at the gateway.
      expect(out.stdout).toMatch(recorded ? /^5000\tYES\n(Ssl_version\t[^\n]*\n)?$/ : /^5000\tYES\nSsl_version\tTLSv1\.[23]\n$/);
    });

    it("a script with an error and --force: the statements around it run, the error is MariaDB's own, line and code", async () => {
      const marker = `cli_force_${Date.now()}`;
      const script = `SELECT '${marker}', 1;\nSELECT * FROM no_such_table;\nINSERT INTO imports (id, note) VALUES (${Date.now() % 1_000_000}, '${marker}');\nSELECT note FROM imports WHERE note = '${marker}';\n`;
      // Without --force the client stops at the error, exits 1 and runs nothing after it.
      const stoppedMarker = `cli_stopped_${Date.now()}`;
      const stopped = await mariadb(path.endpoint(), [], { input: script.replaceAll(marker, stoppedMarker) });
      expect(stopped.code).toBe(1);
      expect(stopped.stdout).toBe(`${stoppedMarker}\t1\n`);
      expect(stopped.stderr).toMatch(/^ERROR 1146 \(42S02\) at line 2: Table '[^']+\.no_such_table' doesn't exist$/m);
      // With --force it reports the error and carries on (and, being forced, exits 0).
      const out = await mariadb(path.endpoint(), ["--force"], { input: script });
      expect(out.code).toBe(0);
      expect(out.stderr).toMatch(/^ERROR 1146 \(42S02\) at line 2: Table '[^']+\.no_such_table' doesn't exist$/m);
      expect(out.stdout).toBe(`${marker}\t1\n${marker}\n`);
      if (!recorded) return;
      const recordedSession = await sessionRunning(marker);
      const ran = statements(recordedSession).filter((e) => e.kind === "query");
      expect(ran.map((e) => e.outcome)).toEqual(["ok", "error", "ok", "ok"]);
      expect(ran[1]).toMatchObject({ command: "SELECT * FROM no_such_table", details: expect.objectContaining({ errno: 1146 }) });
      expect(ran[2]!.details).toMatchObject({ affectedRows: 1 });
    });

    for (const connectionInUser of recorded ? [false, true] : [false]) {
    it(`interactive, in a terminal${connectionInUser ? ", user agent#app" : ""}: Ctrl-C cancels a running SELECT SLEEP(30) (KILL QUERY on a second connection, which names no database) and the session carries on`, async () => {
      const sleepMarker = `cancelled_${connectionInUser ? "in_user" : "plain"}_${Date.now()}`;
      const terminal = new MariadbTerminal(path.endpoint({ connectionInUser }));
      try {
        // The client says "MariaDB [db]>" or "MySQL [db]>" by the server version it was greeted with.
        await terminal.waitFor(/^(MariaDB|MySQL) \[[^\]]+\]>\s*$/m);
        terminal.type(`SELECT SLEEP(30) AS ${sleepMarker};`);
        // Let the statement reach the server before interrupting it.
        await new Promise((r) => setTimeout(r, 1500));
        const interrupted = Date.now();
        terminal.interrupt();
        const screen = await terminal.waitFor(/^ERROR 1317 \(70100\): Query execution was interrupted$/m, 15_000);
        expect(Date.now() - interrupted).toBeLessThan(10_000);
        expect(screen).toMatch(/^Ctrl-C -- query killed\.$/m);
        terminal.type("SELECT 'still here' AS after_cancel;");
        await terminal.waitFor(/\| still here +\|/);
        terminal.type("quit");
      } finally {
        terminal.close();
      }
      if (!recorded) return;
      // The session that ran the statement (the client's Ctrl-C connection is a session of its own).
      const session = await sessionRunning(sleepMarker);
      const sleep = session.events.find((e) => e.command === `SELECT SLEEP(30) AS ${sleepMarker}`);
      expect(sleep).toMatchObject({ outcome: "error", details: expect.objectContaining({ errno: 1317 }) });
      expect(sleep!.durationUs).toBeLessThan(10_000_000);
      expect(session.events.some((e) => e.command === "SELECT 'still here' AS after_cancel" && e.outcome === "ok")).toBe(true);
    });
    }

    it("mariadb-dump of the database equals a direct dump (version, host and date lines masked)", async () => {
      const [through, baseline] = await Promise.all([mariadbDump(path.endpoint({ connectionInUser: true })), mariadbDump(direct)]);
      expect(through.stderr).toBe("");
      expect(through.code).toBe(0);
      expect(through.stdout).toContain("CREATE TABLE `orders`");
      expect(through.stdout).toMatch(/INSERT INTO `orders` VALUES\s*\(1,'customer-1',0\.10,'/);
      expect(maskDump(through.stdout)).toBe(maskDump(baseline.stdout));
    });

    it("LOAD DATA LOCAL INFILE: directly it loads the file; through the gateway it is refused by default, with the server's own error, and nothing is loaded", async () => {
      const file = join(tmpdir(), `gatehouse-e2e-infile-${process.pid}-${recorded ? "gw" : "direct"}.csv`);
      const id = recorded ? 900_001 : 900_002;
      writeFileSync(file, `${id},from a local file\n`);
      try {
        const out = await mariadb(path.endpoint(), ["--local-infile=1", "-e", `LOAD DATA LOCAL INFILE '${file}' INTO TABLE imports FIELDS TERMINATED BY ','`]);
        const loaded = await mariadb(direct, ["-e", `SELECT COUNT(*) FROM imports WHERE id = ${id}`]);
        if (!recorded) {
          expect(out.stderr).toBe("");
          expect(loaded.stdout).toBe("1\n");
          return;
        }
        expect(out.code).toBe(1);
        // Off, the gateway does not pass the local-files capability on: MariaDB itself refuses (docs/configuration.md).
        expect(out.stderr).toMatch(/^ERROR 4166 \(HY000\)/m);
        expect(loaded.stdout).toBe("0\n");
      } finally {
        rmSync(file, { force: true });
      }
    });

    it("the greeting shows the resource's server version (what the client's banner prints and its MariaDB/MySQL paths branch on)", async () => {
      // After the sessions above, the gateway has reached the resource through connection app.
      const server = await rawMysql(direct.host, direct.port);
      const greeted = await rawMysql(path.endpoint().host, path.endpoint().port);
      try {
        expect(greeted.greeting.serverVersion).toBe(server.greeting.serverVersion);
      } finally {
        server.destroy();
        greeted.destroy();
      }
    });

    it("mysqlslap: every client runs its share of the queries", async () => {
      const out = await mysqlslap(path.endpoint({ connectionInUser: true }), { query: "SELECT customer, amount FROM orders WHERE id = 4242", concurrency: 4, queries: 200 });
      expect(out.stderr).toBe("");
      expect(out.code).toBe(0);
      expect(out).toMatchObject({ clients: 4, queriesPerClient: 50 });
      expect(out.averageSeconds).toBeGreaterThanOrEqual(0);
      if (!recorded) return;
      // Older sessions are ended already: wait until the slap's own have all been recorded.
      let slapped: Array<{ outcome: string | null }> = [];
      for (const deadline = Date.now() + 30_000; slapped.length < 200 && Date.now() < deadline; await new Promise((r) => setTimeout(r, 200))) {
        const sessions = await stack!.waitForSessions((s) => s.identity.name === IDENTITY && s.connection === "app");
        slapped = sessions.flatMap((s) => s.events).filter((e) => e.command === "SELECT customer, amount FROM orders WHERE id = 4242");
      }
      expect(slapped).toHaveLength(200);
      expect(slapped.every((e) => e.outcome === "ok")).toBe(true);
    });
  });
}

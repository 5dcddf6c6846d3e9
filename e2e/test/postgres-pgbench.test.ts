import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from "vitest";
import { appName, startPostgresStack, statements, type EventJson, type PostgresStack } from "../lib/postgres-stack.js";

// pgbench drives the three query protocols libpq speaks (simple, extended with
// unnamed statements, named prepared statements) hard and concurrently; every
// transaction must come through clean and every statement be in the record.

let stack: PostgresStack;

beforeAll(async () => {
  // The store in Postgres: a run records thousands of events (and this file checks that driver too).
  stack = await startPostgresStack({ orders: 10, store: "postgres" });
});

afterAll(async () => {
  await stack?.stop();
});

const CLIENTS = 4;
const TRANSACTIONS = 50;

/** The statements of pgbench's built-in tpcb-like transaction, as the server receives them. */
const TPCB = [
  /^BEGIN;?$/,
  /^UPDATE pgbench_accounts SET abalance = abalance \+ (\$1|-?\d+) WHERE aid = (\$2|\d+);?$/,
  /^SELECT abalance FROM pgbench_accounts WHERE aid = (\$1|\d+);?$/,
  /^UPDATE pgbench_tellers SET tbalance = tbalance \+ (\$1|-?\d+) WHERE tid = (\$2|\d+);?$/,
  /^UPDATE pgbench_branches SET bbalance = bbalance \+ (\$1|-?\d+) WHERE bid = (\$2|\d+);?$/,
  /^INSERT INTO pgbench_history \(tid, bid, aid, delta, mtime\) VALUES \((\$1|\d+), (\$2|\d+), (\$3|\d+), (\$4|-?\d+), (CURRENT_TIMESTAMP)\);?$/,
  /^END;?$/,
];

function pgbench(args: string[], application: string) {
  return stack.run("pgbench", [...args, "-h", stack.listen.host, "-p", String(stack.listen.port), "-U", "agent", "app"], {
    env: { PGPASSWORD: stack.key, PGSSLMODE: "require", PGAPPNAME: application },
    timeoutMs: 120_000,
  });
}

/** Events of every session pgbench opened for one run, the transactions' statements per pattern. */
async function recordedRun(application: string): Promise<{ tpcb: EventJson[][]; sessions: EventJson[][] }> {
  // One session per client, plus pgbench's own (the pre-run vacuum and checks).
  const sessions = await stack.waitForSessions((s) => s.clientApplication === application, { count: CLIENTS + 1, connection: "app" });
  expect(sessions).toHaveLength(CLIENTS + 1);
  const perSession = sessions.map((s) => statements(s));
  const all = perSession.flat();
  const tpcb = TPCB.map((pattern) => all.filter((e) => pattern.test(e.command ?? "")));
  return { tpcb, sessions: perSession };
}

describe("pgbench through the gateway", () => {
  it("pgbench -i initialises its tables (COPY of 100000 rows included)", async () => {
    const app = appName("pgbench-init");
    const out = await pgbench(["-i", "-s", "1", "-q"], app);
    expect(out.stderr).toMatch(/done in [\d.]+ s/);
    expect(out.code).toBe(0);
    const [recorded] = await stack.waitForSessions((s) => s.clientApplication === app, { connection: "app" });
    const events = statements(recorded!);
    const copy = events.find((e) => e.kind === "copy");
    expect(copy).toMatchObject({ outcome: "ok", details: { tag: "COPY 100000", rows: 100000, copy: { direction: "in" } } });
    expect(events.every((e) => e.outcome === "ok")).toBe(true);
  });

  for (const mode of ["simple", "extended", "prepared"] as const) {
    it(`pgbench -M ${mode}: every transaction clean, every statement recorded`, async () => {
      const app = appName(`pgbench-${mode}`);
      const out = await pgbench(["-M", mode, "-c", String(CLIENTS), "-j", "2", "-t", String(TRANSACTIONS)], app);
      expect(out.code, out.stderr).toBe(0);
      expect(out.stdout).toContain(`number of transactions actually processed: ${CLIENTS * TRANSACTIONS}/${CLIENTS * TRANSACTIONS}`);
      expect(out.stdout).toContain("number of failed transactions: 0");

      const { tpcb, sessions } = await recordedRun(app);
      for (const [i, events] of tpcb.entries()) {
        expect(events.length, `statement ${i + 1} of the transaction: ${TPCB[i]}`).toBe(CLIENTS * TRANSACTIONS);
        expect(events.filter((e) => e.outcome !== "ok")).toEqual([]);
      }
      const [begin, updateAccount, select, , , insert, end] = tpcb;
      expect(begin!.every((e) => e.details?.transaction === "in_transaction")).toBe(true);
      expect(end!.every((e) => e.details?.tag === "COMMIT" && e.details?.transaction === "idle")).toBe(true);
      expect(updateAccount!.every((e) => e.details?.tag === "UPDATE 1")).toBe(true);
      expect(select!.every((e) => e.details?.tag === "SELECT 1" && e.details?.rows === 1)).toBe(true);
      expect(insert!.every((e) => e.details?.tag === "INSERT 0 1")).toBe(true);

      if (mode === "simple") {
        expect(updateAccount!.every((e) => e.kind === "query" && e.params === null)).toBe(true);
      } else {
        // Extended and prepared: an Execute per statement, with its bound values.
        expect(updateAccount!.every((e) => e.kind === "execute")).toBe(true);
        const sample = updateAccount![0]!;
        expect(sample.command).toBe("UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2;");
        // The values as the client bound them (text format): the delta and the account.
        expect(updateAccount!.every((e) => e.params?.length === 2 && e.params.every((p) => typeof p === "string" && /^-?\d+$/.test(p)))).toBe(true);
        // The SELECT that follows each UPDATE reads back the same account.
        for (const events of sessions) {
          const updates = events.filter((e) => TPCB[1]!.test(e.command ?? ""));
          const selects = events.filter((e) => TPCB[2]!.test(e.command ?? ""));
          expect(selects.map((e) => e.params)).toEqual(updates.map((e) => [e.params![1]]));
        }
        const statementNames = new Set(updateAccount!.map((e) => e.details?.statement));
        if (mode === "prepared") expect([...statementNames].every((n) => typeof n === "string" && n !== "")).toBe(true);
        else expect([...statementNames]).toEqual([""]);
      }
    });
  }

  it("pipeline mode (several Bind/Execute before one Sync): every statement recorded with its own values", async () => {
    const app = appName("pgbench-pipeline");
    const dir = mkdtempSync(join(tmpdir(), "gatehouse-e2e-pgbench-"));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const script = join(dir, "pipeline.sql");
    writeFileSync(
      script,
      [
        "\\set aid random(1, 100000)",
        "\\set delta random(-5000, 5000)",
        "\\startpipeline",
        "SELECT abalance FROM pgbench_accounts WHERE aid = :aid;",
        "UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;",
        "SELECT abalance FROM pgbench_accounts WHERE aid = :aid;",
        "\\endpipeline",
        "",
      ].join("\n"),
    );
    const clients = 2;
    const transactions = 25;
    const out = await pgbench(["-M", "extended", "-n", "-c", String(clients), "-t", String(transactions), "-f", script], app);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toContain(`number of transactions actually processed: ${clients * transactions}/${clients * transactions}`);
    // -n: no pre-run vacuum, but pgbench still opens a session of its own first.
    const sessions = await stack.waitForSessions((s) => s.clientApplication === app, { count: clients + 1, connection: "app" });
    expect(sessions).toHaveLength(clients + 1);
    let transactionsSeen = 0;
    for (const recorded of sessions) {
      const events = statements(recorded);
      expect(events.every((e) => e.kind === "execute" && e.outcome === "ok")).toBe(true);
      for (let i = 0; i + 2 < events.length; i += 3) {
        const [before, update, after] = [events[i]!, events[i + 1]!, events[i + 2]!];
        expect(before.command).toBe("SELECT abalance FROM pgbench_accounts WHERE aid = $1;");
        expect(update.command).toBe("UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2;");
        expect(update.details?.tag).toBe("UPDATE 1");
        expect([before.params, after.params]).toEqual([[update.params![1]], [update.params![1]]]);
        transactionsSeen++;
      }
    }
    expect(transactionsSeen).toBe(clients * transactions);
  });
});

import type { Sql } from "postgres";

// Fills a migrated, empty store database with a realistic record, fast: sessions and events made by
// SQL generate_series on the server, no round trip per row. Deterministic (every choice is a hash of
// the row's number), so two runs search the same data.
//
// The mix, per session: one identity (skewed: copilot-agent holds about a third of the record, the
// rarest ones well under 1%), one of 30 connections (12 postgres, 6 mysql, 6 ssh, 5 kubernetes,
// 1 tcp), a start spread over the last 365 days; 1% are refused (one `denied` or `auth_failed`
// event), tcp sessions have a connect and a disconnect, the rest 4–36 events (about 20): connect,
// the protocol's commands, disconnect. About 3–5% of commands fail, with the status each listener
// records (sqlstate, exitStatus, httpStatus, exitCode); about 1 in 1000 SQL statements is a DROP
// TABLE and 1 in 1000 a TRUNCATE.

/** Identities and their share of sessions, in percent (sums to 100). */
export const IDENTITIES: ReadonlyArray<[string, number]> = [
  ["copilot-agent", 33],
  ["claude-agent", 20],
  ["ci-deploy", 12],
  ["alice", 8],
  ["bob", 7],
  ["data-pipeline", 6],
  ["sre-oncall", 5],
  ["migration-bot", 4],
  ["carol", 3],
  ["auditor", 1],
  ["rare-agent", 1],
];

/** Connections and their protocol. */
export const CONNECTIONS: ReadonlyArray<[string, string]> = [
  ...["orders-db", "users-db", "billing-db", "analytics-db", "inventory-db", "auth-db", "search-db", "reports-db", "staging-db", "dev-db", "ledger-db", "events-db"].map((n): [string, string] => [n, "postgres"]),
  ...["shop-mysql", "cms-mysql", "legacy-mysql", "wiki-mysql", "crm-mysql", "forum-mysql"].map((n): [string, string] => [n, "mysql"]),
  ...["bastion", "web-1", "web-2", "worker-1", "db-host", "build-box"].map((n): [string, string] => [n, "ssh"]),
  ...["prod-k8s", "staging-k8s", "dev-k8s", "data-k8s", "edge-k8s"].map((n): [string, string] => [n, "kubernetes"]),
  ["redis-tcp", "tcp"],
];

const SQL_COMMANDS = [
  "SELECT id, email, created_at FROM users WHERE org_id = # ORDER BY id LIMIT 100",
  "SELECT count(*) FROM orders WHERE status = 'open' AND customer_id = #",
  "UPDATE orders SET status = 'shipped' WHERE id = #",
  "INSERT INTO audit_log (actor, action, target) VALUES ('agent', 'read', #)",
  "SELECT * FROM invoices WHERE id = #",
  "BEGIN",
  "COMMIT",
  "SELECT p.name, sum(li.qty) FROM products p JOIN line_items li ON li.product_id = p.id WHERE li.order_id = # GROUP BY p.name",
  "DELETE FROM sessions WHERE expires_at < now() - interval '# seconds'",
  "SHOW search_path",
  "SELECT version()",
  "EXPLAIN ANALYZE SELECT * FROM shipments WHERE order_id = #",
  "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'orders'",
  "UPDATE users SET last_seen_at = now() WHERE id = #",
  "SELECT id, total FROM orders WHERE created_at > now() - interval '1 day' ORDER BY total DESC LIMIT #",
  "INSERT INTO events (kind, payload) VALUES ('signup', '{\"user\": #}')",
  "SELECT * FROM pg_stat_activity WHERE pid = #",
  "ALTER TABLE reports ADD COLUMN IF NOT EXISTS note_# text",
  "CREATE INDEX CONCURRENTLY IF NOT EXISTS orders_customer_# ON orders (customer_id)",
  "SELECT sum(amount) FROM payments WHERE invoice_id = #",
];

const SSH_COMMANDS = [
  "ls -la /var/log/app",
  "systemctl status app-#",
  "tail -n 200 /var/log/app/app.log",
  "cat /etc/app/config.yaml",
  "df -h",
  "ps aux | grep worker-#",
  "rm -rf /tmp/build-#",
  "journalctl -u app --since '1 hour ago'",
  "git -C /srv/app pull --ff-only",
  "docker ps --filter name=app-#",
  "du -sh /var/lib/app/*",
  "kill -HUP #",
  "curl -fsS http://localhost:8080/healthz",
  "grep -c ERROR /var/log/app/app.log",
  "sudo systemctl restart app-#",
  "uptime",
  "free -m",
  "ss -tlnp",
  "find /srv/app -name '*.pyc' -delete",
  "tar czf /tmp/logs-#.tgz /var/log/app",
];

const K8S_COMMANDS = [
  "get pods -n prod",
  "get deployments/web-# -n prod",
  "logs pods/web-# -n prod -c app",
  "delete pods/web-# -n prod",
  "describe pods/worker-# -n prod",
  "get events -n prod --field-selector involvedObject.name=web-#",
  "patch deployments/web -n prod",
  "get secrets -n prod",
  "scale deployments/worker --replicas=# -n prod",
  "rollout restart deployments/web -n prod",
  "get nodes",
  "top pods -n prod",
  "get configmaps/app-# -n prod",
  "apply -f deployments/web-# -n staging",
  "get services -n prod",
  "get ingresses -n prod",
  "delete jobs/backfill-# -n data",
  "get cronjobs -n data",
  "get pods -n kube-system",
  "auth can-i delete pods -n prod",
];

const sqlArray = (values: readonly string[]) => `array[${values.map((v) => `'${v.replace(/'/g, "''")}'`).join(", ")}]`;

/** A deterministic non-negative bigint from a number and a salt. */
const hash = (expr: string, salt: number) => `abs(hashint8((${expr})::int8 * 31 + ${salt})::int8)`;

/** How many sessions make about `events` events (about 19.3 events a session, see above). */
export function sessionsFor(events: number): number {
  return Math.max(1, Math.round(events / 19.3));
}

export async function fillSessions(sql: Sql, sessions: number): Promise<void> {
  const identityBuckets = IDENTITIES.flatMap(([name, share]) => Array.from({ length: share }, () => name));
  await sql.unsafe(`
    insert into sessions (id, identity_name, auth_method, connection, protocol, connector, client_address, client_application,
                          started_at, ended_at, end_reason, event_count, final_hash, seal_signature)
    select 's' || substr(md5(g::text), 1, 20), identities[(1 + h1 % ${identityBuckets.length})::int], 'access_key',
           connections[c], protocols[c], 'dc1', '10.0.' || (g % 200) || '.' || (g % 250), 'bench',
           started, started + interval '10 minutes', case when denied then 'denied' else 'client_closed' end,
           case when denied then 1 when protocols[c] = 'tcp' then 2 else 4 + h3 % 33 end,
           md5('final' || g) || md5('hash' || g), md5('seal' || g)
    from generate_series(1, ${sessions}) g,
         lateral (select ${hash("g", 1)} as h1, ${hash("g", 2)} as h2, ${hash("g", 3)} as h3,
                         (1 + ${hash("g", 4)} % ${CONNECTIONS.length})::int as c) x,
         lateral (select now() - (h2 % (365 * 86400)) * interval '1 second' as started, h3 % 100 = 7 as denied) y,
         lateral (select ${sqlArray(identityBuckets)} as identities,
                         ${sqlArray(CONNECTIONS.map(([n]) => n))} as connections,
                         ${sqlArray(CONNECTIONS.map(([, p]) => p))} as protocols) z`);
}

/**
 * The events of the sessions that started in [from, to), with the session's identity, connection and
 * protocol copied in as migration 006's insert function does.
 */
export async function fillEvents(sql: Sql, from: Date, to: Date): Promise<number> {
  const result = await sql.unsafe(
    `
    insert into events (session_id, seq, ts, kind, command, params, outcome, details, duration_us, prev_hash, hash,
                        identity_name, connection, protocol)
    select s.id, q, s.started_at + q * interval '3 seconds' + (h % 2000) * interval '1 millisecond',
           k.kind, k.command, null, k.outcome, k.details, 150 + h % 40000,
           md5(s.id || q) || md5(q || s.id), md5(s.id || q || 'h') || md5('h' || q || s.id),
           s.identity_name, s.connection, s.protocol
    from sessions s
    cross join lateral generate_series(1, s.event_count) q
    cross join lateral (select ${hash("hashtext(s.id)::int8 * 64 + q", 5)} as h) r
    cross join lateral (select h % 1000 as permille, (h / 1000) % 100 as percent, ((h / 100000) % 20)::int as pick,
                               ((h / 2000000) % 100000)::text as n) p
    cross join lateral (
      select
        case
          when s.end_reason = 'denied' then case when h % 2 = 0 then 'denied' else 'auth_failed' end
          when q = 1 then 'connect'
          when q = s.event_count then 'disconnect'
          when s.protocol in ('postgres', 'mysql') then case when pick < 16 then 'query' else 'execute' end
          when s.protocol = 'ssh' then case when pick < 12 then 'exec' else 'shell_input' end
          when s.protocol = 'kubernetes' then case when pick = 19 then 'exec' else 'request' end
          else 'disconnect'
        end as kind,
        case
          when s.end_reason = 'denied' then null
          when q = 1 or q = s.event_count then null
          when s.protocol in ('postgres', 'mysql') then
            case when permille = 0 then 'DROP TABLE tmp_' || n
                 when permille = 1 then 'TRUNCATE TABLE staging_' || n
                 else replace((${sqlArray(SQL_COMMANDS)})[1 + pick], '#', n) end
          when s.protocol = 'ssh' then replace((${sqlArray(SSH_COMMANDS)})[1 + pick], '#', n)
          when s.protocol = 'kubernetes' then
            case when pick = 19 then 'exec pods/web-' || n || ' -n prod -c app -- sh'
                 else replace((${sqlArray(K8S_COMMANDS)})[1 + pick], '#', n) end
        end as command,
        case
          when s.end_reason = 'denied' then 'error'
          when q > 1 and q < s.event_count and percent < 4 and not (s.protocol = 'ssh' and pick >= 12) then 'error'
          else 'ok'
        end as outcome
    ) k0
    cross join lateral (select k0.kind, k0.command, k0.outcome,
      case
        when k0.kind in ('denied', 'auth_failed') then jsonb_build_object('reason', case when h % 2 = 0 then 'not_allowed' else 'wrong_key' end)
        when k0.kind = 'connect' then jsonb_build_object('connector', 'dc1')
        when k0.kind = 'disconnect' then jsonb_build_object('bytesUp', h % 100000, 'bytesDown', h % 10000000, 'endedBy', 'client')
        when s.protocol = 'postgres' then
          case when k0.outcome = 'error' then jsonb_build_object('sqlstate', (array['42P01', '23505', '42501', '57014', '40001'])[(1 + h % 5)::int], 'message', 'statement failed')
               else jsonb_build_object('tag', 'SELECT ' || (h % 500), 'rows', h % 500) end
        when s.protocol = 'mysql' then
          case when k0.outcome = 'error' then jsonb_build_object('errno', 1146, 'sqlstate', (array['42S02', '23000', '42000', 'HY000'])[(1 + h % 4)::int], 'message', 'statement failed')
               else jsonb_build_object('affectedRows', h % 50, 'resultSets', 1) end
        when k0.kind = 'exec' and s.protocol = 'ssh' then
          jsonb_build_object('exitStatus', case when k0.outcome = 'error' then (array[1, 2, 127, 130])[(1 + h % 4)::int] else 0 end, 'bytesIn', 0, 'bytesOut', h % 20000)
        when k0.kind = 'exec' then
          jsonb_build_object('httpStatus', 101, 'exitCode', case when k0.outcome = 'error' then 1 else 0 end, 'tty', true)
        when s.protocol = 'kubernetes' then
          jsonb_build_object('verb', 'get', 'httpStatus', case when k0.outcome = 'error' then (array[403, 404, 409, 500])[(1 + h % 4)::int] else 200 end, 'bytesOut', h % 50000)
        else null
      end as details) k
    where s.started_at >= $1 and s.started_at < $2`,
    [from, to],
  );
  return result.count;
}

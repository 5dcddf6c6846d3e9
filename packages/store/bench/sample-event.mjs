/** A realistic Postgres statement event, as the gateway records one: text, bound parameters, tag and rows. */
export function sampleEvent(sessionId, seq) {
  return {
    sessionId,
    seq,
    timeUs: Date.now() * 1000 + (seq % 1000),
    kind: "execute",
    command: "select id, email, created_at from users where org_id = $1 and created_at > $2 order by id limit 100",
    params: [String(seq % 97), "2024-01-01T00:00:00Z"],
    outcome: "ok",
    details: { tag: "SELECT 100", rows: 100, transaction: "I", statement: "", portal: "" },
    durationUs: 830 + (seq % 200),
  };
}

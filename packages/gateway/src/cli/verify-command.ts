import { readFileSync } from "node:fs";
import { GatewayError } from "../errors.js";
import { readSigningKey, parsePublicKeys, type PublicKey } from "../evidence/signing.js";
import { verifySession, type SessionVerdict, type VerifyFailure } from "../evidence/verify.js";
import { parseCommand, UsageError, write, type CommandContext } from "./command.js";
import { openRecordSource } from "./record-access.js";

export const VERIFY_HELP = `Usage:
  gatehouse verify ID... [options]
  gatehouse verify --all [options]

Recomputes each session's hash chain and checks its seal, and reports every
session that fails: the first bad sequence number and why (edited, deleted,
reordered, inserted, unsealed, bad_seal, unknown_key). Sessions still open are
checked as far as they go. Exits 1 when anything fails, 0 otherwise.

Where the record is read (first that applies):
  --store-url URL      the Postgres store (or GATEHOUSE_STORE_URL)
  --config FILE        that gateway config's store (store.url, or its embedded store)
  --gateway URL        through a running gateway's API (admin token: GATEHOUSE_ADMIN_TOKEN)
  --data-dir DIR       default ./data: its embedded store, or, while a gateway
                       runs from it, that gateway's API
  --ca FILE            with the API: PEM CA of its certificate, when api.tls
                       uses a private CA (or GATEHOUSE_CA)

Options:
  --public-key FILE    PEM public key(s) the seals must verify with (several
                       BEGIN PUBLIC KEY blocks: one per gateway/rotation);
                       default: the public half of DATA_DIR/signing-key.pem
  --json               print a JSON report`;

const PAGE = 200;

export async function verifyCommand(ctx: CommandContext): Promise<number> {
  const { values, positionals } = parseCommand(
    ctx.argv,
    {
      all: { type: "boolean" },
      "public-key": { type: "string" },
      "store-url": { type: "string" },
      config: { type: "string" },
      gateway: { type: "string" },
      "data-dir": { type: "string" },
      ca: { type: "string" },
      json: { type: "boolean" },
    },
    Number.POSITIVE_INFINITY,
  );
  if (values.help) {
    write(ctx.stdout, VERIFY_HELP);
    return 0;
  }
  if ((positionals.length === 0) === !values.all) throw new UsageError("verify needs session IDs or --all (not both)");
  const keys = publicKeys(values["public-key"], values["data-dir"] ?? ctx.env.GATEHOUSE_DATA_DIR ?? "./data");

  const source = await openRecordSource(values, ctx.env);
  const verdicts: SessionVerdict[] = [];
  const missing: string[] = [];
  try {
    if (values.all) {
      for await (const page of source.pages(PAGE)) {
        const bySession = new Map<string, typeof page.events>();
        for (const e of page.events) {
          let list = bySession.get(e.sessionId);
          if (!list) bySession.set(e.sessionId, (list = []));
          list.push(e);
        }
        for (const session of page.sessions) verdicts.push(verifySession(session, bySession.get(session.id) ?? [], keys));
      }
    } else {
      for (const id of positionals) {
        const found = await source.session(id);
        if (!found) missing.push(id);
        else verdicts.push(verifySession(found.session, found.events, keys));
      }
    }
  } finally {
    await source.close();
  }

  const failures = verdicts.flatMap((v) => (v.failure ? [v.failure] : []));
  const open = verdicts.filter((v) => v.open && v.ok).length;
  if (values.json) {
    write(ctx.stdout, JSON.stringify({ source: source.where, sessions: verdicts.length, ok: verdicts.length - failures.length, open, failures, missing }, null, 2));
  } else {
    for (const f of failures) write(ctx.stdout, formatFailure(f));
    for (const id of missing) write(ctx.stdout, `MISSING  ${id}  no such session`);
    const summary = `${verdicts.length} session${verdicts.length === 1 ? "" : "s"} verified from ${source.where}: ${verdicts.length - failures.length} ok${open > 0 ? ` (${open} still open)` : ""}, ${failures.length} failed${missing.length > 0 ? `, ${missing.length} missing` : ""}`;
    write(failures.length + missing.length > 0 ? ctx.stderr : ctx.stdout, summary);
  }
  return failures.length + missing.length > 0 ? 1 : 0;
}

/** One line per failure: FAIL, the session, the first bad seq, the reason, what was found. */
export function formatFailure(f: VerifyFailure): string {
  return `FAIL  ${f.sessionId}  ${f.seq === null ? "session" : `seq ${f.seq}`}  ${f.reason}  ${f.message}`;
}

function publicKeys(file: string | undefined, dataDir: string): PublicKey[] {
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (cause) {
      throw new GatewayError("SIGNING_KEY_UNUSABLE", `cannot read ${file}: ${(cause as Error).message}`, { cause });
    }
    return parsePublicKeys(text, file);
  }
  const own = readSigningKey(dataDir);
  if (!own) throw new UsageError(`no public key to check seals with: pass --public-key FILE (gatehouse keys signing prints a gateway's), or --data-dir of the gateway`);
  return [{ keyId: own.keyId, key: own.publicKey }];
}

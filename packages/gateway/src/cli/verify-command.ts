import { readFileSync } from "node:fs";
import type { Checkpoint, SessionRecord } from "@gatehouse/store";
import { GatewayError } from "../errors.js";
import { parseCheckpointFile } from "../evidence/checkpoint-file.js";
import { verifyCheckpoints, type ChainFailure, type CheckpointReport } from "../evidence/verify-checkpoints.js";
import { readSigningKey, parsePublicKeys, type PublicKey } from "../evidence/signing.js";
import { storedPublicKeys } from "../evidence/seal-keys.js";
import { verifySession, type SessionVerdict, type VerifyFailure } from "../evidence/verify.js";
import { parseCommand, UsageError, write, type CommandContext } from "./command.js";
import { openRecordSource } from "./record-access.js";

export const VERIFY_HELP = `Usage:
  gatehouse verify ID... [options]
  gatehouse verify --all [options]

Recomputes each session's hash chain and checks its seal, and reports every
session that fails: the first bad sequence number and why (edited, deleted,
reordered, inserted, unsealed, bad_seal, unknown_key). Sessions still open are
checked as far as they go. Then checks the gateways' signed checkpoint chains
(cut, edited, bad_seal, unknown_key) and holds the sessions up against them: a
session opened but gone from the store (missing; unless a signed retention cut
covers it), sealed but shown open (unsealed), or never opened by a gateway
(inserted). Exits 1 when anything fails, 0 otherwise.

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
                       BEGIN PUBLIC KEY blocks: one per gateway/rotation), and
                       no others; default: the public half of
                       DATA_DIR/signing-key.pem and every gateway's key
                       registered in the store (gatehouse keys seal-keys),
                       retired ones included
  --checkpoints FILE   an export of the checkpoints (gatehouse checkpoints export),
                       kept where the store's owner cannot write: the store's
                       chains must hold everything in it
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
      checkpoints: { type: "string" },
      json: { type: "boolean" },
    },
    Number.POSITIVE_INFINITY,
  );
  if (values.help) {
    write(ctx.stdout, VERIFY_HELP);
    return 0;
  }
  if ((positionals.length === 0) === !values.all) throw new UsageError("verify needs session IDs or --all (not both)");
  const given = values["public-key"] === undefined ? undefined : publicKeys(values["public-key"]);
  const exported = values.checkpoints === undefined ? undefined : readCheckpoints(values.checkpoints);

  const source = await openRecordSource(values, ctx.env);
  let keys: TrustedKey[];
  try {
    keys = given?.map((k) => ({ ...k, from: "public-key" as const })) ?? (await defaultKeys(source, values["data-dir"] ?? ctx.env.GATEHOUSE_DATA_DIR ?? "./data"));
  } catch (error) {
    await source.close();
    throw error;
  }
  const verdicts: SessionVerdict[] = [];
  const missing: string[] = [];
  const sessions = new Map<string, SessionRecord>();
  let report: CheckpointReport | undefined;
  try {
    // Checkpoints before sessions: a session and its opening or seal reach the store together, so
    // what the checkpoints read here speak of is in the sessions read after (see verify-checkpoints.ts).
    const { checkpoints: stored, heads } = await source.checkpoints();
    if (values.all) {
      for await (const page of source.pages(PAGE)) {
        const bySession = new Map<string, typeof page.events>();
        for (const e of page.events) {
          let list = bySession.get(e.sessionId);
          if (!list) bySession.set(e.sessionId, (list = []));
          list.push(e);
        }
        const chunksOf = new Map<string, typeof page.chunks>();
        for (const c of page.chunks) {
          let list = chunksOf.get(c.sessionId);
          if (!list) chunksOf.set(c.sessionId, (list = []));
          list.push(c);
        }
        for (const session of page.sessions) {
          sessions.set(session.id, session);
          verdicts.push(verifySession(session, bySession.get(session.id) ?? [], keys, chunksOf.get(session.id) ?? []));
        }
      }
    } else {
      for (const id of positionals) {
        const found = await source.session(id);
        if (!found) missing.push(id);
        else {
          sessions.set(id, found.session);
          verdicts.push(verifySession(found.session, found.events, keys, found.chunks));
        }
      }
    }
    if (stored.length > 0 || exported !== undefined) {
      report = verifyCheckpoints({ stored, ...(exported ? { exported } : {}), heads, sessions, complete: values.all === true, keys });
    }
  } finally {
    await source.close();
  }

  // A session's own failure comes first; the checkpoints add the sessions it could not see.
  const failures = verdicts.flatMap((v) => (v.failure ? [v.failure] : []));
  const failed = new Set(failures.map((f) => f.sessionId));
  for (const f of report?.sessionFailures ?? []) {
    if (failed.has(f.sessionId)) continue;
    failed.add(f.sessionId);
    failures.push(f);
  }
  const deleted = failures.filter((f) => !sessions.has(f.sessionId)).length;
  const badSessions = failures.length - deleted;
  const chainFailures = report?.chainFailures ?? [];
  const open = verdicts.filter((v) => v.open && !failed.has(v.sessionId)).length;
  const anyFailure = failures.length + missing.length + chainFailures.length > 0;
  if (values.json) {
    const checkpoints = report && { count: report.checkpoints, gateways: report.gateways, retained: report.retained, failures: chainFailures };
    write(ctx.stdout, JSON.stringify({ source: source.where, keys: keys.map((k) => ({ keyId: k.keyId, from: k.from })), sessions: verdicts.length, ok: verdicts.length - badSessions, open, failures, missing, ...(checkpoints ? { checkpoints } : {}) }, null, 2));
  } else {
    for (const f of failures) write(ctx.stdout, formatFailure(f));
    for (const f of chainFailures) write(ctx.stdout, formatChainFailure(f));
    for (const id of missing) write(ctx.stdout, `MISSING  ${id}  no such session`);
    let summary = `${verdicts.length} session${verdicts.length === 1 ? "" : "s"} verified from ${source.where}: ${verdicts.length - badSessions} ok${open > 0 ? ` (${open} still open)` : ""}, ${badSessions} failed${missing.length > 0 ? `, ${missing.length} missing` : ""}`;
    if (deleted > 0) summary += `, ${deleted} deleted from the store`;
    if (report) {
      summary += `; ${report.checkpoints} checkpoint${report.checkpoints === 1 ? "" : "s"} of ${report.gateways.length} gateway${report.gateways.length === 1 ? "" : "s"} checked`;
      if (chainFailures.length > 0) summary += `, ${chainFailures.length} failed`;
      if (report.retained > 0) summary += `, ${report.retained} session${report.retained === 1 ? "" : "s"} removed by signed retention`;
    }
    write(anyFailure ? ctx.stderr : ctx.stdout, summary);
  }
  return anyFailure ? 1 : 0;
}

/** One line per broken checkpoint chain: the gateway's key id, the first bad seq, the reason. */
export function formatChainFailure(f: ChainFailure): string {
  return `FAIL  checkpoints ${f.gateway}  seq ${f.seq}  ${f.reason}  ${f.message}`;
}

function readCheckpoints(file: string): Checkpoint[] {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (cause) {
    throw new GatewayError("CHECKPOINTS_UNREADABLE", `cannot read ${file}: ${(cause as Error).message}`, { cause });
  }
  return parseCheckpointFile(text, file);
}

/** One line per failure: FAIL, the session, the first bad seq, the reason, what was found. */
export function formatFailure(f: VerifyFailure): string {
  const where = f.stream ? `stream ${f.stream.id}${f.stream.chunk === null ? "" : ` chunk ${f.stream.chunk}`}` : f.seq === null ? "session" : `seq ${f.seq}`;
  return `FAIL  ${f.sessionId}  ${where}  ${f.reason}  ${f.message}`;
}

function publicKeys(file: string): PublicKey[] {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (cause) {
    throw new GatewayError("SIGNING_KEY_UNUSABLE", `cannot read ${file}: ${(cause as Error).message}`, { cause });
  }
  return parsePublicKeys(text, file);
}

/**
 * Without --public-key: the data directory's own key (when there is one) and every gateway's key
 * registered in the store. The store's keys are as trustworthy as the store: for a check that does
 * not take the store's word for which keys are the gateways', pin them with --public-key.
 */
/** A key `verify` checks seals with, and where it came from (the JSON report names them). */
type TrustedKey = PublicKey & { from: "public-key" | "data-dir" | "store" };

async function defaultKeys(source: { sealKeys(): Promise<{ keyId: string; publicKeyPem: string }[]> }, dataDir: string): Promise<TrustedKey[]> {
  const own = readSigningKey(dataDir);
  const keys: TrustedKey[] = own ? [{ keyId: own.keyId, key: own.publicKey, from: "data-dir" }] : [];
  let why = "the store has no gateway keys registered";
  const stored = await source.sealKeys().catch((error: unknown) => {
    // A reader without access to gateway_keys (an auditor role granted only the record) still verifies with the local key.
    why = `the store's gateway keys could not be read (${(error as Error).message})`;
    return [];
  });
  for (const key of storedPublicKeys(stored)) if (!keys.some((k) => k.keyId === key.keyId)) keys.push({ ...key, from: "store" });
  if (keys.length === 0) throw new UsageError(`no public key to check seals with: ${why}; pass --public-key FILE (gatehouse keys signing prints a gateway's), or --data-dir of the gateway`);
  return keys;
}

import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { readFile } from "node:fs/promises";
import { API_TARGET_HELP, API_TARGET_OPTIONS, ApiClient, resolveApiTarget } from "./api-client.js";
import { parseCommand, UsageError, write, type CommandContext } from "./command.js";
import { readSigningKey, SIGNING_KEY_FILE } from "../evidence/signing.js";

export const KEYS_HELP = `Usage:
  gatehouse keys create --identity NAME [--expires DURATION] [--json]
  gatehouse keys add-ssh --identity NAME [--expires DURATION] [--json] FILE.pub|-
  gatehouse keys list [--identity NAME] [--json]
  gatehouse keys revoke ID
  gatehouse keys signing [--data-dir DIR] [--json]
  gatehouse keys seal-keys [--json]
  gatehouse keys retire-seal KEY_ID

Access keys are the passwords identities present to the gateway (psql's
password, PGPASSWORD...). "create" prints a new key once; the gateway keeps
only verifiers. DURATION is a number with s, m, h or d ("30d"); without it the
key does not expire. Keys are managed through the gateway's API.

"add-ssh" registers an SSH public key (an OpenSSH .pub file, or "-" for
standard input) for an identity: its ssh, scp, sftp and rsync log in to the
gateway's SSH listener with the private half. ed25519, ecdsa and RSA of 2048
bits or more are taken; a key belongs to one identity only. It prints the key's
id and SHA256 fingerprint (as ssh-keygen -l prints it). "list" shows both
kinds; "revoke" takes the id of either.

"signing" prints the public half of the gateway's Ed25519 session-sealing key
(PEM; made in DATA_DIR/signing-key.pem at first start; with --workers, one per
worker in DATA_DIR/workers/I, printed one after the other). Give it to whoever
runs "gatehouse verify --public-key FILE".

"seal-keys" lists every gateway's seal public key registered in the store
(each gateway registers its own at start): key id, gateway, created, retired.
"gatehouse verify" on any gateway of the store checks seals with them.
"retire-seal" marks a key retired: the gateway holding it makes a new key at
its next start (the old one is kept as DATA_DIR/signing-key.ID.retired.pem)
and seals with the new one from then on. Retired is not revoked: sessions
sealed with a retired key still verify.

Options:
  --json              print JSON
${API_TARGET_HELP}`;

const shared = { ...API_TARGET_OPTIONS, json: { type: "boolean" } } as const;

export async function keysCommand(ctx: CommandContext): Promise<number> {
  const [sub, ...rest] = ctx.argv;
  if (sub === undefined || sub === "--help" || sub === "-h" || sub === "help") {
    write(ctx.stdout, KEYS_HELP);
    return sub === undefined ? 2 : 0;
  }
  const argv = rest;
  if (sub === "create") {
    const { values } = parseCommand(argv, { ...shared, identity: { type: "string" }, expires: { type: "string" } });
    if (values.help) return help(ctx);
    if (!values.identity) throw new UsageError("keys create needs --identity NAME");
    const created = await client(ctx, values).createKey(values.identity, values.expires);
    if (values.json) write(ctx.stdout, JSON.stringify(created, null, 2));
    else {
      write(ctx.stdout, created.key);
      write(ctx.stderr, `created ${created.id} for identity ${created.identity}${created.expiresAt ? `, expires ${created.expiresAt}` : ""} — the key is shown only now`);
    }
    return 0;
  }
  if (sub === "add-ssh") {
    const { values, positionals } = parseCommand(argv, { ...shared, identity: { type: "string" }, expires: { type: "string" } }, 1);
    if (values.help) return help(ctx);
    if (!values.identity) throw new UsageError("keys add-ssh needs --identity NAME");
    const file = positionals[0];
    if (!file) throw new UsageError('keys add-ssh needs a public key file (FILE.pub, or "-" for standard input)');
    const publicKey = await readPublicKey(file, ctx);
    const added = await client(ctx, values).addSshKey(values.identity, publicKey, values.expires);
    if (values.json) write(ctx.stdout, JSON.stringify(added, null, 2));
    else {
      write(ctx.stdout, `${added.id} ${added.fingerprint}`);
      write(ctx.stderr, `registered ${added.algorithm} key ${added.fingerprint}${added.comment ? ` (${added.comment})` : ""} for identity ${added.identity}${added.expiresAt ? `, expires ${added.expiresAt}` : ""}`);
    }
    return 0;
  }
  if (sub === "list") {
    const { values } = parseCommand(argv, { ...shared, identity: { type: "string" } });
    if (values.help) return help(ctx);
    const { keys, sshKeys } = await client(ctx, values).listKeys(values.identity);
    const all = [...keys.map((k) => ({ kind: "access" as const, ...k })), ...sshKeys.map((k) => ({ kind: "ssh" as const, ...k }))];
    if (values.json) write(ctx.stdout, JSON.stringify(all, null, 2));
    else if (all.length === 0) write(ctx.stdout, "no keys");
    else {
      const rows = [
        ["ID", "IDENTITY", "TYPE", "CREATED", "EXPIRES", "LAST USED", "FINGERPRINT", "COMMENT"],
        ...all.map((k) => [
          k.id,
          k.identity,
          k.kind === "ssh" ? k.algorithm : "access-key",
          k.createdAt.slice(0, 19),
          k.expiresAt?.slice(0, 19) ?? "never",
          k.lastUsedAt?.slice(0, 19) ?? "-",
          k.kind === "ssh" ? k.fingerprint : "-",
          k.kind === "ssh" ? (k.comment ?? "-") : "-",
        ]),
      ];
      const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
      for (const row of rows) write(ctx.stdout, row.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd());
    }
    return 0;
  }
  if (sub === "signing") {
    const { values } = parseCommand(argv, { "data-dir": { type: "string" }, json: { type: "boolean" } });
    if (values.help) return help(ctx);
    const dataDir = values["data-dir"] ?? ctx.env.GATEHOUSE_DATA_DIR ?? "./data";
    // A gateway run with --workers keeps one key per worker, in DATA_DIR/workers/I: print them all.
    const own = readSigningKey(dataDir);
    const keys = own ? [{ worker: null, key: own }] : workerDirs(dataDir).flatMap(({ worker, dir }) => {
      const key = readSigningKey(dir);
      return key ? [{ worker, key }] : [];
    });
    if (keys.length === 0) {
      write(ctx.stderr, `gatehouse: no signing key in ${dataDir} (the gateway makes ${dataDir}/${SIGNING_KEY_FILE} at first start)`);
      return 1;
    }
    const view = ({ worker, key }: (typeof keys)[number]) => ({ keyId: key.keyId, algorithm: "ed25519", publicKey: key.publicKeyPem, ...(worker === null ? {} : { worker }) });
    if (values.json) write(ctx.stdout, JSON.stringify(keys.length === 1 && keys[0]!.worker === null ? view(keys[0]!) : keys.map(view), null, 2));
    else {
      for (const { key } of keys) write(ctx.stdout, key.publicKeyPem);
      for (const { worker, key } of keys) write(ctx.stderr, `key id ${key.keyId}${worker === null ? "" : ` (worker ${worker})`}`);
    }
    return 0;
  }
  if (sub === "seal-keys") {
    const { values } = parseCommand(argv, shared);
    if (values.help) return help(ctx);
    const keys = await client(ctx, values).sealKeys();
    if (values.json) write(ctx.stdout, JSON.stringify(keys, null, 2));
    else if (keys.length === 0) write(ctx.stdout, "no seal keys registered in the store");
    else {
      const rows = [
        ["KEY ID", "GATEWAY", "CREATED", "RETIRED", ""],
        ...keys.map((k) => [k.keyId, k.gateway, k.createdAt.slice(0, 19), k.retiredAt?.slice(0, 19) ?? "-", k.current ? "(this gateway)" : ""]),
      ];
      const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
      for (const row of rows) write(ctx.stdout, row.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd());
    }
    return 0;
  }
  if (sub === "retire-seal") {
    const { values, positionals } = parseCommand(argv, shared, 1);
    if (values.help) return help(ctx);
    const keyId = positionals[0];
    if (!keyId || !/^[0-9a-f]{16}$/.test(keyId)) throw new UsageError("keys retire-seal needs a seal key id (16 hex digits; gatehouse keys seal-keys lists them)");
    const retired = await client(ctx, values).retireSealKey(keyId);
    if (values.json) write(ctx.stdout, JSON.stringify(retired, null, 2));
    else {
      write(ctx.stdout, `${retired.alreadyRetired ? "already retired" : "retired"} ${keyId}${retired.retiredAt ? ` at ${retired.retiredAt}` : ""}`);
      write(ctx.stderr, "its gateway seals with a new key from its next start; sessions sealed with this one still verify");
    }
    return 0;
  }
  if (sub === "revoke") {
    const { values, positionals } = parseCommand(argv, shared, 1);
    if (values.help) return help(ctx);
    if (!positionals[0]) throw new UsageError("keys revoke needs a key ID");
    await client(ctx, values).revokeKey(positionals[0]);
    write(ctx.stdout, `revoked ${positionals[0]}`);
    return 0;
  }
  throw new UsageError(`unknown keys subcommand "${sub}"`);
}

/** The public key text from FILE or, for "-", standard input (at most 64 KiB: a key is under 1 KiB). */
async function readPublicKey(file: string, ctx: CommandContext): Promise<string> {
  const limit = 64 * 1024;
  if (file !== "-") {
    try {
      const text = await readFile(file, "utf8");
      if (text.length > limit) throw new UsageError(`${file} is over ${limit} bytes: not a public key file`);
      return text;
    } catch (error) {
      if (error instanceof UsageError) throw error;
      throw new UsageError(`cannot read ${file}: ${(error as Error).message}`);
    }
  }
  let text = "";
  for await (const chunk of ctx.stdin ?? process.stdin) {
    text += typeof chunk === "string" ? chunk : (chunk as Buffer).toString("utf8");
    if (text.length > limit) throw new UsageError(`standard input is over ${limit} bytes: not a public key`);
  }
  return text;
}

function help(ctx: CommandContext): number {
  write(ctx.stdout, KEYS_HELP);
  return 0;
}

function client(ctx: CommandContext, values: { gateway?: string | undefined; "data-dir"?: string | undefined; ca?: string | undefined }): ApiClient {
  return new ApiClient(resolveApiTarget({ gateway: values.gateway, dataDir: values["data-dir"], ca: values.ca, env: ctx.env }));
}

/** The worker directories of a gateway run with --workers (DATA_DIR/workers/0, 1, …), in order. */
function workerDirs(dataDir: string): Array<{ worker: number; dir: string }> {
  const root = join(dataDir, "workers");
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .filter((name) => /^\d+$/.test(name))
    .map((name) => ({ worker: Number(name), dir: join(root, name) }))
    .sort((a, b) => a.worker - b.worker);
}

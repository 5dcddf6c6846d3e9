import { API_TARGET_HELP, API_TARGET_OPTIONS, ApiClient, resolveApiTarget } from "./api-client.js";
import { parseCommand, UsageError, write, type CommandContext } from "./command.js";
import { readSigningKey, SIGNING_KEY_FILE } from "../evidence/signing.js";

export const KEYS_HELP = `Usage:
  gatehouse keys create --identity NAME [--expires DURATION] [--json]
  gatehouse keys list [--identity NAME] [--json]
  gatehouse keys revoke ID
  gatehouse keys signing [--data-dir DIR] [--json]

Access keys are the passwords identities present to the gateway (psql's
password, PGPASSWORD...). "create" prints a new key once; the gateway keeps
only verifiers. DURATION is a number with s, m, h or d ("30d"); without it the
key does not expire. Keys are managed through the gateway's API.

"signing" prints the public half of the gateway's Ed25519 session-sealing key
(PEM; made in DATA_DIR/signing-key.pem at first start). Give it to whoever
runs "gatehouse verify --public-key FILE".

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
  if (sub === "list") {
    const { values } = parseCommand(argv, { ...shared, identity: { type: "string" } });
    if (values.help) return help(ctx);
    const keys = await client(ctx, values).listKeys(values.identity);
    if (values.json) write(ctx.stdout, JSON.stringify(keys, null, 2));
    else if (keys.length === 0) write(ctx.stdout, "no keys");
    else {
      const rows = [["ID", "IDENTITY", "CREATED", "EXPIRES", "LAST USED"], ...keys.map((k) => [k.id, k.identity, k.createdAt.slice(0, 19), k.expiresAt?.slice(0, 19) ?? "never", k.lastUsedAt?.slice(0, 19) ?? "-"])];
      const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
      for (const row of rows) write(ctx.stdout, row.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd());
    }
    return 0;
  }
  if (sub === "signing") {
    const { values } = parseCommand(argv, { "data-dir": { type: "string" }, json: { type: "boolean" } });
    if (values.help) return help(ctx);
    const dataDir = values["data-dir"] ?? ctx.env.GATEHOUSE_DATA_DIR ?? "./data";
    const key = readSigningKey(dataDir);
    if (!key) {
      write(ctx.stderr, `gatehouse: no signing key in ${dataDir} (the gateway makes ${dataDir}/${SIGNING_KEY_FILE} at first start)`);
      return 1;
    }
    if (values.json) write(ctx.stdout, JSON.stringify({ keyId: key.keyId, algorithm: "ed25519", publicKey: key.publicKeyPem }, null, 2));
    else {
      write(ctx.stdout, key.publicKeyPem);
      write(ctx.stderr, `key id ${key.keyId}`);
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

function help(ctx: CommandContext): number {
  write(ctx.stdout, KEYS_HELP);
  return 0;
}

function client(ctx: CommandContext, values: { gateway?: string | undefined; "data-dir"?: string | undefined; ca?: string | undefined }): ApiClient {
  return new ApiClient(resolveApiTarget({ gateway: values.gateway, dataDir: values["data-dir"], ca: values.ca, env: ctx.env }));
}

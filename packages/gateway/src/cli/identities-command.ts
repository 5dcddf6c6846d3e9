import { API_TARGET_HELP, API_TARGET_OPTIONS, ApiClient, resolveApiTarget } from "./api-client.js";
import { parseCommand, UsageError, write, type CommandContext } from "./command.js";

export const IDENTITIES_HELP = `Usage:
  gatehouse identities list [--json]
  gatehouse identities disable NAME
  gatehouse identities enable NAME

An identity disabled here is refused by every gateway of the store (new
sessions are denied with reason identity_disabled; open ones go on), within
seconds on gateways sharing a Postgres store. This is beside the config's
identity.disabled, which each gateway reads from its own file: "enable" does
not undo a config entry. "list" shows the identities that have settings in the
store.

Options:
  --json              print JSON
${API_TARGET_HELP}`;

const shared = { ...API_TARGET_OPTIONS, json: { type: "boolean" } } as const;

export async function identitiesCommand(ctx: CommandContext): Promise<number> {
  const [sub, ...argv] = ctx.argv;
  if (sub === undefined || sub === "--help" || sub === "-h" || sub === "help") {
    write(ctx.stdout, IDENTITIES_HELP);
    return sub === undefined ? 2 : 0;
  }
  if (sub === "list") {
    const { values } = parseCommand(argv, shared);
    if (values.help) return help(ctx);
    const identities = await client(ctx, values).identities();
    if (values.json) write(ctx.stdout, JSON.stringify(identities, null, 2));
    else if (identities.length === 0) write(ctx.stdout, "no identity has settings in the store");
    else {
      const rows = [["IDENTITY", "DISABLED", "CHANGED"], ...identities.map((i) => [i.identity, i.disabled ? "yes" : "no", i.updatedAt.slice(0, 19)])];
      const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
      for (const row of rows) write(ctx.stdout, row.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd());
    }
    return 0;
  }
  if (sub === "disable" || sub === "enable") {
    const { values, positionals } = parseCommand(argv, shared, 1);
    if (values.help) return help(ctx);
    const name = positionals[0];
    if (!name) throw new UsageError(`identities ${sub} needs an identity NAME`);
    const saved = await client(ctx, values).setIdentityDisabled(name, sub === "disable");
    if (values.json) write(ctx.stdout, JSON.stringify(saved, null, 2));
    else write(ctx.stdout, `${sub}d ${name}`);
    return 0;
  }
  throw new UsageError(`unknown identities subcommand "${sub}"`);
}

function help(ctx: CommandContext): number {
  write(ctx.stdout, IDENTITIES_HELP);
  return 0;
}

function client(ctx: CommandContext, values: { gateway?: string | undefined; "data-dir"?: string | undefined; ca?: string | undefined }): ApiClient {
  return new ApiClient(resolveApiTarget({ gateway: values.gateway, dataDir: values["data-dir"], ca: values.ca, env: ctx.env }));
}

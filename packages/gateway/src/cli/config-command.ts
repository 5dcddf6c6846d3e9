import { GatewayError } from "../errors.js";
import { loadConfigFile } from "../config/load.js";
import { readOidcCa } from "../identity/oidc-verifier.js";
import { parseCommand, UsageError, write, type CommandContext } from "./command.js";

export const CONFIG_CHECK_HELP = `Usage: gatehouse config check FILE

Validates a gateway config file, as a start or a reload (SIGHUP) would.
Exits 0 when it is valid; otherwise prints every problem with the path of
its key (connections[2].target.port: …) and exits 1.`;

export async function configCheckCommand(ctx: CommandContext): Promise<number> {
  const { values, positionals } = parseCommand(ctx.argv, {}, 1);
  if (values.help) {
    write(ctx.stdout, CONFIG_CHECK_HELP);
    return 0;
  }
  const file = positionals[0];
  if (!file) throw new UsageError("config check needs the config file to check");
  // loadConfigFile's messages name the file already ("FILE has 2 problems"); the later checks' do not.
  let named = true;
  try {
    const config = loadConfigFile(file);
    named = false;
    // What a start or a reload would also refuse, beyond the file's shape.
    readOidcCa(config.identity.oidc);
    write(ctx.stdout, `${file}: valid (${config.connections.length} connection${config.connections.length === 1 ? "" : "s"}, ${config.connectors.length} connector${config.connectors.length === 1 ? "" : "s"})`);
    return 0;
  } catch (error) {
    if (!(error instanceof GatewayError)) throw error;
    write(ctx.stderr, named ? error.message : `${file}: ${error.message}`);
    for (const problem of error.problems) write(ctx.stderr, `  ${problem}`);
    return 1;
  }
}

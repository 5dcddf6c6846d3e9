#!/usr/bin/env node
import type { CommandContext } from "@gatehouse/gateway/commands";

// `gatehouse`: one program, one subcommand per job. This package only
// dispatches: the gateway's commands live in @gatehouse/gateway and the
// connector's in @gatehouse/connector, which must not import each other.
// Each is imported only when its command runs, so `sessions list` does not
// pay for loading the gateway's store drivers.

const HELP = `Usage: gatehouse COMMAND [options]

Commands:
  gateway --config FILE      run the gateway
  connector                  run a connector (settings from flags or GATEHOUSE_* variables)
  config check FILE          validate a gateway config
  sessions list              list recorded sessions (newest first)
  sessions show ID|--last    show a session and its events
  events search              search every session's events (identity, text, outcome, status…)
  keys create|list|revoke    manage identities' access keys
  keys add-ssh               register an SSH public key for an identity
  ssh-config --connection N  print an OpenSSH Host block and known_hosts line for a connection
  kubeconfig --connection N  write a kubeconfig for a kubernetes connection (kubectl through the gateway)
  keys signing               print the gateway's session-sealing public key
  keys seal-keys|retire-seal list every gateway's seal key in the store; retire one
  identities list|disable|enable  identities disabled for every gateway of the store
  verify ID...|--all         check sessions' hash chains and seals (exit 1 on any failure)
  checkpoints export         export the gateways' signed checkpoint chains (for verify --checkpoints)
  retention --days N         drop event partitions older than N days (signed by the gateway)
  token                      get an OIDC access token for this agent (client credentials); --exec-credential for kubectl

Run "gatehouse COMMAND --help" for a command's options.`;

type Command = (ctx: CommandContext) => Promise<number>;

const gateway = () => import("@gatehouse/gateway/commands");

const commands: Record<string, Command> = {
  gateway: async (ctx) => (await gateway()).gatewayCommand(ctx),
  connector: async (ctx) => (await import("@gatehouse/connector")).runConnectorCli(ctx.argv, ctx.env),
  config: async (ctx) => {
    const { configCheckCommand, UsageError } = await gateway();
    const [sub, ...rest] = ctx.argv;
    if (sub === "check") return configCheckCommand({ ...ctx, argv: rest });
    if (sub === "--help" || sub === "-h") return configCheckCommand({ ...ctx, argv: ["--help"] });
    throw new UsageError(sub ? `unknown config subcommand "${sub}"` : "config needs a subcommand: check FILE");
  },
  sessions: async (ctx) => (await gateway()).sessionsCommand(ctx),
  events: async (ctx) => (await gateway()).eventsCommand(ctx),
  keys: async (ctx) => (await gateway()).keysCommand(ctx),
  identities: async (ctx) => (await gateway()).identitiesCommand(ctx),
  "ssh-config": async (ctx) => (await gateway()).sshConfigCommand(ctx),
  kubeconfig: async (ctx) => (await gateway()).kubeconfigCommand(ctx),
  // Its own subpath: kubectl runs `token --exec-credential` before every command, and loading all
  // the gateway's commands (zod, yaml, the store drivers…) took half a second of that.
  token: async (ctx) => (await import("@gatehouse/gateway/token")).tokenCommand(ctx),
  verify: async (ctx) => (await gateway()).verifyCommand(ctx),
  retention: async (ctx) => (await gateway()).retentionCommand(ctx),
  checkpoints: async (ctx) => (await gateway()).checkpointsCommand(ctx),
};

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  const ctx: CommandContext = { argv: rest, env: process.env, stdout: process.stdout, stderr: process.stderr };
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(`${HELP}\n`);
    return name === undefined ? 2 : 0;
  }
  const command = commands[name];
  try {
    if (!command) throw Object.assign(new Error(`unknown command "${name}"`), { name: "UsageError" });
    return await command(ctx);
  } catch (error) {
    if (!(error instanceof Error)) throw error;
    if (error.name === "UsageError") {
      process.stderr.write(`gatehouse: ${error.message}\n(run "gatehouse ${command ? `${name} ` : ""}--help" for usage)\n`);
      return 2;
    }
    if (error.name === "GatewayError" || error.name === "StoreError") {
      process.stderr.write(`gatehouse: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
}

// `gatehouse sessions list | head`: once the reader has gone, stop quietly as
// other command-line tools do, instead of dying on an unhandled EPIPE.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (error: NodeJS.ErrnoException) => {
    if (error.code !== "EPIPE") throw error;
    process.exit(process.exitCode ?? 0);
  });
}

process.exitCode = await main(process.argv.slice(2));

// The gateway's CLI subcommands, for the `gatehouse` dispatcher. Kept apart
// from the package index so running one command loads only what it needs.
export { gatewayCommand, GATEWAY_HELP } from "./gateway-command.js";
export { configCheckCommand, CONFIG_CHECK_HELP } from "./config-command.js";
export { sessionsCommand, SESSIONS_HELP } from "./sessions-command.js";
export { eventsCommand, EVENTS_HELP } from "./events-command.js";
export { UsageError } from "./command.js";
export type { CommandContext } from "./command.js";
export { keysCommand, KEYS_HELP } from "./keys-command.js";
export { identitiesCommand, IDENTITIES_HELP } from "./identities-command.js";
export { sshConfigCommand, SSH_CONFIG_HELP } from "./ssh-config-command.js";
export { kubeconfigCommand, KUBECONFIG_HELP } from "./kubeconfig-command.js";
export { tokenCommand, TOKEN_HELP } from "./token-command.js";
export { verifyCommand, VERIFY_HELP } from "./verify-command.js";
export { retentionCommand, RETENTION_HELP } from "./retention-command.js";
export { checkpointsCommand, CHECKPOINTS_HELP } from "./checkpoints-command.js";

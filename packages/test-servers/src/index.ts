export { startSshd, type SshdOptions, type SshdServer } from "./sshd.js";
export {
  canStartThrowawayMariadb,
  createMariadbTestAccounts,
  findMariadb,
  startThrowawayMariadb,
  type FindMariadbOptions,
  type MariadbServer,
  type MariadbTestAccounts,
} from "./mariadb.js";
export { answers, freePort } from "./net.js";
export { findExistingServer, type ExistingServer } from "./existing-server.js";

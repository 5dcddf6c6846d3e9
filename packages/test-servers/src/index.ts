export { startSshd, type SshdOptions, type SshdServer } from "./sshd.js";

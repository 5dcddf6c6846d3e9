export { startKubeApiServer, type KubeApiServer, type KubeApiServerOptions, type RecordedRequest } from "./server.js";
export type { RbacRule, TokenUser } from "./auth.js";

export { startKubeApiServer, type KubeApiServer, type KubeApiServerOptions, type RecordedRequest } from "./server.js";
export type { RbacRule, TokenUser } from "./auth.js";
export { FrameSplitter, SpdyFramer, HEADER_DICTIONARY, type RawFrame, type SpdyFrame, type SpdyHeaders } from "./spdy.js";

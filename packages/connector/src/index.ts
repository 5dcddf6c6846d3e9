// The public face of @gatehouse/connector.
export { AllowList, parseAllowEntry } from "./allow-list.js";
export type { AllowRule, HostPattern, Target } from "./allow-list.js";
export { Backoff, BACKOFF_DEFAULTS } from "./backoff.js";
export type { BackoffOptions } from "./backoff.js";
export { runConnectorCli } from "./cli.js";
export type { ConnectorCliIo } from "./cli.js";
export { Connector, startConnector } from "./connector.js";
export type { ConnectorEvents, StartConnectorOptions, StreamInfo } from "./connector.js";
export { resolveCredential } from "./credentials.js";
export { connectTcp, defaultDialers, dialTcp, formatTarget } from "./dialers/index.js";
export type { DialContext, DialResult, Dialer, DialerRegistry } from "./dialers/index.js";
export { ConnectorError, streamFailureOf } from "./errors.js";
export type { ConnectorErrorCode, StreamFailureCode } from "./errors.js";
export { CONNECTOR_HELP, LOG_LEVELS, parseConnectorSettings, SETTINGS_DEFAULTS, TUNNEL_PATH } from "./settings.js";
export type { ConnectorSettings, LogLevel } from "./settings.js";
export { MAX_WS_MESSAGE_BYTES, UPGRADE_TIMEOUT_MS } from "./tunnel-client.js";
export type { TunnelMuxOptions } from "./tunnel-client.js";

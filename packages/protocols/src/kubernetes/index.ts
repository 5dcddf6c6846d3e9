export { commandLine, requestInfo, type KubeRequest, type KubeRequestInfo, type RecordVerb } from "./request-info.js";
export { REDACTED, redactBody, type RedactedBody, type RedactOptions } from "./redact.js";

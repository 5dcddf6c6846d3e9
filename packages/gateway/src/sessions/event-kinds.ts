/**
 * Every kind of event a session's record can hold: the vocabulary of docs/architecture.md ("One
 * vocabulary of events across protocols"), closed so that four protocols stay alike. A new
 * protocol adds its kinds here, reusing one wherever the meaning is the same.
 */
export const EVENT_KINDS = [
  // every protocol
  "connect",
  "disconnect",
  "auth_failed",
  "denied",
  "recording_degraded",
  // postgres
  "query",
  "execute",
  "copy",
  "function_call",
  "cancel",
  "notification",
  "server_error",
  // mysql (query, execute, cancel and server_error as above; see the MySQL observer's README)
  "prepare",
  "fetch",
  "send_long_data",
  "close_statement",
  "reset_statement",
  "init_db",
  "ping",
  "field_list",
  "reset_connection",
  "change_user",
  "kill",
  "statistics",
  "set_option",
  "quit",
  "other",
  // ssh (see packages/protocols/src/ssh/README.md, "Events"); exec and shell also end kubectl exec's
  // byte streams: the event that ends a stream carries its summary in details.stream
  "exec",
  "shell",
  "shell_input",
  "subsystem",
  "sftp",
  "scp",
  "port_forward",
  "signal",
  // kubernetes: one event per API request (a kubectl exec/attach is an `exec`, with its stream)
  "request",
] as const;

export type EventKind = (typeof EVENT_KINDS)[number];

/** Whether a string read back from somewhere (a journal, a store) is one of our kinds. */
export function isEventKind(kind: string): kind is EventKind {
  return (EVENT_KINDS as readonly string[]).includes(kind);
}

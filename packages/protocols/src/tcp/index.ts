/**
 * Plain TCP forwarding has no protocol to parse: the gateway relays bytes and records the
 * connection only. This entry point exists so every protocol has the same subpath shape
 * (`@gatehouse/protocols/<name>`).
 */
export const TCP_PROTOCOL = "tcp" as const;

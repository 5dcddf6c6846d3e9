/**
 * `@gatehouse/protocols/drive`: the one non-pure corner of this package — how a pure handshake
 * is driven over a socket under one deadline, and the one relay that copies bytes with backpressure. Kept on its own subpath, apart from the protocols'
 * pure code, because both the gateway (listeners) and the connector (dialers) need it and may
 * import this package but not each other. See docs/architecture.md, "One shape".
 */
export { ChunkSource, type ReadFailures } from "./chunk-source.js";
export { nextHandshakeEvent, type PureHandshake } from "./handshake.js";
export { relay, type Inspector, type RelayOptions, type RelayResult, type Rewrite } from "./relay.js";

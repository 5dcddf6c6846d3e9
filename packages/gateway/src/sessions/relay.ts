// The relay is shared with the connector: it lives in @gatehouse/protocols/drive (see
// docs/architecture.md, "One shape"). The gateway's listeners import it from here.
export { relay, type Inspector, type RelayOptions, type RelayResult, type Rewrite } from "@gatehouse/protocols/drive";

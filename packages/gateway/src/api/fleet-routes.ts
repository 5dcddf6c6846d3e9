import type { IncomingMessage, ServerResponse } from "node:http";
import type { GatewayKeyRecord, IdentitySettings, Store } from "@gatehouse/store";
import { isoFromUs, type Clock } from "../clock.js";
import type { IdentityDirectory } from "../identity/identity-settings.js";
import { ApiError, sendJson } from "./json.js";

// What the gateways of one store share (issue 15), on the admin API:
//   GET  /api/v1/seal-keys                 every gateway's seal public key (gateway_keys), for
//        `gatehouse keys seal-keys` and for `gatehouse verify --gateway` on any gateway
//   POST /api/v1/seal-keys/:id/retire      marks a key retired: its gateway makes a new one at its
//        next start; sessions sealed with it still verify (retired is not revoked)
//   GET  /api/v1/identities                identities with settings in the store (disabled or not)
//   PUT  /api/v1/identities/:name          {"disabled": true|false}, in force on every gateway of
//        the store within seconds (identity/store-changes.ts)

export interface FleetApi {
  /** This gateway's seal key id (marked `current` in the listing). */
  sealKeyId: string;
  identities: IdentityDirectory;
}

export async function fleetRoute(
  request: IncomingMessage,
  response: ServerResponse,
  url: URL,
  store: Store,
  fleet: FleetApi,
  clock: Clock,
  readJson: (request: IncomingMessage) => Promise<Record<string, unknown>>,
): Promise<void> {
  const method = request.method ?? "GET";
  if (url.pathname === "/api/v1/seal-keys" && method === "GET") {
    const keys = await storeCall(() => store.gatewayKeys.list());
    return sendJson(response, 200, { sealKeys: keys.map((k) => sealKeyView(k, fleet.sealKeyId)) });
  }
  const retire = /^\/api\/v1\/seal-keys\/([0-9a-f]{16})\/retire$/.exec(url.pathname);
  if (retire && method === "POST") {
    const keyId = retire[1]!;
    const status = await storeCall(() => store.gatewayKeys.retire(keyId, clock()));
    if (status === "not_found") throw new ApiError("not_found", `no seal key ${keyId} in the store (gatehouse keys seal-keys lists them)`);
    const key = (await storeCall(() => store.gatewayKeys.list())).find((k) => k.keyId === keyId);
    return sendJson(response, 200, { ...(key ? sealKeyView(key, fleet.sealKeyId) : { keyId }), alreadyRetired: status === "already_retired" });
  }
  if (url.pathname === "/api/v1/identities" && method === "GET") {
    const settings = await storeCall(() => fleet.identities.list());
    return sendJson(response, 200, { identities: settings.map(identityView) });
  }
  const identity = /^\/api\/v1\/identities\/([^/]+)$/.exec(url.pathname);
  if (identity && method === "PUT") {
    const name = decodeURIComponent(identity[1]!);
    if (!/^[A-Za-z0-9][A-Za-z0-9._@-]{0,62}$/.test(name)) throw new ApiError("bad_request", "identity: expected a name of letters, digits, '.', '_', '@' or '-'");
    const body = await readJson(request);
    if (typeof body.disabled !== "boolean") throw new ApiError("bad_request", "disabled: expected true or false");
    await storeCall(() => fleet.identities.setDisabled(name, body.disabled as boolean));
    const saved = (await storeCall(() => fleet.identities.list())).find((s) => s.identity === name);
    return sendJson(response, 200, identityView(saved ?? { identity: name, disabled: body.disabled, updatedUs: clock() }));
  }
  throw new ApiError("method_not_allowed", `${method} is not supported on ${url.pathname}`);
}

export function isFleetPath(pathname: string): boolean {
  return pathname === "/api/v1/seal-keys" || pathname.startsWith("/api/v1/seal-keys/") || pathname === "/api/v1/identities" || pathname.startsWith("/api/v1/identities/");
}

function sealKeyView(k: GatewayKeyRecord, current: string) {
  return {
    keyId: k.keyId,
    gateway: k.gateway,
    createdAt: isoFromUs(k.createdUs),
    retiredAt: k.retiredUs === null ? null : isoFromUs(k.retiredUs),
    current: k.keyId === current,
    publicKey: k.publicKeyPem,
  };
}

function identityView(s: IdentitySettings) {
  return { identity: s.identity, disabled: s.disabled, updatedAt: isoFromUs(s.updatedUs) };
}

async function storeCall<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (cause) {
    throw new ApiError("store_unavailable", `the store could not answer: ${(cause as Error).message}`);
  }
}

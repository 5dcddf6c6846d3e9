import { renameSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import type { GatewayKeyRecord, Store } from "@gatehouse/store";
import type { Logger } from "../logger.js";
import { loadOrCreateSigningKey, parsePublicKeys, SIGNING_KEY_FILE, type PublicKey, type SigningKey } from "./signing.js";

// Every gateway's seal key in the store (migration 007's gateway_keys), so that `gatehouse verify`
// and the API on any gateway of a store check seals made by any of them.
//
// At start a gateway registers its key's public half (idempotent: the store derives the key id
// from the key and keeps the first registration). When an operator has retired the key
// (`gatehouse keys retire-seal ID`), the gateway rotates at its next start: the old private key is
// moved aside to DATA_DIR/signing-key.<key id>.retired.pem (kept, never used again), a new one is
// made and registered, and the gateway seals with it from then on. Retired is not revoked: sessions
// sealed with a retired key still verify, with the public key the store keeps.

export interface SealKeyStart {
  key: SigningKey;
  generated: boolean;
  /** The retired key this start rotated away from. */
  rotatedFrom?: string;
}

/** The name a gateway registers its key under: its host name (a pod's name in a StatefulSet). */
export function gatewayName(): string {
  return hostname();
}

/**
 * The signing key this start seals with: DATA_DIR's (made at first start), registered in the
 * store, or a new one when the store says DATA_DIR's was retired. A store that cannot register
 * it (a store migrated before 007, a role without the grant) is logged and the start goes on.
 */
export async function startSealKey(dataDir: string, store: Partial<Pick<Store, "gatewayKeys">>, logger: Logger): Promise<SealKeyStart> {
  const first = loadOrCreateSigningKey(dataDir);
  if (store.gatewayKeys === undefined) return first;
  const name = gatewayName();
  let registration;
  try {
    registration = await store.gatewayKeys.register(first.key.publicKeyPem, name);
  } catch (error) {
    logger.warn({ err: error, keyId: first.key.keyId }, "could not register the seal key in the store; other gateways' verify needs its public key given (gatehouse keys signing)");
    return first;
  }
  if (registration.retiredUs === null) return first;
  const aside = join(dataDir, `signing-key.${first.key.keyId}.retired.pem`);
  renameSync(join(dataDir, SIGNING_KEY_FILE), aside);
  const next = loadOrCreateSigningKey(dataDir);
  try {
    await store.gatewayKeys.register(next.key.publicKeyPem, name);
  } catch (error) {
    logger.warn({ err: error, keyId: next.key.keyId }, "could not register the new seal key in the store; it is registered at the next start");
  }
  logger.info({ retiredKeyId: first.key.keyId, keyId: next.key.keyId, movedTo: aside }, "the seal key was retired; sealing with a new key from now on (sessions sealed with the old one still verify)");
  return { key: next.key, generated: true, rotatedFrom: first.key.keyId };
}

/** The keys a verifier may take from the store's gateway_keys; a row whose PEM does not give its key id is skipped. */
export function storedPublicKeys(records: readonly Pick<GatewayKeyRecord, "keyId" | "publicKeyPem">[]): PublicKey[] {
  return records.flatMap((r) => {
    try {
      return parsePublicKeys(r.publicKeyPem, `gateway key ${r.keyId}`).filter((k) => k.keyId === r.keyId);
    } catch {
      return [];
    }
  });
}

import type { AuthContext, KeyboardAuthContext, PasswordAuthContext, PublicKeyAuthContext } from "ssh2";
import ssh2 from "ssh2";
import type { Identity } from "@gatehouse/store";
import { parseSshLoginName } from "@gatehouse/protocols/ssh";
import type { CredentialChecker, PasswordCheck } from "../../identity/credential-checker.js";
import type { AuthThrottle } from "../../identity/auth-throttle.js";
import type { Logger } from "../../logger.js";
import { cutClaim } from "../../sessions/refusal-records.js";
import { isCredentialsUnavailable } from "../listener-steps.js";
import { sshFingerprint } from "./host-key.js";

/**
 * The SSH public keys registered per identity (`gatehouse keys add-ssh`). The listener asks it
 * whether a key the client offers belongs to the identity it claims; it proves possession itself
 * (the signature). Implemented by `identity/ssh-keys.ts`.
 */
export interface SshKeyLookup {
  /** The registered, unrevoked key of `identity` with this algorithm and public blob, or null. */
  find(identity: string, algorithm: string, blob: Uint8Array): Promise<{ id: string; fingerprint: string } | null>;
}

/** Methods offered after a failure (OpenSSH's client tries them in its own order). */
const METHODS: AuthContext["method"][] = ["publickey", "keyboard-interactive", "password"];

/** Who the client proved to be, and the connection its user name named. */
export interface SshLogin {
  identity: Identity;
  connection: string;
  method: "publickey" | "password" | "keyboard-interactive";
  /** publickey: the registered key's id and fingerprint. */
  key?: { id: string; fingerprint: string };
}

/** A refused attempt, for the record (never the secret). */
export interface SshAuthRefusal {
  identity: string;
  connection: string;
  details: Record<string, unknown>;
}

export interface SshAuthDeps {
  credentials: CredentialChecker;
  keys: SshKeyLookup | undefined;
  throttle: AuthThrottle;
  /** Waits out the throttle's delay; rejects when the connection's deadline passes. */
  delay: (ms: number) => Promise<void>;
  log: Logger;
}

/**
 * One client's authentication: ssh2 emits each attempt (`none`, `publickey` queries and
 * signatures, `password`, `keyboard-interactive`); this answers each and remembers what the record
 * needs. The user name is `IDENTITY@CONNECTION`; secrets go through the same `CredentialChecker`
 * as every protocol (access key or OIDC token); public keys through `SshKeyLookup`, their
 * signature checked here. Failures count against the shared throttle.
 */
export class SshAuthentication {
  /** Unknown keys the client offered (fingerprints), recorded once if it never gets in. */
  readonly offeredKeys = new Set<string>();
  private lastName: { identity: string; connection: string } | undefined;

  constructor(
    private readonly deps: SshAuthDeps,
    private readonly clientAddress: string | null,
    private readonly onRefused: (refusal: SshAuthRefusal) => void,
  ) {}

  /** The names the client claimed last (for a record of a client that gave up). */
  get claimed(): { identity: string; connection: string } | undefined {
    return this.lastName;
  }

  /** Answers one attempt; resolves with the login once one is accepted. */
  async attempt(ctx: AuthContext): Promise<SshLogin | undefined> {
    const name = parseSshLoginName(ctx.username);
    if (!name.ok) {
      // Every client starts with "none": refuse it quietly; a real attempt under a bad name is recorded.
      if (ctx.method !== "none") this.onRefused({ identity: ctx.username, connection: "", details: { reason: "no_connection", method: ctx.method, message: name.message } });
      ctx.reject(METHODS);
      return undefined;
    }
    const { identity, connection } = name;
    this.lastName = { identity, connection };
    const verdict = this.deps.throttle.verdict(this.clientAddress, identity);
    if (verdict.locked && ctx.method !== "none") {
      this.onRefused({ identity, connection, details: { reason: "locked_out", by: verdict.by, retryAfterMs: verdict.retryAfterMs, method: ctx.method } });
      ctx.reject(METHODS);
      return undefined;
    }
    const delayMs = verdict.locked ? 0 : verdict.delayMs;
    switch (ctx.method) {
      case "none":
      case "hostbased":
        ctx.reject(METHODS);
        return undefined;
      case "password":
        return this.secret(ctx, identity, connection, ctx.password, delayMs);
      case "keyboard-interactive":
        return this.keyboard(ctx, identity, connection, delayMs);
      case "publickey":
        return this.publicKey(ctx, identity, connection);
    }
  }

  private keyboard(ctx: KeyboardAuthContext, identity: string, connection: string, delayMs: number): Promise<SshLogin | undefined> {
    return new Promise((resolve, reject) => {
      // One prompt: the same secret a password login takes.
      ctx.prompt([{ prompt: "Access key or OIDC token: ", echo: false }], "gatehouse", "", (answers) => {
        this.secret(ctx, identity, connection, answers[0] ?? "", delayMs).then(resolve, reject);
      });
    });
  }

  private async secret(ctx: PasswordAuthContext | KeyboardAuthContext, identity: string, connection: string, secret: string, delayMs: number): Promise<SshLogin | undefined> {
    if (delayMs > 0) await this.deps.delay(delayMs);
    let check: PasswordCheck;
    try {
      check = await this.deps.credentials.check(identity, secret);
    } catch (error) {
      if (!isCredentialsUnavailable(error)) throw error;
      this.deps.log.warn({ identity: cutClaim(identity, 64), reason: error.message }, "login refused: credentials cannot be checked now (the store is not answering)");
      this.onRefused({ identity, connection, details: { reason: "credentials_unavailable", method: ctx.method, message: error.message } });
      ctx.reject(METHODS);
      return undefined;
    }
    if (!check.ok) {
      this.failed(identity, connection, { reason: check.reason, method: check.method, sshMethod: ctx.method, ...check.details });
      ctx.reject(METHODS);
      return undefined;
    }
    this.deps.throttle.succeeded(this.clientAddress, identity);
    ctx.accept();
    return { identity: check.identity, connection, method: ctx.method };
  }

  /**
   * A key offered without a signature is a query ("would you take this key?"): accepted only if the
   * identity has it registered, and then the client signs. With a signature, the signature over the
   * session's data must verify with that key.
   */
  private async publicKey(ctx: PublicKeyAuthContext, identity: string, connection: string): Promise<SshLogin | undefined> {
    const blob = ctx.key.data;
    const fingerprint = sshFingerprint(blob);
    const found = this.deps.keys ? await this.deps.keys.find(identity, ctx.key.algo, blob) : null;
    if (!found) {
      // Clients offer every key they hold; one unknown key is not yet a failure (recorded if none gets in).
      this.offeredKeys.add(fingerprint);
      ctx.reject(METHODS);
      return undefined;
    }
    if (!ctx.signature || !ctx.blob) {
      ctx.accept();
      return undefined;
    }
    const parsed = ssh2.utils.parseKey(blob);
    const key = Array.isArray(parsed) ? parsed[0] : parsed;
    const verified = key !== undefined && !(key instanceof Error) && key.verify(ctx.blob, ctx.signature, ctx.hashAlgo) === true;
    if (!verified) {
      this.failed(identity, connection, { reason: "bad_signature", method: "ssh_key", sshMethod: "publickey", keyId: found.id, fingerprint: found.fingerprint });
      ctx.reject(METHODS);
      return undefined;
    }
    this.deps.throttle.succeeded(this.clientAddress, identity);
    ctx.accept();
    return { identity: { name: identity, method: "ssh_key" }, connection, method: "publickey", key: found };
  }

  private failed(identity: string, connection: string, details: Record<string, unknown>): void {
    if (this.deps.throttle.failed(this.clientAddress, identity)) this.deps.log.warn({ identity: cutClaim(identity, 64) }, "repeated authentication failures; locking out");
    this.onRefused({ identity, connection, details });
  }
}

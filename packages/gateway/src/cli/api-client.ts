import { readFileSync } from "node:fs";
import { readAdminToken, readState } from "../data-dir.js";
import { GatewayError } from "../errors.js";
import { providerFetch, type ProviderFetch } from "../identity/provider-fetch.js";
import type { ChunkView, EventView, FoundEventView, SessionView } from "../api/views.js";
import type { Checkpoint, RetentionResult, SessionEvent, SessionRecord } from "@gatehouse/store";
import type { ChainHead } from "../evidence/checkpoints.js";

export interface KeyView {
  id: string;
  identity: string;
  createdAt: string;
  expiresAt: string | null;
  revokedAt: string | null;
  lastUsedAt: string | null;
}

export interface SshKeyView extends KeyView {
  /** ssh-ed25519, ecdsa-sha2-nistp256, ssh-rsa... */
  algorithm: string;
  /** "SHA256:…" as ssh-keygen -l -E sha256 prints it. */
  fingerprint: string;
  comment: string | null;
  publicKey: string;
}

/** A gateway's seal public key as the store keeps it (GET /api/v1/seal-keys). */
export interface SealKeyView {
  keyId: string;
  gateway: string;
  createdAt: string;
  retiredAt: string | null;
  /** The key the answering gateway seals with. */
  current: boolean;
  /** SubjectPublicKeyInfo PEM. */
  publicKey: string;
}

/** An identity's settings in the store (GET /api/v1/identities). */
export interface IdentityView {
  identity: string;
  disabled: boolean;
  updatedAt: string;
}

/** The gateway's SSH host key (GET /api/v1/ssh/host-key). */
/** What `GET /api/v1/kubernetes/endpoint` answers (api/http-api.ts, KubernetesEndpointView). */
export interface KubernetesEndpoint {
  listen: string;
  certificatePem: string;
  source: string;
  pathPrefix: string;
}

export interface SshHostKey {
  publicKey: string;
  fingerprint: string;
  listen: string;
}

export interface ApiTarget {
  url: string;
  token: string | undefined;
  /** PEM of the CA that signed the API's certificate (api.tls with a private CA); undefined: the system's CAs. */
  ca?: string | undefined;
}

/** The flags every command that talks to the API takes; their help text is API_TARGET_HELP. */
export const API_TARGET_OPTIONS = {
  gateway: { type: "string" },
  "data-dir": { type: "string" },
  ca: { type: "string" },
} as const;

export const API_TARGET_HELP = `  --gateway URL       the gateway's API (default: the one started from this directory,
                      found in DATA_DIR/gateway.json; or GATEHOUSE_GATEWAY_URL)
  --data-dir DIR      where to look for it (default ./data)
  --ca FILE           PEM CA of the API's certificate, when api.tls uses a private
                      CA (or GATEHOUSE_CA; default: the system's CAs)
The admin token comes from the environment variable GATEHOUSE_ADMIN_TOKEN,
else DATA_DIR/admin-token (written by a gateway started from this directory).`;

/**
 * Finds the gateway to ask: --gateway and GATEHOUSE_ADMIN_TOKEN when given,
 * else the gateway started from this directory (its state and admin token
 * in the data directory). `ca`: --ca FILE, else GATEHOUSE_CA.
 */
export function resolveApiTarget(options: { gateway?: string | undefined; dataDir?: string | undefined; ca?: string | undefined; env: NodeJS.ProcessEnv }): ApiTarget {
  const dataDir = options.dataDir ?? options.env.GATEHOUSE_DATA_DIR ?? "./data";
  const url = options.gateway ?? options.env.GATEHOUSE_GATEWAY_URL ?? readState(dataDir)?.apiUrl;
  if (!url) {
    throw new GatewayError("API_UNREACHABLE", `no gateway found: none was started from this directory (no ${dataDir}/gateway.json); pass --gateway URL`);
  }
  const token = options.env.GATEHOUSE_ADMIN_TOKEN ?? readAdminToken(dataDir);
  const caFile = options.ca ?? (options.env.GATEHOUSE_CA || undefined);
  return { url: url.replace(/\/+$/, ""), token, ca: caFile === undefined ? undefined : readCa(caFile, options.ca === undefined ? "GATEHOUSE_CA" : "--ca") };
}

function readCa(file: string, from: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (cause) {
    throw new GatewayError("API_UNREACHABLE", `cannot read the API's CA (${from} ${file}): ${(cause as Error).message}`, { cause });
  }
}

/** Node's codes for a certificate it cannot trust. */
const CERTIFICATE_ERRORS = new Set(["DEPTH_ZERO_SELF_SIGNED_CERT", "SELF_SIGNED_CERT_IN_CHAIN", "UNABLE_TO_VERIFY_LEAF_SIGNATURE", "UNABLE_TO_GET_ISSUER_CERT_LOCALLY", "UNABLE_TO_GET_ISSUER_CERT"]);

/** Evidence pages carry whole sessions' events: allow far more than a provider's few KB. */
const MAX_ANSWER_BYTES = 512 * 1024 * 1024;

export class ApiClient {
  private readonly fetch: ProviderFetch;

  constructor(private readonly target: ApiTarget) {
    this.fetch = providerFetch(target.ca, MAX_ANSWER_BYTES);
  }

  get url(): string {
    return this.target.url;
  }

  /** Sessions in id order after `after`, with their events as stored (for `gatehouse verify`). */
  evidencePage(after: string | undefined, limit: number): Promise<{ sessions: SessionRecord[]; events: SessionEvent[]; chunks?: ChunkView[] }> {
    const params = new URLSearchParams({ limit: String(limit), ...(after === undefined ? {} : { after }) });
    return this.get(`/api/v1/evidence?${params}`);
  }

  /** Stored checkpoints in (gateway, seq) order after `after`, and where the gateway's own chain stands. */
  checkpointPage(after: { gateway: string; seq: number } | undefined, limit: number): Promise<{ checkpoints: Checkpoint[]; head: (ChainHead & { gateway: string }) | null }> {
    const params = new URLSearchParams({ limit: String(limit), ...(after === undefined ? {} : { after: `${after.gateway}:${after.seq}` }) });
    return this.get(`/api/v1/checkpoints?${params}`);
  }

  /** Has the gateway sign a retention cut (and waits until the store has it). */
  async signRetention(cutoffUs: number, horizonUs: number): Promise<Checkpoint> {
    return (await this.request<{ checkpoint: Checkpoint }>("POST", "/api/v1/checkpoints/retention", { cutoffUs, horizonUs })).checkpoint;
  }

  /** Has the gateway sign and apply retention itself (the embedded store it holds). */
  retention(cutoffUs: number, dryRun: boolean): Promise<RetentionResult & { checkpoint?: Checkpoint }> {
    return this.request("POST", "/api/v1/retention", { cutoffUs, dryRun });
  }

  async listSessions(query: Record<string, string | undefined>): Promise<SessionView[]> {
    const params = new URLSearchParams(Object.entries(query).filter((e): e is [string, string] => e[1] !== undefined));
    const body = await this.get<{ sessions: SessionView[] }>(`/api/v1/sessions?${params}`);
    return body.sessions;
  }

  /** One page of sessions (GET /api/v1/sessions) with the cursor of the next; `query` as search-options.ts builds it. */
  sessionPage(query: URLSearchParams): Promise<{ sessions: SessionView[]; nextCursor: string | null }> {
    return this.get(`/api/v1/sessions?${query}`);
  }

  /** One page of events across sessions, newest first (GET /api/v1/events), with the cursor of the next. */
  eventPage(query: URLSearchParams): Promise<{ events: FoundEventView[]; nextCursor: string | null }> {
    return this.get(`/api/v1/events?${query}`);
  }

  getSession(id: string): Promise<{ session: SessionView; events: EventView[] }> {
    return this.get(`/api/v1/sessions/${encodeURIComponent(id)}`);
  }

  /** Every chunk of the session's streams, as stored (for `gatehouse verify ID`). */
  sessionChunks(id: string): Promise<{ chunks: ChunkView[] }> {
    return this.get(`/api/v1/sessions/${encodeURIComponent(id)}/chunks`);
  }

  /** A stream exported as text: asciicast v2 or JSON lines (`format`). */
  exportStream(id: string, streamId: number | undefined, format: string): Promise<string> {
    const params = new URLSearchParams({ format });
    return this.requestText("GET", `/api/v1/sessions/${encodeURIComponent(id)}/streams/${streamId ?? "first"}?${params}`);
  }

  createKey(identity: string, expires: string | undefined): Promise<KeyView & { key: string }> {
    return this.request("POST", "/api/v1/keys", { identity, expires });
  }

  /** Both kinds: access keys, and SSH public keys (empty from a gateway older than SSH keys). */
  async listKeys(identity: string | undefined): Promise<{ keys: KeyView[]; sshKeys: SshKeyView[] }> {
    const query = identity ? `?identity=${encodeURIComponent(identity)}` : "";
    const answer = await this.get<{ keys: KeyView[]; sshKeys?: SshKeyView[] }>(`/api/v1/keys${query}`);
    return { keys: answer.keys, sshKeys: answer.sshKeys ?? [] };
  }

  addSshKey(identity: string, publicKey: string, expires: string | undefined): Promise<SshKeyView> {
    return this.request("POST", "/api/v1/keys/ssh", { identity, publicKey, expires });
  }

  sshHostKey(): Promise<SshHostKey> {
    return this.get("/api/v1/ssh/host-key");
  }

  kubernetesEndpoint(): Promise<KubernetesEndpoint> {
    return this.get("/api/v1/kubernetes/endpoint");
  }

  revokeKey(id: string): Promise<{ id: string; revoked: boolean }> {
    return this.request("DELETE", `/api/v1/keys/${encodeURIComponent(id)}`);
  }

  /** Every gateway's seal public key registered in the store (empty from a gateway older than seal-key registration). */
  async sealKeys(): Promise<SealKeyView[]> {
    try {
      return (await this.get<{ sealKeys: SealKeyView[] }>("/api/v1/seal-keys")).sealKeys;
    } catch (error) {
      if (error instanceof GatewayError && /\b404\b/.test(error.message)) return [];
      throw error;
    }
  }

  retireSealKey(keyId: string): Promise<SealKeyView & { alreadyRetired: boolean }> {
    return this.request("POST", `/api/v1/seal-keys/${encodeURIComponent(keyId)}/retire`, {});
  }

  async identities(): Promise<IdentityView[]> {
    return (await this.get<{ identities: IdentityView[] }>("/api/v1/identities")).identities;
  }

  setIdentityDisabled(identity: string, disabled: boolean): Promise<IdentityView> {
    return this.request("PUT", `/api/v1/identities/${encodeURIComponent(identity)}`, { disabled });
  }

  private get<T>(path: string): Promise<T> {
    return this.request("GET", path);
  }

  private async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const { response, text } = await this.send(method, path, body);
    let answer: unknown;
    try {
      answer = JSON.parse(text);
    } catch {
      throw new GatewayError("API_ERROR", `the gateway answered ${response.status} with a body that is not JSON`);
    }
    if (!response.ok) throw this.failure(response, answer, text);
    return answer as T;
  }

  /** A request whose answer is text (an export), not JSON; errors still come as JSON. */
  private async requestText(method: string, path: string): Promise<string> {
    const { response, text } = await this.send(method, path, undefined);
    if (response.ok) return text;
    let answer: unknown = {};
    try {
      answer = JSON.parse(text);
    } catch {
      // not JSON: the text itself is the message
    }
    throw this.failure(response, answer, text);
  }

  private failure(response: Response, answer: unknown, text: string): GatewayError {
    const error = (answer as { error?: { code?: string; message?: string } }).error;
    // The API's own message names the HTTP header; a CLI user sets an environment variable.
    const hint = response.status === 401 ? ` (${this.target.token === undefined ? "no admin token found: set" : "the admin token sent was refused: check"} GATEHOUSE_ADMIN_TOKEN, the gateway's DATA_DIR/admin-token)` : "";
    return new GatewayError("API_ERROR", `the gateway answered ${response.status} ${error?.code ?? ""}: ${error?.message ?? text}${hint}`);
  }

  private async send(method: string, path: string, body: unknown): Promise<{ response: Response; text: string }> {
    let response: Response;
    const headers: Record<string, string> = this.target.token ? { Authorization: `Bearer ${this.target.token}` } : {};
    if (body !== undefined) headers["Content-Type"] = "application/json";
    try {
      response = await this.fetch(`${this.target.url}${path}`, {
        method,
        headers,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(15_000),
      });
    } catch (cause) {
      const underlying = (cause as Error).cause instanceof Error ? ((cause as Error).cause as Error) : (cause as Error);
      const code = (underlying as NodeJS.ErrnoException).code ?? "";
      const hint = CERTIFICATE_ERRORS.has(code) ? " (an API certificate from a private CA? pass --ca FILE or set GATEHOUSE_CA)" : "";
      throw new GatewayError("API_UNREACHABLE", `cannot reach the gateway at ${this.target.url}: ${underlying.message}${hint}`, { cause });
    }
    return { response, text: await response.text() };
  }
}

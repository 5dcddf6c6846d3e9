import { readAdminToken, readState } from "../data-dir.js";
import { GatewayError } from "../errors.js";
import type { EventView, SessionView } from "../api/views.js";
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

export interface ApiTarget {
  url: string;
  token: string | undefined;
}

/**
 * Finds the gateway to ask: --gateway and GATEHOUSE_ADMIN_TOKEN when given,
 * else the gateway started from this directory (its state and admin token
 * in the data directory).
 */
export function resolveApiTarget(options: { gateway?: string; dataDir?: string; env: NodeJS.ProcessEnv }): ApiTarget {
  const dataDir = options.dataDir ?? options.env.GATEHOUSE_DATA_DIR ?? "./data";
  const url = options.gateway ?? options.env.GATEHOUSE_GATEWAY_URL ?? readState(dataDir)?.apiUrl;
  if (!url) {
    throw new GatewayError("API_UNREACHABLE", `no gateway found: none was started from this directory (no ${dataDir}/gateway.json); pass --gateway URL`);
  }
  const token = options.env.GATEHOUSE_ADMIN_TOKEN ?? readAdminToken(dataDir);
  return { url: url.replace(/\/+$/, ""), token };
}

export class ApiClient {
  constructor(private readonly target: ApiTarget) {}

  get url(): string {
    return this.target.url;
  }

  /** Sessions in id order after `after`, with their events as stored (for `gatehouse verify`). */
  evidencePage(after: string | undefined, limit: number): Promise<{ sessions: SessionRecord[]; events: SessionEvent[] }> {
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

  getSession(id: string): Promise<{ session: SessionView; events: EventView[] }> {
    return this.get(`/api/v1/sessions/${encodeURIComponent(id)}`);
  }

  createKey(identity: string, expires: string | undefined): Promise<KeyView & { key: string }> {
    return this.request("POST", "/api/v1/keys", { identity, expires });
  }

  async listKeys(identity: string | undefined): Promise<KeyView[]> {
    const query = identity ? `?identity=${encodeURIComponent(identity)}` : "";
    return (await this.get<{ keys: KeyView[] }>(`/api/v1/keys${query}`)).keys;
  }

  revokeKey(id: string): Promise<{ id: string; revoked: boolean }> {
    return this.request("DELETE", `/api/v1/keys/${encodeURIComponent(id)}`);
  }

  private get<T>(path: string): Promise<T> {
    return this.request("GET", path);
  }

  private async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    let response: Response;
    const headers: Record<string, string> = this.target.token ? { Authorization: `Bearer ${this.target.token}` } : {};
    if (body !== undefined) headers["Content-Type"] = "application/json";
    try {
      response = await fetch(`${this.target.url}${path}`, {
        method,
        headers,
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(15_000),
      });
    } catch (cause) {
      throw new GatewayError("API_UNREACHABLE", `cannot reach the gateway at ${this.target.url}: ${(cause as Error).cause instanceof Error ? ((cause as Error).cause as Error).message : (cause as Error).message}`, { cause });
    }
    const text = await response.text();
    let answer: unknown;
    try {
      answer = JSON.parse(text);
    } catch {
      throw new GatewayError("API_ERROR", `the gateway answered ${response.status} with a body that is not JSON`);
    }
    if (!response.ok) {
      const error = (answer as { error?: { code?: string; message?: string } }).error;
      throw new GatewayError("API_ERROR", `the gateway answered ${response.status} ${error?.code ?? ""}: ${error?.message ?? text}`);
    }
    return answer as T;
  }
}

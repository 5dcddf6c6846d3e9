// Calls to the gateway's API with the console's sign-in cookie (HttpOnly, SameSite=Strict; the page
// never sees it). Requests that change anything carry the CSRF header the gateway requires of a
// cookie-authenticated request (a cross-site page cannot set it without a CORS preflight the
// gateway never grants).

export const CSRF_HEADER = "X-Gatehouse-Console";

export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

async function call<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: "application/json" };
  if (method !== "GET") headers[CSRF_HEADER] = "1";
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, { method, headers, credentials: "same-origin", cache: "no-store", ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
  const text = await response.text();
  let parsed: unknown = undefined;
  try {
    parsed = text === "" ? undefined : JSON.parse(text);
  } catch {
    // not JSON: reported below
  }
  if (!response.ok) {
    const error = (parsed as { error?: { code?: string; message?: string } } | undefined)?.error;
    throw new ApiFailure(response.status, error?.code ?? "http_error", error?.message ?? `${response.status} ${response.statusText}`);
  }
  return parsed as T;
}

export const api = {
  get: <T>(path: string) => call<T>("GET", path),
  post: <T>(path: string, body?: unknown) => call<T>("POST", path, body),
};

export interface Me {
  name: string;
  /** admin_token or oidc */
  method: string;
  auditor: boolean;
  groups: string[];
}

export interface AuthInfo {
  me: Me | null;
  oidc: boolean;
}

export interface Identity {
  name: string;
  issuer?: string | null;
  subject?: string | null;
  groups?: string[];
  method?: string | null;
}

export interface Session {
  id: string;
  identity: Identity;
  connection: string;
  protocol: string;
  connector?: string | null;
  clientAddress?: string | null;
  clientApplication?: string | null;
  startedAt: string;
  endedAt: string | null;
  endReason: string | null;
  eventCount: number;
  finalHash: string | null;
  sealSignature: string | null;
}

export interface SessionEvent {
  sessionId: string;
  seq: number;
  time: string;
  kind: string;
  command?: string | null;
  params?: unknown[] | null;
  outcome?: "ok" | "error" | null;
  details?: Record<string, unknown> | null;
  durationUs?: number | null;
  identity?: string;
  connection?: string;
  protocol?: string;
}

export interface Verdict {
  ok: boolean;
  open: boolean;
  events: number;
  failure?: { seq: number | null; reason: string; message: string; stream?: { id: number; chunk: number | null } };
  keyId: string;
  trustedKeys?: string[];
  keysFrom?: "pinned" | "store";
}

export interface ConnectorView {
  id: string;
  name: string;
  remoteAddress: string;
  connectedUs: number;
  draining: boolean;
  streams: number;
  roundTripMs?: number | null;
}

export interface ConnectionView {
  name: string;
  protocol: string;
  connector: string;
  attached: number;
}

import { randomBytes } from "node:crypto";
import type { IncomingMessage } from "node:http";
import type { Clock } from "../clock.js";

// Console sign-ins, kept in the gateway's memory (no migration): a restart, or another gateway
// replica behind a load balancer without session affinity, asks people to sign in again. The
// browser holds only a random id in an HttpOnly, SameSite=Strict cookie; the page never sees it.

/** Who is reading the record, and how much of it they may read. */
export interface Viewer {
  /** "admin" for the admin token; else the person's identity (identity.oidc.nameClaim of their ID token). */
  name: string;
  method: "admin_token" | "oidc";
  /** Sees every session (the admin token, or a member of console.auditors). */
  auditor: boolean;
  groups: string[];
}

export const ADMIN_VIEWER: Viewer = Object.freeze({ name: "admin", method: "admin_token", auditor: true, groups: [] }) as Viewer;

export const SESSION_COOKIE = "gatehouse_console";
/** The header a cookie-authenticated request that changes anything must carry (see csrfSafe). */
export const CSRF_HEADER = "x-gatehouse-console";

/** At most this many live sign-ins; the oldest goes first beyond it. */
const MAX_SIGN_INS = 10_000;

interface SignIn {
  viewer: Viewer;
  expiresUs: number;
}

export class SignIns {
  private readonly byId = new Map<string, SignIn>();

  constructor(
    private readonly ttlMs: () => number,
    private readonly clock: Clock,
  ) {}

  create(viewer: Viewer): string {
    this.sweep();
    while (this.byId.size >= MAX_SIGN_INS) this.byId.delete(this.byId.keys().next().value!);
    const id = randomBytes(32).toString("base64url");
    this.byId.set(id, { viewer, expiresUs: this.clock() + this.ttlMs() * 1000 });
    return id;
  }

  /** The viewer of the request's console cookie, if it names a live sign-in. */
  viewerOf(request: IncomingMessage): Viewer | undefined {
    const id = cookie(request, SESSION_COOKIE);
    if (!id) return undefined;
    const signIn = this.byId.get(id);
    if (!signIn) return undefined;
    if (signIn.expiresUs <= this.clock()) {
      this.byId.delete(id);
      return undefined;
    }
    return signIn.viewer;
  }

  end(request: IncomingMessage): void {
    const id = cookie(request, SESSION_COOKIE);
    if (id) this.byId.delete(id);
  }

  private sweep(): void {
    const now = this.clock();
    for (const [id, signIn] of this.byId) if (signIn.expiresUs <= now) this.byId.delete(id);
  }
}

export function cookie(request: IncomingMessage, name: string): string | undefined {
  const header = request.headers.cookie;
  if (!header) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

export interface CookieOptions {
  secure: boolean;
  sameSite: "Strict" | "Lax";
  path: string;
  /** Seconds; 0 clears the cookie. */
  maxAge: number;
}

export function setCookie(name: string, value: string, options: CookieOptions): string {
  return `${name}=${value}; Path=${options.path}; HttpOnly; SameSite=${options.sameSite}; Max-Age=${options.maxAge}${options.secure ? "; Secure" : ""}`;
}

/**
 * A cookie-authenticated request may change something only with the console's header: a page on
 * another site cannot add a custom header without a CORS preflight, which this gateway never
 * grants (SameSite=Strict already keeps the cookie off cross-site requests; this is the second lock).
 */
export function csrfSafe(request: IncomingMessage): boolean {
  const method = request.method ?? "GET";
  if (method === "GET" || method === "HEAD") return true;
  return request.headers[CSRF_HEADER] === "1";
}

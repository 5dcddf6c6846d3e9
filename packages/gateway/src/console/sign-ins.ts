import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { appendFileSync, linkSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import type { IncomingMessage } from "node:http";
import { join } from "node:path";
import type { Clock } from "../clock.js";
import { GatewayError } from "../errors.js";

// Console sign-ins need no store table (no migration) and work across the processes of
// `gateway --workers N`, which share the api listener: the cookie itself says who signed in and
// until when, signed (HMAC-SHA256) with a key every process of the gateway reads from its data
// directory (DATA_DIR/console-cookie-key, made at first use, mode 0600). The browser keeps it in an
// HttpOnly cookie the page never sees. Sign-out clears the cookie in the browser and revokes it:
// its id goes into DATA_DIR/console-revoked (appended, one line each), which every process of the
// gateway reads again whenever it changed, so a copy of the cookie is refused by every worker too,
// and after a restart. A restart keeps sign-ins; deleting the key file (and restarting) ends them all.

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
export const COOKIE_KEY_FILE = "console-cookie-key";
/** Revoked sign-ins, "ID EXPIRY_US" per line, shared by the gateway's processes. */
export const REVOKED_FILE = "console-revoked";
/** Past this size the revocations file is rewritten without the expired ones. */
const REVOKED_FILE_MAX_BYTES = 1024 * 1024;

/** Groups kept in a cookie (for display; whether one is an auditor is decided at sign-in): a cookie stays small. */
const MAX_COOKIE_GROUPS = 20;
/** Revoked sign-ins remembered by this process (until they expire anyway). */
const MAX_REVOKED = 10_000;

interface Claims {
  /** A random id, for revocation. */
  i: string;
  n: string;
  m: Viewer["method"];
  a: boolean;
  g: string[];
  /** Expiry, µs since the epoch. */
  e: number;
}

export class SignIns {
  private readonly revoked = new Map<string, number>();

  /** The revocations file's size and mtime when last read: read again when either changes. */
  private revokedSeen = "";

  constructor(
    private readonly key: Buffer,
    private readonly ttlMs: () => number,
    private readonly clock: Clock,
    /** DATA_DIR/console-revoked; left out (tests), revocations stay in this process. */
    private readonly revokedFile?: string,
  ) {}

  /** The cookie value for a new sign-in of `viewer`. */
  create(viewer: Viewer): string {
    const claims: Claims = { i: randomBytes(12).toString("base64url"), n: viewer.name, m: viewer.method, a: viewer.auditor, g: viewer.groups.slice(0, MAX_COOKIE_GROUPS), e: this.clock() + this.ttlMs() * 1000 };
    const payload = Buffer.from(JSON.stringify(claims), "utf8").toString("base64url");
    return `v1.${payload}.${this.mac(payload)}`;
  }

  /** The viewer of the request's console cookie, if it is one this gateway signed, not expired or revoked. */
  viewerOf(request: IncomingMessage): Viewer | undefined {
    const claims = this.claimsOf(cookie(request, SESSION_COOKIE));
    if (!claims) return undefined;
    this.readRevoked();
    if (this.revoked.has(claims.i)) return undefined;
    return { name: claims.n, method: claims.m, auditor: claims.a, groups: claims.g };
  }

  end(request: IncomingMessage): void {
    const claims = this.claimsOf(cookie(request, SESSION_COOKIE));
    if (!claims) return;
    const now = this.clock();
    for (const [id, expires] of this.revoked) if (expires <= now) this.revoked.delete(id);
    while (this.revoked.size >= MAX_REVOKED) this.revoked.delete(this.revoked.keys().next().value!);
    this.revoked.set(claims.i, claims.e);
    if (this.revokedFile === undefined) return;
    // One short line with O_APPEND: the other workers' appends cannot interleave with it.
    appendFileSync(this.revokedFile, `${claims.i} ${claims.e}\n`, { mode: 0o600 });
    if (statSync(this.revokedFile).size > REVOKED_FILE_MAX_BYTES) this.compactRevoked();
  }

  /** Reads the revocations file again when it changed since the last read (a stat per request otherwise). */
  private readRevoked(): void {
    if (this.revokedFile === undefined) return;
    let seen: string;
    try {
      const stat = statSync(this.revokedFile);
      seen = `${stat.size}:${stat.mtimeMs}`;
    } catch {
      return; // none yet
    }
    if (seen === this.revokedSeen) return;
    this.revokedSeen = seen;
    const now = this.clock();
    for (const line of readFileSync(this.revokedFile, "utf8").split("\n")) {
      const [id, expires] = line.split(" ");
      if (id && Number(expires) > now) this.revoked.set(id, Number(expires));
    }
    while (this.revoked.size > MAX_REVOKED) this.revoked.delete(this.revoked.keys().next().value!);
  }

  /** Rewrites the revocations file with the ones not yet expired (a revocation appended meanwhile by another worker is kept in its memory until it expires). */
  private compactRevoked(): void {
    const now = this.clock();
    const temporary = `${this.revokedFile}.${process.pid}.tmp`;
    writeFileSync(temporary, [...this.revoked].filter(([, e]) => e > now).map(([i, e]) => `${i} ${e}\n`).join(""), { mode: 0o600 });
    renameSync(temporary, this.revokedFile!);
  }

  private claimsOf(value: string | undefined): Claims | undefined {
    const match = /^v1\.([A-Za-z0-9_-]{1,4000})\.([A-Za-z0-9_-]{43})$/.exec(value ?? "");
    if (!match) return undefined;
    const expected = Buffer.from(this.mac(match[1]!), "base64url");
    const given = Buffer.from(match[2]!, "base64url");
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    let claims: Claims;
    try {
      claims = JSON.parse(Buffer.from(match[1]!, "base64url").toString("utf8")) as Claims;
    } catch {
      return undefined;
    }
    if (typeof claims.e !== "number" || claims.e <= this.clock()) return undefined;
    if (typeof claims.n !== "string" || (claims.m !== "admin_token" && claims.m !== "oidc") || typeof claims.a !== "boolean" || !Array.isArray(claims.g) || typeof claims.i !== "string") return undefined;
    return claims;
  }

  private mac(payload: string): string {
    return createHmac("sha256", this.key).update(`gatehouse-console-v1.${payload}`).digest("base64url");
  }
}

/**
 * The key console cookies are signed with: DATA_DIR/console-cookie-key, made at first use. Every
 * worker of `gateway --workers N` shares DATA_DIR, and they may start at once: the file is written
 * under a temporary name and linked into place, so one wins and the others read it whole.
 */
export function consoleCookieKey(dataDir: string): Buffer {
  const file = join(dataDir, COOKIE_KEY_FILE);
  const read = () => Buffer.from(readFileSync(file, "utf8").trim(), "base64url");
  try {
    const key = read();
    if (key.length >= 32) return key;
    throw new Error(`${file} holds ${key.length} bytes of key, not 32`);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw new GatewayError("DATA_DIR_UNUSABLE", `cannot use the console's cookie key ${file}: ${(error as Error).message}`, { cause: error });
  }
  const temporary = `${file}.${process.pid}.${randomBytes(4).toString("hex")}`;
  try {
    writeFileSync(temporary, `${randomBytes(32).toString("base64url")}\n`, { mode: 0o600 });
    try {
      linkSync(temporary, file);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
    return read();
  } catch (error) {
    throw new GatewayError("DATA_DIR_UNUSABLE", `cannot make the console's cookie key ${file}: ${(error as Error).message}`, { cause: error });
  } finally {
    rmSync(temporary, { force: true });
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

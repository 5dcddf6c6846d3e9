import { join } from "node:path";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Clock } from "../clock.js";
import type { GatewayConfig } from "../config/schema.js";
import { resolveSecretRef } from "../config/store-connection.js";
import { matchesSha256 } from "../data-dir.js";
import { ApiError, readJson, sendJson } from "../api/json.js";
import type { Logger } from "../logger.js";
import { OidcSignIn } from "./oidc-sign-in.js";
import { ADMIN_VIEWER, consoleCookieKey, cookie, csrfSafe, REVOKED_FILE, SESSION_COOKIE, setCookie, SignIns, type Viewer } from "./sign-ins.js";
import { findConsoleDist, SECURITY_HEADERS, sendStatic } from "./static-files.js";

// The web console on the api listener:
//   GET  /ui/...                the built single-page app (static-files.ts)
//   GET  /ui/auth/me            who is signed in ({ me: null } when nobody), and whether OIDC sign-in is on
//   POST /ui/auth/token         sign in with the admin token ({ "token": … }); sets the console cookie
//   POST /ui/auth/sign-out      ends the sign-in
//   GET  /ui/auth/oidc/start    to the identity provider (authorization code + PKCE)
//   GET  /ui/auth/callback      back from it; sets the console cookie
// The page then reads /api/v1 with its cookie; record-scope.ts decides what each viewer may read.

const LOGIN_COOKIE = "gatehouse_console_login";
const MAX_BODY_BYTES = 16 * 1024;

export interface ConsoleOptions {
  config: () => GatewayConfig;
  adminTokenSha256: string;
  clock: Clock;
  logger: Logger;
  env: NodeJS.ProcessEnv;
  /** The data directory (shared by every worker): where the cookie key lives (sign-ins.ts). */
  dataDir: string;
}

export class Console {
  readonly signIns: SignIns;
  private readonly oidc: OidcSignIn;
  private dist: string | undefined;
  private distLookedUp = false;

  constructor(private readonly options: ConsoleOptions) {
    const settings = () => options.config().console;
    this.signIns = new SignIns(consoleCookieKey(options.dataDir), () => settings().sessionTtlMinutes * 60_000, options.clock, join(options.dataDir, REVOKED_FILE));
    // Read where the current config points (a reload may change it); resolved once here too, so a
    // missing variable or file is a start error naming the key.
    const clientSecret = () => {
      const ref = settings().oidc?.clientSecret;
      return ref === undefined ? undefined : resolveSecretRef(ref, options.env, "console.oidc.clientSecret");
    };
    clientSecret();
    this.oidc = new OidcSignIn(() => ({ oidc: options.config().identity.oidc, console: settings() }), clientSecret, options.clock);
  }

  get enabled(): boolean {
    return this.options.config().console.enabled;
  }

  /** The viewer a request's console cookie names (never the bearer token: http-api checks that first). */
  viewerOf(request: IncomingMessage): Viewer | undefined {
    if (!this.enabled) return undefined;
    const viewer = this.signIns.viewerOf(request);
    if (viewer && !csrfSafe(request)) throw new ApiError("forbidden", "a console request that changes anything needs the X-Gatehouse-Console header");
    return viewer;
  }

  /** Answers /ui and everything under it. */
  async handle(request: IncomingMessage, response: ServerResponse, url: URL): Promise<void> {
    if (!this.enabled) throw new ApiError("not_found", "the web console is turned off (console.enabled: false)");
    const method = request.method ?? "GET";
    const path = url.pathname;
    if (path === "/ui") {
      response.writeHead(302, { ...SECURITY_HEADERS, Location: "/ui/" });
      return void response.end();
    }
    if (path.startsWith("/ui/auth/")) return this.auth(request, response, url, method);
    if (method !== "GET" && method !== "HEAD") throw new ApiError("method_not_allowed", `${method} is not supported on ${path}`);
    const dist = this.distDir();
    if (!dist) {
      response.writeHead(503, { ...SECURITY_HEADERS, "Content-Type": "text/plain; charset=utf-8", "Cache-Control": "no-store" });
      return void response.end("The web console is not built: run `pnpm build` (packages/console), or set console.dist.\n");
    }
    let relative: string;
    try {
      relative = decodeURIComponent(path.slice("/ui/".length));
    } catch {
      throw new ApiError("bad_request", "a malformed path");
    }
    if (!sendStatic(response, dist, relative, method === "HEAD")) throw new ApiError("not_found", `no file ${path}`);
  }

  private distDir(): string | undefined {
    if (!this.distLookedUp) {
      this.dist = findConsoleDist(this.options.config().console.dist);
      this.distLookedUp = this.dist !== undefined;
      if (!this.dist) this.options.logger.warn({ dist: this.options.config().console.dist ?? null }, "the web console is not built; /ui answers 503");
    }
    return this.dist;
  }

  private async auth(request: IncomingMessage, response: ServerResponse, url: URL, method: string): Promise<void> {
    const secure = this.options.config().api.tls !== undefined;
    const path = url.pathname;
    if (path === "/ui/auth/me" && method === "GET") {
      const viewer = this.signIns.viewerOf(request);
      return sendJson(response, 200, { me: viewer ?? null, oidc: this.oidc.enabled });
    }
    if (path === "/ui/auth/token" && method === "POST") {
      if (!csrfSafe(request)) throw new ApiError("forbidden", "sign-in needs the X-Gatehouse-Console header");
      const body = await readJson(request, MAX_BODY_BYTES);
      const token = typeof body.token === "string" ? body.token : "";
      if (token === "" || !matchesSha256(token, this.options.adminTokenSha256)) {
        this.options.logger.warn({ client: request.socket.remoteAddress }, "console sign-in refused: not the admin token");
        throw new ApiError("unauthorized", "the admin token is not valid");
      }
      const id = this.signIns.create(ADMIN_VIEWER);
      this.options.logger.info({ client: request.socket.remoteAddress, method: "admin_token" }, "console sign-in");
      response.setHeader("Set-Cookie", setCookie(SESSION_COOKIE, id, { secure, sameSite: "Strict", path: "/", maxAge: this.ttlSeconds() }));
      return sendJson(response, 200, { me: ADMIN_VIEWER });
    }
    if (path === "/ui/auth/sign-out" && method === "POST") {
      if (!csrfSafe(request)) throw new ApiError("forbidden", "sign-out needs the X-Gatehouse-Console header");
      this.signIns.end(request);
      response.setHeader("Set-Cookie", setCookie(SESSION_COOKIE, "", { secure, sameSite: "Strict", path: "/", maxAge: 0 }));
      return sendJson(response, 200, { signedOut: true });
    }
    if (path === "/ui/auth/oidc/start" && method === "GET") {
      if (!this.oidc.enabled) throw new ApiError("not_found", "OIDC sign-in is not configured (console.oidc)");
      const { url: to, state } = await this.oidc.start().catch((error: unknown) => {
        this.options.logger.warn({ err: error }, "console OIDC sign-in could not start");
        throw new ApiError("store_unavailable", "the identity provider cannot be reached; try again, or sign in with the admin token");
      });
      // Lax: the provider's redirect back is a cross-site navigation, which a Strict cookie would miss.
      response.writeHead(302, { ...SECURITY_HEADERS, Location: to, "Cache-Control": "no-store", "Set-Cookie": setCookie(LOGIN_COOKIE, state, { secure, sameSite: "Lax", path: "/ui/auth/", maxAge: 600 }) });
      return void response.end();
    }
    if (path === "/ui/auth/callback" && method === "GET") {
      const clearLogin = setCookie(LOGIN_COOKIE, "", { secure, sameSite: "Lax", path: "/ui/auth/", maxAge: 0 });
      const providerError = url.searchParams.get("error");
      let viewer: Viewer;
      try {
        if (providerError) throw new Error(`the identity provider answered ${providerError}: ${url.searchParams.get("error_description") ?? ""}`);
        viewer = await this.oidc.finish(url, cookie(request, LOGIN_COOKIE));
      } catch (error) {
        this.options.logger.warn({ err: error, client: request.socket.remoteAddress }, "console OIDC sign-in failed");
        response.writeHead(302, { ...SECURITY_HEADERS, Location: `/ui/#/sessions?signin_error=${encodeURIComponent("Sign-in with the identity provider failed; see the gateway's log.")}`, "Set-Cookie": clearLogin, "Cache-Control": "no-store" });
        return void response.end();
      }
      const id = this.signIns.create(viewer);
      this.options.logger.info({ client: request.socket.remoteAddress, method: "oidc", identity: viewer.name, auditor: viewer.auditor }, "console sign-in");
      response.writeHead(302, {
        ...SECURITY_HEADERS,
        Location: "/ui/#/sessions",
        "Cache-Control": "no-store",
        "Set-Cookie": [setCookie(SESSION_COOKIE, id, { secure, sameSite: "Strict", path: "/", maxAge: this.ttlSeconds() }), clearLogin],
      });
      return void response.end();
    }
    throw new ApiError("not_found", `no route for ${method} ${path}`);
  }

  private ttlSeconds(): number {
    return this.options.config().console.sessionTtlMinutes * 60;
  }
}

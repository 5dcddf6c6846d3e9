import { createReadStream, existsSync, statSync } from "node:fs";
import type { ServerResponse } from "node:http";
import { createRequire } from "node:module";
import { dirname, extname, join, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

// Serves the built console (packages/console/dist) at /ui with a strict Content-Security-Policy:
// scripts and everything else only from the gateway itself, no inline script, no eval, no framing.
// style-src allows inline styles because xterm.js's renderer writes <style> elements for the
// terminal's cells; styles cannot run code, and record data never reaches the page as markup.

export const CONSOLE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self'",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join("; ");

/** The headers of every /ui answer. */
export const SECURITY_HEADERS: Record<string, string> = {
  "Content-Security-Policy": CONSOLE_CSP,
  "X-Content-Type-Options": "nosniff",
  "X-Frame-Options": "DENY",
  "Referrer-Policy": "no-referrer",
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Resource-Policy": "same-origin",
  "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
};

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".woff2": "font/woff2",
  ".json": "application/json; charset=utf-8",
  ".map": "application/json; charset=utf-8",
};

/**
 * Where the built console is: `configured` (console.dist) when given; else the @gatehouse/console
 * package's dist (a workspace or installed dependency); else packages/console/dist beside this
 * package (src/ in development, dist/ when built). Undefined when none holds an index.html.
 */
export function findConsoleDist(configured?: string): string | undefined {
  const candidates: string[] = [];
  if (configured) return existsSync(join(configured, "index.html")) ? resolve(configured) : undefined;
  try {
    const require = createRequire(import.meta.url);
    candidates.push(join(dirname(require.resolve("@gatehouse/console/package.json")), "dist"));
  } catch {
    // not installed as a package: the monorepo layout below
  }
  const here = dirname(fileURLToPath(import.meta.url));
  candidates.push(resolve(here, "../../../console/dist"), resolve(here, "../../../../packages/console/dist"));
  return candidates.find((dir) => existsSync(join(dir, "index.html")));
}

/** Sends `relative` (a path under /ui/) from `dist`; false when there is no such file. */
export function sendStatic(response: ServerResponse, dist: string, relative: string, head: boolean): boolean {
  const file = resolve(dist, relative === "" ? "index.html" : relative);
  if (file !== dist && !file.startsWith(dist + sep)) return false;
  let size: number;
  try {
    const stat = statSync(file);
    if (!stat.isFile()) return false;
    size = stat.size;
  } catch {
    return false;
  }
  const hashed = relative.startsWith("assets/");
  response.writeHead(200, {
    ...SECURITY_HEADERS,
    "Content-Type": TYPES[extname(file)] ?? "application/octet-stream",
    "Content-Length": size,
    // Vite names assets by their content: they never change; index.html always may.
    "Cache-Control": hashed ? "public, max-age=31536000, immutable" : "no-store",
  });
  if (head) response.end();
  else createReadStream(file).pipe(response);
  return true;
}

import { answers } from "./net.js";

/** A database server that is already there, as a test finds it before starting a throwaway one. */
export interface ExistingServer {
  host: string;
  port: number;
  user: string;
  /** Null: no password (the local server's administrator on a developer's machine). */
  password: string | null;
  /** The URL's path (a database name), when it had one. */
  database: string | null;
  source: "env" | "local";
}

/**
 * The server a user would expect a test to use: the URL in `envVar` when set (scheme://user:password@host:port/db),
 * else the local server on 127.0.0.1:`defaultPort` when it answers (as `defaultUser`, no password), else null.
 */
export async function findExistingServer(o: { envVar: string; defaultPort: number; defaultUser: string }): Promise<ExistingServer | null> {
  const url = process.env[o.envVar];
  if (url) {
    const parsed = new URL(url);
    return {
      host: parsed.hostname,
      port: Number(parsed.port || o.defaultPort),
      user: decodeURIComponent(parsed.username || o.defaultUser),
      password: parsed.password ? decodeURIComponent(parsed.password) : null,
      database: parsed.pathname.slice(1) || null,
      source: "env",
    };
  }
  if (await answers("127.0.0.1", o.defaultPort)) {
    return { host: "127.0.0.1", port: o.defaultPort, user: o.defaultUser, password: null, database: null, source: "local" };
  }
  return null;
}

import { request as httpsRequest } from "node:https";

// Requests to an OIDC provider (discovery, JWKS, token endpoint) go through
// fetch. Node's fetch cannot be given a CA per call, so for a provider whose
// certificate a private CA signed (identity.oidc.ca, `gatehouse token --ca`)
// this is a fetch built on node:https that trusts exactly that CA.

export interface ProviderRequestInit {
  method?: string;
  headers?: Headers | Record<string, string> | [string, string][];
  body?: string | URLSearchParams | Uint8Array | ArrayBuffer | null | unknown;
  signal?: AbortSignal | null;
  redirect?: string;
}

export type ProviderFetch = (url: string, init?: ProviderRequestInit) => Promise<Response>;

/** Cap on a provider's answer: discovery documents and JWKS are a few KB. */
const MAX_BODY_BYTES = 1024 * 1024;

/**
 * The global fetch, or, with `ca` (PEM), one that trusts only that CA for
 * https URLs (also used by the CLI for an API behind a private CA, with a
 * larger `maxBodyBytes`).
 */
export function providerFetch(ca?: string, maxBodyBytes = MAX_BODY_BYTES): ProviderFetch {
  if (ca === undefined) return (url, init) => fetch(url, init as RequestInit);
  return (url, init = {}) => {
    if (!url.startsWith("https:")) return fetch(url, init as RequestInit);
    return requestWithCa(url, init, ca, maxBodyBytes);
  };
}

function requestWithCa(url: string, init: ProviderRequestInit, ca: string, maxBodyBytes: number): Promise<Response> {
  const headers = new Headers(init.headers as ConstructorParameters<typeof Headers>[0]);
  const body = bodyBytes(init.body);
  if (body && !headers.has("content-length")) headers.set("content-length", String(body.byteLength));
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { method: init.method ?? "GET", headers: Object.fromEntries(headers), ca, signal: init.signal ?? undefined }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size > maxBodyBytes) {
          res.destroy(new Error(`the answer from ${url} exceeds ${maxBodyBytes} bytes`));
          return;
        }
        chunks.push(chunk);
      });
      res.once("error", reject);
      res.once("end", () => {
        const status = res.statusCode ?? 502;
        const responseHeaders = new Headers();
        for (const [name, value] of Object.entries(res.headers)) {
          if (value === undefined) continue;
          for (const one of Array.isArray(value) ? value : [value]) responseHeaders.append(name, one);
        }
        const nullBody = status === 204 || status === 304 || (init.method ?? "GET") === "HEAD";
        resolve(new Response(nullBody ? null : Buffer.concat(chunks), { status, statusText: res.statusMessage ?? "", headers: responseHeaders }));
      });
    });
    req.once("error", reject);
    req.end(body);
  });
}

function bodyBytes(body: ProviderRequestInit["body"]): Uint8Array | undefined {
  if (body === undefined || body === null) return undefined;
  if (typeof body === "string") return Buffer.from(body, "utf8");
  if (body instanceof URLSearchParams) return Buffer.from(body.toString(), "utf8");
  if (body instanceof Uint8Array) return body;
  if (body instanceof ArrayBuffer) return new Uint8Array(body);
  throw new TypeError("unsupported request body for a provider request");
}

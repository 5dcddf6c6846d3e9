// The body of a mutating request, as the record keeps it: Secrets' `data` and `stringData`
// values replaced (keys kept, so the record shows what changed), then capped. kubectl also copies
// the whole object into the `kubectl.kubernetes.io/last-applied-configuration` annotation, so
// that JSON is redacted too. A Secret body that cannot be read whole is withheld entirely.

export const REDACTED = "REDACTED";
const LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration";
const SECRET_FIELDS = ["data", "stringData"];

export interface RedactOptions {
  /** The request's resource (from requestInfo); a Secret body may not say `kind`. */
  resource: string;
  contentType: string;
  /** Bytes kept after redaction (default 65536). */
  maxBytes?: number;
  /** False when the caller kept only the first part of the body. */
  complete?: boolean;
}

export interface RedactedBody {
  text: string;
  redacted: boolean;
  truncated: boolean;
  /** The body was a Secret the redactor could not read, so nothing of it is kept. */
  withheld: boolean;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
const isObject = (v: unknown): v is Record<string, Json> => v !== null && typeof v === "object" && !Array.isArray(v);

function redactValues(map: Json): Json {
  if (!isObject(map)) return map === null ? null : REDACTED;
  return Object.fromEntries(Object.keys(map).map((k) => [k, map[k] === null ? null : REDACTED]));
}

/** Redacts a Secret-shaped object in place; returns whether anything was replaced. */
function redactObject(o: Json, isSecret: boolean): boolean {
  if (Array.isArray(o)) return o.map((e) => redactObject(e, isSecret)).some(Boolean);
  if (!isObject(o)) return false;
  let changed = false;
  const secret = isSecret || o.kind === "Secret";
  if (secret) {
    for (const f of SECRET_FIELDS) if (f in o && o[f] !== null) {
      o[f] = redactValues(o[f]!);
      changed = true;
    }
    const annotations = isObject(o.metadata) && isObject(o.metadata.annotations) ? o.metadata.annotations : undefined;
    if (annotations && typeof annotations[LAST_APPLIED] === "string") {
      try {
        const applied = JSON.parse(annotations[LAST_APPLIED]) as Json;
        redactObject(applied, true);
        annotations[LAST_APPLIED] = JSON.stringify(applied);
      } catch {
        annotations[LAST_APPLIED] = REDACTED;
      }
      changed = true;
    }
  }
  // A List (kubectl create -f with several documents, `items`) may hold Secrets of its own.
  if (Array.isArray(o.items)) changed = o.items.map((e) => redactObject(e, false)).some(Boolean) || changed;
  return changed;
}

/** JSON patch ops that write under /data or /stringData carry secret values. */
function redactJsonPatch(ops: Json[]): boolean {
  let changed = false;
  for (const op of ops) {
    if (!isObject(op) || typeof op.path !== "string" || !("value" in op)) continue;
    if (/^\/(data|stringData)(\/|$)/.test(op.path)) {
      op.value = op.path.split("/").length > 2 ? REDACTED : redactValues(op.value!);
      changed = true;
    } else if (op.path === "/metadata/annotations" || op.path.startsWith(`/metadata/annotations/${LAST_APPLIED.replace("/", "~1")}`)) {
      op.value = REDACTED;
      changed = true;
    }
  }
  return changed;
}

/**
 * YAML (server-side apply may send it): lines under a top-level `data:`/`stringData:` keep their
 * key and lose their value; block scalars (`|`, `>`) under such a key lose their lines. Anything
 * this cannot follow (flow maps, anchors) makes the body withheld.
 */
function redactYaml(text: string): { text: string; ok: boolean } {
  const out: string[] = [];
  let inSecret = false;
  let keyIndent = -1;
  let blockIndent = -1;
  for (const line of text.split("\n")) {
    const indent = line.length - line.trimStart().length;
    const trimmed = line.trim();
    if (/^(data|stringData):\s*(#.*)?$/.test(line)) {
      inSecret = true;
      keyIndent = -1;
      out.push(line);
      continue;
    }
    if (/^(data|stringData):/.test(line)) return { text: "", ok: false }; // flow map on one line
    if (inSecret && trimmed !== "" && indent === 0) inSecret = false;
    if (!inSecret || trimmed === "" || trimmed.startsWith("#")) {
      out.push(line);
      continue;
    }
    if (blockIndent >= 0 && indent > keyIndent) continue; // a block scalar's lines
    blockIndent = -1;
    if (keyIndent < 0) keyIndent = indent;
    const m = /^(\s*)("[^"]*"|'[^']*'|[^:#&*]+):(\s+(.*))?$/.exec(line);
    if (!m || indent !== keyIndent) return { text: "", ok: false };
    const value = (m[4] ?? "").trim();
    if (value.startsWith("|") || value.startsWith(">") || value === "") blockIndent = indent;
    if (value.startsWith("&") || value.startsWith("*")) return { text: "", ok: false };
    out.push(`${m[1]}${m[2]}: ${REDACTED}`);
  }
  return { text: out.join("\n"), ok: true };
}

function cap(text: string, maxBytes: number): { text: string; truncated: boolean } {
  const bytes = Buffer.from(text, "utf8");
  if (bytes.length <= maxBytes) return { text, truncated: false };
  // Cut on a character boundary: drop a partial UTF-8 sequence at the end.
  let end = maxBytes;
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return { text: bytes.subarray(0, end).toString("utf8"), truncated: true };
}

export function redactBody(body: Uint8Array | string, options: RedactOptions): RedactedBody {
  const maxBytes = options.maxBytes ?? 65536;
  const text = typeof body === "string" ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString("utf8");
  const isSecret = options.resource === "secrets";
  const mayHoldSecret = isSecret || /"kind"\s*:\s*"Secret"|^kind:\s*Secret\s*$|last-applied-configuration/m.test(text);
  const withheld: RedactedBody = { text: "", redacted: true, truncated: false, withheld: true };
  if (!mayHoldSecret) return { ...cap(text, maxBytes), redacted: false, withheld: false };
  if (options.complete === false) return withheld;

  const trimmed = text.trimStart();
  if (trimmed.startsWith("{") || trimmed.startsWith("[")) {
    let doc: Json;
    try {
      doc = JSON.parse(text) as Json;
    } catch {
      return withheld;
    }
    const changed = options.contentType.startsWith("application/json-patch+json") && Array.isArray(doc) ? redactJsonPatch(doc) : redactObject(doc, isSecret);
    return { ...cap(JSON.stringify(doc), maxBytes), redacted: changed, withheld: false };
  }
  if (options.contentType.includes("yaml")) {
    const y = redactYaml(text);
    if (!y.ok) return withheld;
    return { ...cap(y.text, maxBytes), redacted: y.text !== text, withheld: false };
  }
  return withheld;
}

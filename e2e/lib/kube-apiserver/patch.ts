// The patch kinds kubectl sends: strategic merge (client-side apply, `kubectl patch`), JSON merge
// (RFC 7386), JSON patch (RFC 6902), and server-side apply (treated as a merge of the applied
// configuration, which is what the result looks like for a single manager).

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
const isObject = (v: unknown): v is Record<string, Json> => v !== null && typeof v === "object" && !Array.isArray(v);

export function mergePatch(target: Json, patch: Json): Json {
  if (!isObject(patch)) return patch;
  const out: Record<string, Json> = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k] ?? null, v);
  }
  return out;
}

/**
 * Strategic merge: like a merge patch, but lists of objects with a `name` (containers, ports,
 * env, volumes) merge element by element on that key, and `$patch: delete` removes an element.
 */
export function strategicMergePatch(target: Json, patch: Json): Json {
  if (!isObject(patch)) return patch;
  const out: Record<string, Json> = isObject(target) ? { ...target } : {};
  for (const [k, v] of Object.entries(patch)) {
    if (k.startsWith("$")) continue;
    if (v === null) delete out[k];
    else if (Array.isArray(v) && Array.isArray(out[k]) && v.every((e) => isObject(e) && typeof e.name === "string")) {
      const merged = [...(out[k] as Json[])];
      for (const e of v as Record<string, Json>[]) {
        const at = merged.findIndex((m) => isObject(m) && m.name === e.name);
        if (e.$patch === "delete") {
          if (at >= 0) merged.splice(at, 1);
        } else if (at >= 0) merged[at] = strategicMergePatch(merged[at]!, e);
        else merged.push(strategicMergePatch(null, e));
      }
      out[k] = merged;
    } else out[k] = strategicMergePatch(out[k] ?? null, v);
  }
  return out;
}

function pointer(path: string): string[] {
  return path.split("/").slice(1).map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"));
}

export function jsonPatch(target: Json, ops: { op: string; path: string; value?: Json; from?: string }[]): Json {
  const doc = structuredClone(target);
  for (const op of ops) {
    const parts = pointer(op.path);
    const last = parts.pop()!;
    let parent: Json = doc;
    for (const p of parts) parent = Array.isArray(parent) ? parent[Number(p)]! : (parent as Record<string, Json>)[p]!;
    if (parent === undefined || parent === null || typeof parent !== "object") throw new Error(`path ${op.path} does not exist`);
    if (op.op === "test") {
      const cur = Array.isArray(parent) ? parent[Number(last)] : parent[last];
      if (JSON.stringify(cur) !== JSON.stringify(op.value)) throw new Error(`test failed at ${op.path}`);
    } else if (op.op === "remove") {
      if (Array.isArray(parent)) parent.splice(Number(last), 1);
      else delete parent[last];
    } else if (op.op === "add" || op.op === "replace") {
      if (Array.isArray(parent)) {
        if (last === "-") parent.push(op.value!);
        else parent.splice(Number(last), op.op === "add" ? 0 : 1, op.value!);
      } else parent[last] = op.value!;
    } else throw new Error(`unsupported op ${op.op}`);
  }
  return doc;
}

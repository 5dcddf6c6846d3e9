// Label and field selectors as list and watch requests carry them (`labelSelector=app=web,tier!=db`,
// `fieldSelector=metadata.name=web-1`). Equality, inequality, set (`in`, `notin`) and existence.

type Obj = { metadata?: { name?: string; namespace?: string; labels?: Record<string, string> }; [k: string]: unknown };
type Test = (get: (key: string) => string | undefined) => boolean;

function splitTerms(selector: string): string[] {
  const terms: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < selector.length; i++) {
    const c = selector[i];
    if (c === "(") depth++;
    else if (c === ")") depth--;
    else if (c === "," && depth === 0) {
      terms.push(selector.slice(start, i));
      start = i + 1;
    }
  }
  terms.push(selector.slice(start));
  return terms.map((t) => t.trim()).filter((t) => t !== "");
}

function parseTerm(term: string): Test {
  let m = /^(\S+)\s+(in|notin)\s+\((.*)\)$/.exec(term);
  if (m) {
    const [, key, op, values] = m;
    const set = values!.split(",").map((v) => v.trim());
    return op === "in" ? (get) => set.includes(get(key!) ?? "\0") : (get) => !set.includes(get(key!) ?? "\0");
  }
  m = /^([^=!\s]+)\s*(==|=|!=)\s*(.*)$/.exec(term);
  if (m) {
    const [, key, op, value] = m;
    return op === "!=" ? (get) => get(key!) !== value : (get) => get(key!) === value;
  }
  if (term.startsWith("!")) return (get) => get(term.slice(1)) === undefined;
  return (get) => get(term) !== undefined;
}

export function labelMatcher(selector: string | undefined): (o: Obj) => boolean {
  if (!selector) return () => true;
  const tests = splitTerms(selector).map(parseTerm);
  return (o) => tests.every((t) => t((k) => o.metadata?.labels?.[k]));
}

function field(o: Obj, path: string): string | undefined {
  let cur: unknown = o;
  for (const p of path.split(".")) {
    if (cur === null || typeof cur !== "object") return undefined;
    cur = (cur as Record<string, unknown>)[p];
  }
  return cur === undefined ? undefined : String(cur);
}

export function fieldMatcher(selector: string | undefined): (o: Obj) => boolean {
  if (!selector) return () => true;
  const tests = splitTerms(selector).map(parseTerm);
  // A field the object lacks compares as "" (how the API server's field sets behave).
  return (o) => tests.every((t) => t((k) => field(o, k) ?? ""));
}

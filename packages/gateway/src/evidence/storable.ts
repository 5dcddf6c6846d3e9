// Postgres cannot store a NUL character or an unpaired UTF-16 surrogate in text or jsonb, and a
// client can send both (a NUL in a SQL literal's bytes, a lone surrogate from a broken encoder).
// The record must keep them and stay verifiable, so they are escaped before the event is hashed
// and stored — the hash covers the escaped form, which is what `verify` reads back:
//
// - in a string that needs it: "\" → "\\", NUL → "\0", a lone surrogate → "\uD800" (six ASCII
//   characters, upper-case hex); strings that do not need it are left exactly as they are;
// - `command` (a text column): escaped in place, and `details.escaped` lists "command";
// - a string inside `params` or `details`: replaced by { "$escaped": "<escaped text>" };
// - an object key that needs it: escaped in place (keys are the gateway's own, never a client's).

export const ESCAPED_KEY = "$escaped";

/** Has a NUL or a surrogate at all: the cheap first test, almost always false. */
const SUSPECT = /[\u0000\ud800-\udfff]/;

/** True when Postgres would refuse the string: it holds NUL or an unpaired surrogate. */
export function needsEscape(text: string): boolean {
  if (!SUSPECT.test(text)) return false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0) return true;
    if (c >= 0xd800 && c <= 0xdbff) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) i++;
      else return true;
    } else if (c >= 0xdc00 && c <= 0xdfff) return true;
  }
  return false;
}

/** The escaped form described above. */
export function escapeText(text: string): string {
  let out = "";
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5c) out += "\\\\";
    else if (c === 0) out += "\\0";
    else if (c >= 0xd800 && c <= 0xdbff) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        out += text[i]! + text[i + 1]!;
        i++;
      } else out += `\\u${c.toString(16).toUpperCase()}`;
    } else if (c >= 0xdc00 && c <= 0xdfff) out += `\\u${c.toString(16).toUpperCase()}`;
    else out += text[i]!;
  }
  return out;
}

/** Reverses escapeText (for showing a record as it was). */
export function unescapeText(text: string): string {
  return text.replace(/\\(\\|0|u[0-9A-F]{4})/g, (_, what: string) =>
    what === "\\" ? "\\" : what === "0" ? "\u0000" : String.fromCharCode(Number.parseInt(what.slice(1), 16)),
  );
}

/** A JSON value with every string that needs it escaped (see above); the same object when none does. */
export function storableValue(value: unknown): unknown {
  if (typeof value === "string") return needsEscape(value) ? { [ESCAPED_KEY]: escapeText(value) } : value;
  if (typeof value !== "object" || value === null) return value;
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      const stored = storableValue(item);
      if (stored !== item) (copy ??= [...value])[i] = stored;
    }
    return copy ?? value;
  }
  let copy: Record<string, unknown> | undefined;
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    const item = record[key];
    const stored = storableValue(item);
    const storedKey = needsEscape(key) ? escapeText(key) : key;
    if (stored !== item || storedKey !== key) {
      copy ??= { ...record };
      if (storedKey !== key) delete copy[key];
      copy[storedKey] = stored;
    }
  }
  return copy ?? value;
}

/** The parts of an event a client's bytes can reach. */
export interface DraftFields {
  kind: string;
  command?: string | null;
  params?: unknown[] | null;
  details?: Record<string, unknown> | null;
}

/** The draft with everything Postgres would refuse escaped; the same object when nothing needs it. */
export function storableDraft<T extends DraftFields>(draft: T): T {
  const commandNeeds = typeof draft.command === "string" && needsEscape(draft.command);
  const params = draft.params == null ? draft.params : (storableValue(draft.params) as unknown[]);
  let details = draft.details == null ? draft.details : (storableValue(draft.details) as Record<string, unknown>);
  if (!commandNeeds && params === draft.params && details === draft.details && needsEscape(draft.kind) === false) return draft;
  if (commandNeeds) details = { ...(details ?? {}), escaped: ["command"] };
  return {
    ...draft,
    kind: needsEscape(draft.kind) ? escapeText(draft.kind) : draft.kind,
    command: commandNeeds ? escapeText(draft.command!) : draft.command,
    params,
    details,
  };
}

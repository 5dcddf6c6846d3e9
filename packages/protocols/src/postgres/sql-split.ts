/**
 * Splitting a simple-Query string into its statements, the way the server's raw parser (and
 * psql's lexer) see them, so the observer can give each statement its own event and pair it
 * with the backend's CommandComplete/ErrorResponse sequence.
 *
 * A lexer, not a parser: it knows where a ';' cannot end a statement — inside '…' strings
 * (E'…' with backslash escapes; plain strings too when standard_conforming_strings is off),
 * "…" identifiers, $tag$…$tag$ bodies, -- and nested /* *\/ comments, parentheses (CREATE RULE
 * … DO (a; b)) and BEGIN ATOMIC … END function bodies. Statements that hold nothing but
 * whitespace and comments are dropped, as the server drops them.
 */

export interface StatementSpan {
  /** Offset of the statement's first non-whitespace character (leading comments included). */
  readonly start: number;
  /** Offset after its last non-whitespace character, excluding the ';'. */
  readonly end: number;
}

export interface SplitOptions {
  /** Server setting standard_conforming_strings (on since 9.1). When off, '\' escapes in '…' too. */
  readonly standardConformingStrings?: boolean;
}

const isSpace = (c: number): boolean => c === 0x20 || (c >= 0x09 && c <= 0x0d);
const isIdentStart = (c: number): boolean =>
  (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c === 0x5f || c >= 0x80;
const isIdentChar = (c: number): boolean => isIdentStart(c) || (c >= 0x30 && c <= 0x39) || c === 0x24;

/** Skip a `--` or `/* *\/` comment starting at i; returns the offset after it, or i if none starts there. */
function skipComment(sql: string, i: number): number {
  const c = sql.charCodeAt(i);
  const d = sql.charCodeAt(i + 1);
  if (c === 0x2d && d === 0x2d) {
    const nl = sql.indexOf("\n", i + 2);
    return nl < 0 ? sql.length : nl + 1;
  }
  if (c === 0x2f && d === 0x2a) {
    let depth = 1;
    let j = i + 2;
    while (j < sql.length && depth > 0) {
      const x = sql.charCodeAt(j);
      const y = sql.charCodeAt(j + 1);
      if (x === 0x2f && y === 0x2a) {
        depth++;
        j += 2;
      } else if (x === 0x2a && y === 0x2f) {
        depth--;
        j += 2;
      } else j++;
    }
    return j;
  }
  return i;
}

/** End of a '…' literal whose opening quote is at i. */
function skipQuoted(sql: string, i: number, backslashEscapes: boolean): number {
  let j = i + 1;
  while (j < sql.length) {
    const c = sql.charCodeAt(j);
    if (c === 0x5c && backslashEscapes) j += 2;
    else if (c === 0x27) {
      if (sql.charCodeAt(j + 1) === 0x27) j += 2;
      else return j + 1;
    } else j++;
  }
  return sql.length;
}

/** End of a "…" identifier whose quote is at i. */
function skipIdentifier(sql: string, i: number): number {
  let j = i + 1;
  while (j < sql.length) {
    if (sql.charCodeAt(j) === 0x22) {
      if (sql.charCodeAt(j + 1) === 0x22) j += 2;
      else return j + 1;
    } else j++;
  }
  return sql.length;
}

/** If a dollar-quote opens at i ($$ or $tag$), the offset after its closing delimiter; else -1. */
function skipDollarQuote(sql: string, i: number): number {
  let j = i + 1;
  if (j < sql.length && sql.charCodeAt(j) !== 0x24) {
    // A tag: an identifier without '$' that does not start with a digit ($1 is a parameter).
    if (!isIdentStart(sql.charCodeAt(j))) return -1;
    while (j < sql.length && isIdentChar(sql.charCodeAt(j)) && sql.charCodeAt(j) !== 0x24) j++;
    if (sql.charCodeAt(j) !== 0x24) return -1;
  }
  const tag = sql.slice(i, j + 1);
  const close = sql.indexOf(tag, j + 1);
  return close < 0 ? sql.length : close + tag.length;
}

export function splitStatements(sql: string, options: SplitOptions = {}): StatementSpan[] {
  const plainBackslash = options.standardConformingStrings === false;
  const spans: StatementSpan[] = [];
  let start = -1; // first non-space offset of the current statement
  let lastEnd = 0; // offset after its last non-space character
  let hasToken = false; // the current statement has something besides comments
  let parenDepth = 0;
  let atomicDepth = 0;
  let previousWord = "";

  const finish = (): void => {
    if (hasToken) spans.push({ start, end: lastEnd });
    start = -1;
    hasToken = false;
    parenDepth = 0;
    atomicDepth = 0;
    previousWord = "";
  };

  let i = 0;
  while (i < sql.length) {
    const c = sql.charCodeAt(i);
    if (isSpace(c)) {
      i++;
      continue;
    }
    if (c === 0x3b /* ; */ && parenDepth === 0 && atomicDepth === 0) {
      finish();
      i++;
      continue;
    }
    if (start < 0) start = i;
    const afterComment = skipComment(sql, i);
    if (afterComment !== i) {
      i = afterComment;
      // A line comment's newline is not part of the statement.
      lastEnd = sql.charCodeAt(i - 1) === 0x0a ? i - 1 : i;
      continue;
    }
    hasToken = true;
    let next: number;
    if (c === 0x27 /* ' */) {
      next = skipQuoted(sql, i, plainBackslash);
      previousWord = "";
    } else if (c === 0x22 /* " */) {
      next = skipIdentifier(sql, i);
      previousWord = "";
    } else if (c === 0x24 /* $ */) {
      const end = skipDollarQuote(sql, i);
      next = end < 0 ? i + 1 : end;
    } else if (isIdentStart(c)) {
      let j = i + 1;
      while (j < sql.length && isIdentChar(sql.charCodeAt(j))) j++;
      if ((c === 0x45 || c === 0x65) && j === i + 1 && sql.charCodeAt(j) === 0x27) {
        // E'…': backslash escapes regardless of standard_conforming_strings.
        next = skipQuoted(sql, j, true);
        previousWord = "";
      } else {
        const word = sql.slice(i, j).toUpperCase();
        if (word === "ATOMIC" && previousWord === "BEGIN") atomicDepth++;
        else if (atomicDepth > 0 && word === "CASE") atomicDepth++;
        else if (atomicDepth > 0 && word === "END") atomicDepth--;
        previousWord = word;
        next = j;
      }
    } else {
      if (c === 0x28) parenDepth++;
      else if (c === 0x29 && parenDepth > 0) parenDepth--;
      next = i + 1;
    }
    i = next;
    lastEnd = i;
  }
  finish();
  return spans;
}

/** Offset of the first character that is not whitespace or part of a comment. */
export function skipIgnorable(sql: string): number {
  let i = 0;
  while (i < sql.length) {
    if (isSpace(sql.charCodeAt(i))) {
      i++;
      continue;
    }
    const after = skipComment(sql, i);
    if (after === i) return i;
    i = after;
  }
  return i;
}

/** The first keyword of a statement, upper-cased, skipping whitespace, comments and '(' ("" if none). */
export function leadingKeyword(sql: string): string {
  let i = 0;
  while (i < sql.length) {
    const c = sql.charCodeAt(i);
    if (isSpace(c) || c === 0x28) {
      i++;
      continue;
    }
    const after = skipComment(sql, i);
    if (after !== i) {
      i = after;
      continue;
    }
    if (!isIdentStart(c)) return "";
    let j = i + 1;
    while (j < sql.length && isIdentChar(sql.charCodeAt(j))) j++;
    return sql.slice(i, j).toUpperCase();
  }
  return "";
}

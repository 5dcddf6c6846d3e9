/**
 * Lexical split of a COM_QUERY text into statements, as the server splits a multi-statement
 * query (CLIENT_MULTI_STATEMENTS): at `;` outside 'strings', "strings", `identifiers` and
 * comments (`-- ` to end of line, `#` to end of line, `/* … *\/`). There is no DELIMITER on the
 * server: that is a command of the `mariadb` client, which sends each statement alone.
 *
 * Backslash escapes inside strings unless NO_BACKSLASH_ESCAPES (the server reports it in its
 * status flags; the observer passes it on). Pieces that hold only whitespace and comments are
 * dropped, as the server sends no result for them.
 * https://mariadb.com/kb/en/comment-syntax/ · https://dev.mysql.com/doc/refman/8.0/en/string-literals.html
 */

/** True for `--` followed by whitespace/control or the end: MySQL's rule for a `--` comment. */
function dashComment(sql: string, i: number): boolean {
  if (sql[i] !== "-" || sql[i + 1] !== "-") return false;
  const next = sql.charCodeAt(i + 2);
  return Number.isNaN(next) || next <= 0x20;
}

/** Index after the comment, quoted string or identifier that starts at `i`, or `i` when none does. */
function skipToken(sql: string, i: number, backslashEscapes: boolean): number {
  const c = sql[i];
  if (c === "'" || c === '"' || c === "`") {
    let j = i + 1;
    while (j < sql.length) {
      const d = sql[j];
      if (d === "\\" && backslashEscapes && c !== "`") j += 2;
      else if (d === c) {
        if (sql[j + 1] === c) j += 2; // a doubled quote stands for itself
        else return j + 1;
      } else j++;
    }
    return sql.length;
  }
  if (c === "#" || dashComment(sql, i)) {
    const end = sql.indexOf("\n", i);
    return end < 0 ? sql.length : end + 1;
  }
  if (c === "/" && sql[i + 1] === "*") {
    const end = sql.indexOf("*/", i + 2);
    return end < 0 ? sql.length : end + 2;
  }
  return i;
}

/** True when `piece` holds only whitespace and comments. */
function isBlank(piece: string, backslashEscapes: boolean): boolean {
  let i = 0;
  while (i < piece.length) {
    if (piece.charCodeAt(i) <= 0x20) {
      i++;
      continue;
    }
    const c = piece[i];
    const after = c === "'" || c === '"' || c === "`" ? i : skipToken(piece, i, backslashEscapes);
    if (after === i) return false;
    i = after;
  }
  return true;
}

/** The statements of `sql`, each without its `;` and trimmed; at most `max` (the rest is one last piece). */
export function splitStatements(sql: string, options: { backslashEscapes?: boolean; max?: number } = {}): string[] {
  const backslashEscapes = options.backslashEscapes ?? true;
  const max = options.max ?? Number.POSITIVE_INFINITY;
  const out: string[] = [];
  let start = 0;
  let i = 0;
  while (i < sql.length) {
    const after = skipToken(sql, i, backslashEscapes);
    if (after !== i) {
      i = after;
      continue;
    }
    if (sql[i] === ";" && out.length < max - 1) {
      const piece = sql.slice(start, i);
      if (!isBlank(piece, backslashEscapes)) out.push(piece.trim());
      start = i + 1;
    }
    i++;
  }
  const last = sql.slice(start);
  if (!isBlank(last, backslashEscapes) || out.length === 0) out.push(last.trim());
  return out;
}

/** The first keyword of a statement, upper-cased, after whitespace, comments and `(`. */
export function leadingKeyword(statement: string): string {
  let i = 0;
  while (i < statement.length) {
    if (statement.charCodeAt(i) <= 0x20 || statement[i] === "(") {
      i++;
      continue;
    }
    const after = skipToken(statement, i, true);
    if (after === i || statement[i] === "'" || statement[i] === '"' || statement[i] === "`") break;
    i = after;
  }
  const match = /^[A-Za-z_]+/.exec(statement.slice(i));
  return match === null ? "" : match[0].toUpperCase();
}

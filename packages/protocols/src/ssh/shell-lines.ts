/**
 * Typed command lines from a shell's INPUT bytes (what the client's terminal sent), best effort.
 *
 * The gateway sees keystrokes, not the shell's line buffer, so it replays the edits a line editor
 * (readline, zle) would make to a line whose cursor stays at its end: printable text appends;
 * Backspace/DEL deletes a character; Ctrl-U clears the line; Ctrl-W deletes the word before the
 * cursor; Ctrl-C abandons the line; CR or LF submits it. Bracketed paste (ESC[200~ … ESC[201~)
 * is inserted literally, newlines included, as readline does. Whatever the gateway cannot replay
 * makes the line `uncertain`, with the reasons:
 *   - `history`: Up/Down, Ctrl-P/Ctrl-N, Ctrl-R (the shell recalled a line we never saw typed);
 *   - `completion`: Tab (the shell inserted text we never saw);
 *   - `cursor`: Left/Right/Home/End, Ctrl-A/E/B/F, Alt-b/f (later edits are not at the end);
 *   - `edit`: other escape sequences, Alt keys, Ctrl-K/Ctrl-Y/Ctrl-T and other control keys.
 * The line as typed is still reported: an auditor reads "ls /et<Tab>" and knows what to look for
 * in the terminal stream, which is recorded in full beside it.
 *
 * What it cannot know (README "Typed lines"): input read by programs rather than the shell
 * (editors, `less`, a REPL, `cat > file`, here-docs, a `sudo` password typed with echo off: it is
 * reported as a line like any other); lines recalled from history; the shell's own aliases and
 * expansions. Pure: the caller passes the time of each chunk.
 */

export interface TypedLine {
  /** The line as replayed, without its CR/LF; a bracketed paste may hold newlines. */
  readonly line: string;
  readonly uncertain: boolean;
  /** Why it is uncertain, in the order met: "history", "completion", "cursor", "edit". */
  readonly reasons: readonly string[];
  /** The time of the chunk that submitted it (µs since the epoch). */
  readonly timeUs: number;
  /** The line passed `maxLineLength` and was cut there. */
  readonly truncated: boolean;
}

export interface ShellLineOptions {
  /** Characters kept per line. Default 16384. */
  readonly maxLineLength?: number;
}

const ESC = "\x1b";
const PASTE_START = "200~";
const PASTE_END = "\x1b[201~";

const Mode = {
  Text: "text",
  /** After ESC. */
  Escape: "escape",
  /** After ESC [ : parameters until a final byte 0x40–0x7e. */
  Csi: "csi",
  /** After ESC O: one more character (application cursor keys, F1–F4). */
  Ss3: "ss3",
  /** Inside a bracketed paste. */
  Paste: "paste",
} as const;
type Mode = (typeof Mode)[keyof typeof Mode];

export class ShellLineExtractor {
  private readonly decoder = new TextDecoder("utf-8", { fatal: false });
  private readonly maxLineLength: number;
  private line = "";
  private reasons: string[] = [];
  private truncated = false;
  private mode: Mode = Mode.Text;
  private csi = "";
  private pasteTail = "";
  private pasteCr = false;

  constructor(options: ShellLineOptions = {}) {
    this.maxLineLength = options.maxLineLength ?? 16_384;
  }

  /** One chunk of terminal input; returns the lines it submitted. */
  push(chunk: Uint8Array, timeUs: number): TypedLine[] {
    const out: TypedLine[] = [];
    // A streaming decoder: a UTF-8 character cut across chunks comes out whole.
    for (const c of this.decoder.decode(chunk, { stream: true })) this.onChar(c, timeUs, out);
    return out;
  }

  /** The line being typed when the session ended (never submitted), if any. */
  pending(): string {
    return this.line;
  }

  private onChar(c: string, timeUs: number, out: TypedLine[]): void {
    switch (this.mode) {
      case Mode.Text:
        this.onText(c, timeUs, out);
        return;
      case Mode.Escape:
        if (c === "[") {
          this.mode = Mode.Csi;
          this.csi = "";
        } else if (c === "O") this.mode = Mode.Ss3;
        else {
          // Alt-key (ESC prefix): Alt-b/Alt-f move by words; the rest edit in ways we don't replay.
          this.mode = Mode.Text;
          this.flag(c === "b" || c === "f" ? "cursor" : "edit");
        }
        return;
      case Mode.Ss3:
        this.mode = Mode.Text;
        this.onCursorKey(c);
        return;
      case Mode.Csi: {
        const code = c.charCodeAt(0);
        if (code >= 0x40 && code <= 0x7e) {
          this.mode = Mode.Text;
          const sequence = this.csi + c;
          if (sequence === PASTE_START) {
            this.mode = Mode.Paste;
            this.pasteTail = "";
            this.pasteCr = false;
          } else if (/^[0-9;]*[ABCDHF]$/.test(sequence)) this.onCursorKey(c);
          else if (/^[1478];?[0-9]*~$/.test(sequence)) this.flag("cursor"); // Home / End
          else this.flag("edit");
        } else if (this.csi.length < 32) this.csi += c;
        else {
          this.mode = Mode.Text;
          this.flag("edit");
        }
        return;
      }
      case Mode.Paste: {
        // Wait for the whole end marker before deciding the characters of a partial match are text.
        this.pasteTail += c;
        if (PASTE_END.startsWith(this.pasteTail)) {
          if (this.pasteTail === PASTE_END) {
            this.mode = Mode.Text;
            this.pasteTail = "";
          }
          return;
        }
        for (const p of this.pasteTail) this.appendPasted(p);
        this.pasteTail = "";
        return;
      }
    }
  }

  private onCursorKey(c: string): void {
    this.flag(c === "A" || c === "B" ? "history" : c === "C" || c === "D" || c === "H" || c === "F" ? "cursor" : "edit");
  }

  private onText(c: string, timeUs: number, out: TypedLine[]): void {
    const code = c.charCodeAt(0);
    if (c === "\r" || c === "\n") {
      this.submit(timeUs, out);
      return;
    }
    if (c === ESC) {
      this.mode = Mode.Escape;
      return;
    }
    if (code >= 0x20 && code !== 0x7f) {
      this.append(c);
      return;
    }
    switch (code) {
      case 0x7f: // DEL (what Backspace sends)
      case 0x08: // Ctrl-H
        this.line = Array.from(this.line).slice(0, -1).join("");
        return;
      case 0x15: // Ctrl-U: unix-line-discard
        this.line = "";
        return;
      case 0x17: // Ctrl-W: unix-word-rubout (the whitespace-delimited word before the cursor)
        this.line = this.line.replace(/\S*\s*$/u, "");
        return;
      case 0x03: // Ctrl-C: the shell drops the line
        this.reset();
        return;
      case 0x09: // Tab: completion inserted what we cannot see
        this.flag("completion");
        return;
      case 0x10: // Ctrl-P, Ctrl-N, Ctrl-R, Ctrl-S: history
      case 0x0e:
      case 0x12:
      case 0x13:
        this.flag("history");
        return;
      case 0x01: // Ctrl-A, Ctrl-E, Ctrl-B, Ctrl-F: cursor movement
      case 0x05:
      case 0x02:
      case 0x06:
        this.flag("cursor");
        return;
      case 0x04: // Ctrl-D: EOF on an empty line, delete-char at the end of one (nothing)
      case 0x0c: // Ctrl-L: clear screen
        return;
      default:
        this.flag("edit");
    }
  }

  /** A pasted line break is part of the line (terminals paste CR, or CRLF): one "\n" each. */
  private appendPasted(c: string): void {
    const afterCr = this.pasteCr;
    this.pasteCr = c === "\r";
    if (c === "\n" && afterCr) return;
    this.append(c === "\r" ? "\n" : c);
  }

  private append(c: string): void {
    if (this.line.length >= this.maxLineLength) {
      this.truncated = true;
      return;
    }
    this.line += c;
  }

  private flag(reason: string): void {
    if (!this.reasons.includes(reason)) this.reasons.push(reason);
  }

  private submit(timeUs: number, out: TypedLine[]): void {
    // An Enter on an empty prompt is no command, unless history or completion put one there.
    if (this.line.trim() !== "" || this.reasons.length > 0) {
      out.push({ line: this.line, uncertain: this.reasons.length > 0, reasons: this.reasons, timeUs, truncated: this.truncated });
    }
    this.reset();
  }

  private reset(): void {
    this.line = "";
    this.reasons = [];
    this.truncated = false;
  }
}

/**
 * Incremental parser for the parameter lists of Bind and FunctionCall, so the observer can
 * record bound values (capped) from a message of any size without holding it: it is fed the
 * body in fragments and keeps at most `maxParamBytes` of each value.
 *
 *   Bind:         String portal | String statement | Int16 n | Int16[n] formats |
 *                 Int16 m | (Int32 len | Byte[len])[m] | Int16 r | Int16[r] result formats
 *   FunctionCall: Int32 function OID | Int16 n | Int16[n] formats |
 *                 Int16 m | (Int32 len | Byte[len])[m] | Int16 result format
 *
 * Counts are unsigned (the server reads them with pq_getmsgint(…, 2)).
 */
import { decodeUtf8, toHex, utf8Boundary } from "./bytes.js";
import { violation } from "./errors.js";

/**
 * A recorded parameter: a text value as a string; SQL NULL as null; a binary value as hex
 * (`{ hex }`); a value cut at the cap as `{ text | hex, bytes: full size, truncated: true }`.
 */
export type ObservedParam =
  | string
  | null
  | { readonly hex: string; readonly bytes: number; readonly truncated: boolean }
  | { readonly text: string; readonly bytes: number; readonly truncated: true };

export interface ParamCaptureLimits {
  /** Bytes kept per value. */
  readonly maxParamBytes: number;
  /** Bytes kept for all values of one message; later values are counted, not recorded. */
  readonly maxTotalBytes: number;
  /** Bytes kept of the portal/statement names. */
  readonly maxNameBytes: number;
}

/** The field the parser expects next, in message order. */
const Step = {
  FunctionOid: 0,
  Portal: 1,
  Statement: 2,
  FormatCount: 3,
  Formats: 4,
  ParamCount: 5,
  ParamLength: 6,
  ParamBytes: 7,
  ResultCount: 8,
  Results: 9,
  ResultFormat: 10,
  Done: 11,
} as const;
type Step = (typeof Step)[keyof typeof Step];

/** Fixed per-value overhead charged to the budget, so a million empty values are bounded too. */
const VALUE_OVERHEAD = 16;

export class ParamCapture {
  portal = "";
  statement = "";
  functionOid = 0;
  readonly params: ObservedParam[] = [];
  /** Number of values in the message (recorded or not). */
  paramCount = 0;
  /** Some values were not recorded because of `maxTotalBytes`. */
  paramsTruncated = false;

  private step: Step;
  private scalar = 0;
  private scalarBytes = 0;
  private nameParts: Uint8Array[] = [];
  private nameBytes = 0;
  private formatCount = 0;
  private readonly formats: number[] = [];
  private paramIndex = 0;
  private valueLength = 0;
  private valueRemaining = 0;
  private valueBuffer: Uint8Array | undefined;
  private valueFilled = 0;
  private resultCount = 0;
  private resultIndex = 0;
  private budget: number;

  constructor(
    private readonly kind: "bind" | "function",
    private readonly limits: ParamCaptureLimits,
  ) {
    this.step = kind === "bind" ? Step.Portal : Step.FunctionOid;
    this.budget = limits.maxTotalBytes;
  }

  get done(): boolean {
    return this.step === Step.Done;
  }

  /** Feed the next piece of the body. Throws `PROTOCOL_VIOLATION` on a malformed body. */
  feed(bytes: Uint8Array): void {
    let i = 0;
    const n = bytes.byteLength;
    while (i < n) {
      switch (this.step) {
        case Step.Portal:
        case Step.Statement: {
          const nul = bytes.indexOf(0, i);
          const stop = nul < 0 ? n : nul;
          this.collectName(bytes.subarray(i, stop));
          i = stop;
          if (nul >= 0) {
            i++;
            const name = this.takeName();
            if (this.step === Step.Portal) {
              this.portal = name;
              this.step = Step.Statement;
            } else {
              this.statement = name;
              this.step = Step.FormatCount;
            }
          }
          break;
        }
        case Step.ParamBytes: {
          const take = Math.min(this.valueRemaining, n - i);
          if (this.valueBuffer !== undefined && this.valueFilled < this.valueBuffer.byteLength) {
            const copy = Math.min(take, this.valueBuffer.byteLength - this.valueFilled);
            this.valueBuffer.set(bytes.subarray(i, i + copy), this.valueFilled);
            this.valueFilled += copy;
          }
          i += take;
          this.valueRemaining -= take;
          if (this.valueRemaining === 0) {
            const captured = this.valueBuffer?.subarray(0, this.valueFilled);
            this.valueBuffer = undefined;
            this.finishValue(captured, this.valueLength);
          }
          break;
        }
        case Step.Done:
          throw violation(`${this.kind === "bind" ? "Bind" : "FunctionCall"}: trailing bytes`);
        default: {
          // Big-endian Int16/Int32 fields, possibly split across fragments.
          const size = this.step === Step.FunctionOid || this.step === Step.ParamLength ? 4 : 2;
          this.scalar = this.scalar * 256 + bytes[i++]!;
          if (++this.scalarBytes < size) break;
          const raw = this.scalar;
          this.scalar = 0;
          this.scalarBytes = 0;
          i = this.onScalar(raw, bytes, i);
        }
      }
    }
  }

  /** Call when the message body has ended; throws if it ended early. */
  finish(): void {
    if (this.step !== Step.Done) {
      throw violation(`${this.kind === "bind" ? "Bind" : "FunctionCall"}: message ends early`);
    }
  }

  /** Handle a completed scalar; may consume a whole parameter value from `bytes` directly. */
  private onScalar(raw: number, bytes: Uint8Array, i: number): number {
    switch (this.step) {
      case Step.FunctionOid:
        this.functionOid = raw;
        this.step = Step.FormatCount;
        return i;
      case Step.FormatCount:
        this.formatCount = raw;
        this.step = raw > 0 ? Step.Formats : Step.ParamCount;
        return i;
      case Step.Formats:
        // Signed Int16; anything but 0/1 is rejected by the server, we just record it.
        this.formats.push(raw > 0x7fff ? raw - 0x10000 : raw);
        if (this.formats.length === this.formatCount) this.step = Step.ParamCount;
        return i;
      case Step.ParamCount:
        this.paramCount = raw;
        this.step = raw > 0 ? Step.ParamLength : this.afterParams();
        return i;
      case Step.ParamLength: {
        const length = raw > 0x7fffffff ? raw - 0x100000000 : raw;
        if (length === -1) {
          this.record(null, 0);
          this.nextParam();
          return i;
        }
        if (length < 0) throw violation(`invalid parameter length ${length}`);
        if (length <= bytes.byteLength - i) {
          // The whole value is in this fragment: no copy.
          this.finishValue(bytes.subarray(i, i + Math.min(length, this.limits.maxParamBytes)), length);
          return i + length;
        }
        this.valueLength = length;
        this.valueRemaining = length;
        this.valueFilled = 0;
        this.valueBuffer = this.budget > 0 ? new Uint8Array(Math.min(length, this.limits.maxParamBytes)) : undefined;
        this.step = Step.ParamBytes;
        return i;
      }
      case Step.ResultCount:
        this.resultCount = raw;
        this.resultIndex = 0;
        this.step = raw > 0 ? Step.Results : Step.Done;
        return i;
      case Step.Results:
        if (++this.resultIndex === this.resultCount) this.step = Step.Done;
        return i;
      case Step.ResultFormat:
        this.step = Step.Done;
        return i;
      default:
        throw violation("parameter parser in an impossible state");
    }
  }

  private afterParams(): Step {
    return this.kind === "bind" ? Step.ResultCount : Step.ResultFormat;
  }

  private nextParam(): void {
    this.paramIndex++;
    this.step = this.paramIndex < this.paramCount ? Step.ParamLength : this.afterParams();
  }

  /** `captured` holds the first bytes (at most maxParamBytes) of a value of `length` bytes. */
  private finishValue(captured: Uint8Array | undefined, length: number): void {
    const format =
      this.formatCount === 0 ? 0 : this.formatCount === 1 ? this.formats[0]! : (this.formats[this.paramIndex] ?? 0);
    const truncated = length > this.limits.maxParamBytes;
    let value: ObservedParam;
    if (captured === undefined) {
      value = null; // not recorded: over budget
    } else if (format === 1) {
      value = { hex: toHex(captured), bytes: length, truncated };
    } else if (!truncated) {
      value = decodeUtf8(captured);
    } else {
      value = { text: decodeUtf8(captured.subarray(0, utf8Boundary(captured, captured.byteLength))), bytes: length, truncated: true };
    }
    this.record(captured === undefined ? undefined : value, captured?.byteLength ?? 0);
    this.nextParam();
  }

  /** Append a value unless the message's budget is spent (`undefined` = not captured). */
  private record(value: ObservedParam | undefined, size: number): void {
    if (value === undefined || this.budget <= 0) {
      this.paramsTruncated = true;
      return;
    }
    this.params.push(value);
    this.budget -= size + VALUE_OVERHEAD;
  }

  private collectName(part: Uint8Array): void {
    const room = this.limits.maxNameBytes - this.nameBytes;
    if (room <= 0 || part.byteLength === 0) return;
    const kept = part.byteLength <= room ? part : part.subarray(0, room);
    this.nameParts.push(kept);
    this.nameBytes += kept.byteLength;
  }

  private takeName(): string {
    const parts = this.nameParts;
    this.nameParts = [];
    this.nameBytes = 0;
    if (parts.length === 0) return "";
    if (parts.length === 1) return decodeUtf8(parts[0]!);
    let total = 0;
    for (const p of parts) total += p.byteLength;
    const joined = new Uint8Array(total);
    let o = 0;
    for (const p of parts) {
      joined.set(p, o);
      o += p.byteLength;
    }
    return decodeUtf8(joined);
  }
}

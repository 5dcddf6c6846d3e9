import type { CommandOutcome, MysqlObserverOptions, MysqlObserverSink, ObservedCommand, ObservedError } from "../../src/mysql/observer.js";
import { MysqlObserver } from "../../src/mysql/observer.js";
import type { MysqlCapture } from "./mysql-capture.js";

export type MysqlRecorded =
  | { readonly event: "started"; readonly command: ObservedCommand }
  | { readonly event: "completed"; readonly command: ObservedCommand; readonly outcome: CommandOutcome }
  | { readonly event: "localInfile"; readonly fileName: string }
  | { readonly event: "serverError"; readonly error: ObservedError }
  | { readonly event: "terminated" };

export class MysqlRecordingSink implements MysqlObserverSink {
  readonly events: MysqlRecorded[] = [];
  /** Set by a test to refuse commands (the listener's veto). */
  screen?: MysqlObserverSink["screen"];
  commandStarted(command: ObservedCommand): void {
    this.events.push({ event: "started", command });
  }
  commandCompleted(command: ObservedCommand, outcome: CommandOutcome): void {
    this.events.push({ event: "completed", command, outcome });
  }
  localInfileRequested(_command: ObservedCommand, fileName: string): void {
    this.events.push({ event: "localInfile", fileName });
  }
  serverError(error: ObservedError): void {
    this.events.push({ event: "serverError", error });
  }
  terminated(): void {
    this.events.push({ event: "terminated" });
  }
  /** The completed commands, in completion order. */
  get completed(): { command: ObservedCommand; outcome: CommandOutcome }[] {
    return this.events.flatMap((e) => (e.event === "completed" ? [{ command: e.command, outcome: e.outcome }] : []));
  }
}

/** A deterministic clock: 1 µs per call. */
export function tickingClock(): () => number {
  let t = 1_000_000;
  return () => t++;
}

/**
 * Feed a capture to a fresh observer, optionally cutting every chunk in two at `cut`; returns the
 * sink. Cutting keeps each direction's order and the order between directions.
 */
export function replayMysql(capture: MysqlCapture, cut?: number, options: Partial<MysqlObserverOptions> = {}): MysqlRecordingSink {
  const sink = new MysqlRecordingSink();
  const observer = new MysqlObserver(sink, { now: tickingClock(), capabilities: capture.capabilities, ...options });
  for (const { from, bytes } of capture.chunks) {
    const pieces = cut === undefined || cut >= bytes.byteLength ? [bytes] : [bytes.subarray(0, cut), bytes.subarray(cut)];
    for (const piece of pieces) {
      if (from === "client") observer.client(piece);
      else observer.server(piece);
    }
  }
  observer.end();
  return sink;
}

/** What a user checks, without times: kind, text, params and the outcome's facts. */
export function summary(sink: MysqlRecordingSink): unknown[] {
  return sink.completed.map(({ command, outcome }) => {
    const { completedAt: _c, durationUs: _d, ...facts } = outcome;
    const { id: _i, startedAt: _s, ...what } = command;
    return { ...what, ...facts };
  });
}

import type {
  CommandOutcome,
  ObservedCommand,
  ObservedError,
  ObservedNotice,
  ObservedNotification,
  ObserverOptions,
  ObserverSink,
} from "../../src/postgres/observer.js";
import { PostgresObserver } from "../../src/postgres/observer.js";
import { concat } from "./frames.js";

export type Recorded =
  | { readonly event: "started"; readonly command: ObservedCommand }
  | { readonly event: "completed"; readonly command: ObservedCommand; readonly outcome: CommandOutcome }
  | { readonly event: "notification"; readonly notification: ObservedNotification }
  | { readonly event: "notice"; readonly notice: ObservedNotice }
  | { readonly event: "serverError"; readonly error: ObservedError }
  | { readonly event: "parameterStatus"; readonly name: string; readonly value: string }
  | { readonly event: "terminated" };

export class RecordingSink implements ObserverSink {
  readonly events: Recorded[] = [];
  commandStarted(command: ObservedCommand): void {
    this.events.push({ event: "started", command });
  }
  commandCompleted(command: ObservedCommand, outcome: CommandOutcome): void {
    this.events.push({ event: "completed", command, outcome });
  }
  notification(notification: ObservedNotification): void {
    this.events.push({ event: "notification", notification });
  }
  notice(notice: ObservedNotice): void {
    this.events.push({ event: "notice", notice });
  }
  serverError(error: ObservedError): void {
    this.events.push({ event: "serverError", error });
  }
  parameterStatus(name: string, value: string): void {
    this.events.push({ event: "parameterStatus", name, value });
  }
  terminated(): void {
    this.events.push({ event: "terminated" });
  }

  get completed(): { command: ObservedCommand; outcome: CommandOutcome }[] {
    return this.events.flatMap((e) => (e.event === "completed" ? [{ command: e.command, outcome: e.outcome }] : []));
  }
  get started(): ObservedCommand[] {
    return this.events.flatMap((e) => (e.event === "started" ? [e.command] : []));
  }
}

/** An observer with a clock that advances 10 µs per reading, and helpers to feed whole messages. */
export function observe(options: Partial<ObserverOptions> = {}) {
  let clock = 1_700_000_000_000_000;
  const sink = new RecordingSink();
  const observer = new PostgresObserver(sink, { now: () => (clock += 10), ...options });
  return {
    sink,
    observer,
    frontend: (...messages: Uint8Array[]) => observer.frontend(concat(messages)),
    backend: (...messages: Uint8Array[]) => observer.backend(concat(messages)),
  };
}

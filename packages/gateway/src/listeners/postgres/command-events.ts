import type { CommandOutcome, ObservedCommand } from "@gatehouse/protocols/postgres";
import type { EventInput } from "../../sessions/recorder.js";

/**
 * One recorded event per completed command: what ran (the statement, or for
 * an Execute its prepared statement's text, with the bound values), and how
 * it ended (command tag, rows, SQLSTATE and message, transaction status).
 */
export function commandEvent(command: ObservedCommand, outcome: CommandOutcome): EventInput {
  const details: Record<string, unknown> = {};
  if (outcome.tag !== undefined) details.tag = outcome.tag;
  if (outcome.rows !== undefined) details.rows = outcome.rows;
  if (outcome.error) {
    details.sqlstate = outcome.error.code;
    details.message = outcome.error.message;
    if (outcome.error.detail) details.detail = outcome.error.detail;
    if (outcome.error.hint) details.hint = outcome.error.hint;
  }
  if (outcome.status === "skipped" || outcome.status === "interrupted") details.status = outcome.status;
  if (outcome.transactionStatus !== undefined) details.transaction = outcome.transactionStatus;
  if (outcome.copy) details.copy = outcome.copy;
  if (outcome.suspended) details.suspended = true;
  if (outcome.emptyQuery) details.emptyQuery = true;
  if (outcome.notices?.length) details.notices = outcome.notices.map((n) => `${n.severity} ${n.code}: ${n.message}`);
  if (command.statement !== undefined) details.statement = command.statement;
  if (command.portal !== undefined && command.portal !== "") details.portal = command.portal;
  if (command.statementCount !== undefined && command.statementCount > 1) details.statementIndex = command.statementIndex;
  if (command.textTruncated) details.textTruncated = true;
  if (command.paramsTruncated) details.paramsTruncated = true;
  if (command.paramCount !== undefined && command.paramCount !== command.params?.length) details.paramCount = command.paramCount;
  if (command.functionOid !== undefined) details.functionOid = command.functionOid;

  return {
    kind: outcome.copy ? "copy" : command.kind,
    command: command.text,
    params: command.params ? [...command.params] : null,
    outcome: outcome.status === "ok" ? "ok" : outcome.status === "error" ? "error" : null,
    timeUs: command.startedAt,
    durationUs: outcome.durationUs,
    details,
  };
}

/**
 * What a command's write-ahead entry holds before it runs: its event without an outcome. After a
 * crash, a command that has only this becomes an event with status "interrupted".
 */
export function commandDraft(command: ObservedCommand): EventInput & { timeUs: number } {
  const event = commandEvent(command, { status: "interrupted", completedAt: command.startedAt, durationUs: 0 });
  const { status: _status, ...details } = event.details ?? {};
  return { kind: event.kind, command: event.command ?? null, params: event.params ?? null, timeUs: command.startedAt, details };
}

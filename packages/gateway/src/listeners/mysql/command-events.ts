import type { MysqlCommandOutcome, MysqlObservedCommand } from "@gatehouse/protocols/mysql";
import type { EventInput } from "../../sessions/recorder.js";

/**
 * One recorded event per completed MySQL command (docs/architecture.md, the MySQL paragraph of
 * the event vocabulary): what ran (the statement, or an execute's prepared text with its bound
 * values) and how it ended (rows, affected rows, errno + SQLSTATE + message, transaction state).
 */
export function commandEvent(command: MysqlObservedCommand, outcome: MysqlCommandOutcome): EventInput {
  const details: Record<string, unknown> = { command: command.command };
  if (outcome.rows !== undefined) details.rows = outcome.rows;
  if (outcome.resultSets !== undefined && outcome.resultSets > 1) details.resultSets = outcome.resultSets;
  if (outcome.affectedRows !== undefined) details.affectedRows = outcome.affectedRows;
  if (outcome.lastInsertId !== undefined && outcome.lastInsertId !== 0) details.lastInsertId = outcome.lastInsertId;
  if (outcome.warnings !== undefined && outcome.warnings > 0) details.warnings = outcome.warnings;
  if (outcome.inTransaction !== undefined) details.inTransaction = outcome.inTransaction;
  if (outcome.error) {
    details.errno = outcome.error.errno;
    details.sqlstate = outcome.error.sqlState;
    details.message = outcome.error.message;
  }
  if (outcome.status !== "ok" && outcome.status !== "error") details.status = outcome.status;
  if (outcome.statementId !== undefined) details.statementId = outcome.statementId;
  if (outcome.paramCount !== undefined && command.kind === "prepare") details.paramCount = outcome.paramCount;
  if (outcome.localInfile) details.localInfile = outcome.localInfile;
  if (outcome.cursorOpened) details.cursorOpened = true;
  if (outcome.lastRowSent !== undefined) details.lastRowSent = outcome.lastRowSent;
  if (command.bulkRows !== undefined) details.bulkRows = command.bulkRows;
  if (command.statementId !== undefined) details.statementId = command.statementId;
  if (command.statementCount !== undefined && command.statementCount > 1) details.statementIndex = command.statementIndex;
  if (command.textTruncated) details.textTruncated = true;
  if (command.paramsTruncated) details.paramsTruncated = true;
  if (command.connectionId !== undefined) details.connectionId = command.connectionId;
  if (command.user !== undefined) details.user = command.user;
  if (command.bytes !== undefined) details.bytes = command.bytes;

  return {
    kind: command.kind,
    command: command.text === "" ? command.command : command.text,
    params: command.params ? [...command.params] : null,
    // A refused command (screened at the gateway) is an error as the client saw it.
    outcome: outcome.status === "ok" ? "ok" : outcome.status === "error" || outcome.status === "refused" ? "error" : null,
    timeUs: command.startedAt,
    durationUs: outcome.durationUs,
    details,
  };
}

/** A command's write-ahead entry before it runs: its event without an outcome (after a crash: "interrupted"). */
export function commandDraft(command: MysqlObservedCommand): EventInput & { timeUs: number } {
  const event = commandEvent(command, { status: "interrupted", completedAt: command.startedAt, durationUs: 0 });
  const { status: _status, ...details } = event.details ?? {};
  return { kind: event.kind, command: event.command ?? null, params: event.params ?? null, timeUs: command.startedAt, details };
}

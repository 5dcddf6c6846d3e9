import fc from "fast-check";
import type { BackendMessage } from "../../src/postgres/backend-messages.js";
import type { FrontendMessage } from "../../src/postgres/frontend-messages.js";

const name = fc.string({ maxLength: 8 }).map((s) => s.replace(/\0/g, ""));
const cstring = fc.string({ maxLength: 40 }).map((s) => s.replace(/\0/g, ""));
const bytes = fc.uint8Array({ maxLength: 40 });
const value = fc.option(bytes, { nil: null });
const format = fc.constantFrom(0, 1);
const int32 = fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 });
const oid = fc.integer({ min: 0, max: 2 ** 32 - 1 });

const sql = fc.oneof(
  cstring,
  fc.constantFrom(
    "SELECT 1",
    "SELECT 1; SELECT 2",
    "BEGIN; UPDATE t SET a = 1; COMMIT",
    "COPY t FROM STDIN",
    "COPY t TO STDOUT",
    "SELECT 'a;b'; SELECT $$;$$",
    "",
  ),
);

export const frontendMessage: fc.Arbitrary<FrontendMessage> = fc.oneof(
  sql.map((query) => ({ type: "Query" as const, query })),
  fc.record({ type: fc.constant("Parse" as const), name, query: sql, paramTypes: fc.array(oid, { maxLength: 3 }) }),
  fc.record({
    type: fc.constant("Bind" as const),
    portal: name,
    statement: name,
    paramFormats: fc.array(format, { maxLength: 3 }),
    params: fc.array(value, { maxLength: 4 }),
    resultFormats: fc.array(format, { maxLength: 2 }),
  }),
  fc.record({ type: fc.constant("Describe" as const), target: fc.constantFrom("S" as const, "P" as const), name }),
  fc.record({ type: fc.constant("Execute" as const), portal: name, maxRows: fc.integer({ min: 0, max: 5 }) }),
  fc.constant({ type: "Sync" as const }),
  fc.constant({ type: "Flush" as const }),
  fc.record({ type: fc.constant("Close" as const), target: fc.constantFrom("S" as const, "P" as const), name }),
  fc.record({
    type: fc.constant("FunctionCall" as const),
    functionOid: oid,
    argFormats: fc.array(format, { maxLength: 2 }),
    args: fc.array(value, { maxLength: 3 }),
    resultFormat: format,
  }),
  bytes.map((data) => ({ type: "CopyData" as const, data })),
  fc.constant({ type: "CopyDone" as const }),
  cstring.map((message) => ({ type: "CopyFail" as const, message })),
  fc.constant({ type: "Terminate" as const }),
);

const errorFields = fc.record(
  {
    severity: fc.constantFrom("ERROR", "FATAL", "NOTICE", "WARNING"),
    code: fc.constantFrom("42601", "22012", "23505", "57P01", "00000"),
    message: cstring,
    detail: cstring,
  },
  { requiredKeys: ["severity", "code", "message"] },
);

export const backendMessage: fc.Arbitrary<BackendMessage> = fc.oneof(
  fc.constant({ type: "AuthenticationOk" as const }),
  fc.record({ type: fc.constant("ParameterStatus" as const), name: cstring, value: cstring }),
  fc.record({
    type: fc.constant("ReadyForQuery" as const),
    status: fc.constantFrom("idle" as const, "in_transaction" as const, "in_failed_transaction" as const),
  }),
  fc.record({ type: fc.constant("ErrorResponse" as const), fields: errorFields }),
  fc.record({ type: fc.constant("NoticeResponse" as const), fields: errorFields }),
  fc.record({
    type: fc.constant("RowDescription" as const),
    fields: fc.array(
      fc.record({
        name: cstring,
        tableOid: oid,
        columnAttribute: fc.integer({ min: -32768, max: 32767 }),
        typeOid: oid,
        typeSize: fc.integer({ min: -32768, max: 32767 }),
        typeModifier: int32,
        format,
      }),
      { maxLength: 3 },
    ),
  }),
  fc.record({ type: fc.constant("DataRow" as const), values: fc.array(value, { maxLength: 4 }) }),
  fc.record({
    type: fc.constant("CommandComplete" as const),
    tag: fc.constantFrom("SELECT 1", "INSERT 0 1", "COPY 3", "BEGIN", "UPDATE 0"),
  }),
  fc.constant({ type: "EmptyQueryResponse" as const }),
  fc.constant({ type: "ParseComplete" as const }),
  fc.constant({ type: "BindComplete" as const }),
  fc.constant({ type: "CloseComplete" as const }),
  fc.constant({ type: "NoData" as const }),
  fc.constant({ type: "PortalSuspended" as const }),
  fc.record({ type: fc.constant("ParameterDescription" as const), paramTypes: fc.array(oid, { maxLength: 3 }) }),
  fc.record({ type: fc.constant("CopyInResponse" as const), format, columnFormats: fc.array(format, { maxLength: 3 }) }),
  fc.record({ type: fc.constant("CopyOutResponse" as const), format, columnFormats: fc.array(format, { maxLength: 3 }) }),
  bytes.map((data) => ({ type: "CopyData" as const, data })),
  fc.constant({ type: "CopyDone" as const }),
  fc.record({ type: fc.constant("NotificationResponse" as const), processId: int32, channel: cstring, payload: cstring }),
  fc.record({ type: fc.constant("FunctionCallResponse" as const), result: value }),
);

export { openStore, createStore, DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT } from "./store.js";
export { DENIED_KINDS } from "./search.js";
export type { Store, StoreOptions, StoreDriver, SessionWithEvents, RetentionOptions, NewCancelRoute, CancelRouteRecord, StoreNotifications } from "./store.js";

export { createEventWriter, EVENT_WRITER_DEFAULTS } from "./writer.js";
export type { EventWriter, EventWriterOptions, EventWriterStats, EventSink } from "./writer.js";

export { StoreError } from "./errors.js";
export type { StoreErrorCode, StoreErrorContext } from "./errors.js";

export type { SqlExecutor } from "./executor.js";
export { createPostgresExecutor } from "./drivers/postgres.js";
export type { PostgresExecutorOptions } from "./drivers/postgres.js";
export { openPgliteExecutor } from "./drivers/pglite.js";
export type { PgliteExecutorOptions } from "./drivers/pglite.js";
export { openPgliteWorkerExecutor } from "./drivers/pglite-worker.js";
export type { PgliteWorkerExecutor } from "./drivers/pglite-worker.js";
export { acquireDirLock, LOCK_FILE_NAME } from "./lock.js";
export type { DirLock } from "./lock.js";

export { migrate } from "./migrate.js";
export type { MigrationResult, Migration } from "./migrate.js";
export { migrations, GATEWAY_ROLE } from "./migrations/index.js";

export { usToIso } from "./time.js";

export type {
  AccessKeyFilter,
  AccessKeyRecord,
  Checkpoint,
  EventCursor,
  EventFilter,
  EventMatch,
  EventPage,
  EventPartition,
  FoundEvent,
  GatewayKeyRecord,
  GatewayKeyRegistration,
  Identity,
  IdentitySettings,
  NewAccessKey,
  NewSshKey,
  NewSession,
  Outcome,
  RecordBatch,
  RecordBatchResult,
  RetentionResult,
  SessionClose,
  SessionEvent,
  SearchOutcome,
  SessionCursor,
  SessionFilter,
  SessionPage,
  SessionRecord,
  SshKeyFilter,
  SshKeyRecord,
  StoreChange,
  StreamChunk,
  StreamDirection,
} from "./types.js";

/**
 * The SFTP observer: fed the bytes of an `sftp` subsystem channel in both directions, it turns
 * requests matched to their replies (by request id) into one record entry per operation a person
 * would name: `open /etc/app.conf (write,create,truncate)`, `close /etc/app.conf` (with the bytes
 * read and written through that handle), `remove /x`, `rename /a /b`, `mkdir /d`,
 * `setstat /f (mode 0644)`, `symlink /l -> /t`, `list /dir (12 entries)`.
 *
 * - Write-ahead: a mutating request (open for writing, remove, rename, mkdir, rmdir, setstat,
 *   symlink, hardlink, copy-data, an unknown extension) goes through `sink.commandStarted` while
 *   `client()` handles the chunk that completes it: the listener holds that chunk until the start
 *   is durable. Its reply gives `sink.commandCompleted`. Other operations are only completed.
 * - Listings don't flood the record: opendir…readdir…close is one `list /dir (N entries)`;
 *   stat/lstat/fstat/realpath/readlink/statvfs/expand-path/limits are lookups, gathered into one
 *   `lookup N paths (stat /a, realpath ., …)` flushed when another operation starts or at `end()`.
 * - READ and WRITE are counted on their handle, never recorded one by one; their payloads are
 *   skipped as they stream past (sftp-packets.ts), so a 1 GiB transfer costs O(1) memory.
 *
 * Pure: time comes from `now()` (µs since the epoch); no I/O. Errors are `SshProtocolError`s;
 * after one the observer is broken and rethrows it.
 */
import {
  CLIENT_TYPES,
  FieldReader,
  OPEN_WRITE_FLAGS,
  SERVER_TYPES,
  SFTP_EOF,
  SFTP_OK,
  SFTP_STATUS_NAMES,
  SftpPacketSplitter,
  SftpType,
  decodeAttrs,
  describeAttrs,
  describeOpenFlags,
  formatMode,
  malformed,
  type SftpAttrs,
  type SftpPacket,
} from "./sftp-packets.js";
import { SshProtocolError } from "./errors.js";

/** One operation as it starts (only mutating ones are announced before they run). */
export interface SftpOperation {
  /** 1, 2, 3… per observer (per channel). */
  readonly id: number;
  readonly kind: "sftp";
  /** What a person searches for: `remove /etc/app.conf`. */
  readonly command: string;
  /** Changes the resource: announced through `commandStarted` (write-ahead). */
  readonly mutating: boolean;
  readonly startedAt: number;
}

/** An operation's end, as recorded. */
export interface SftpCompletion {
  readonly outcome: "ok" | "error";
  readonly completedAt: number;
  readonly durationUs: number;
  /**
   * The protocol's facts: `path`, `newPath`, `flags`, `mode`, `bytesRead`, `bytesWritten`,
   * `entries`, `count`; on an error `status` (the spec's name, e.g. "NO_SUCH_FILE"),
   * `statusCode` and `message` as the server sent them; `interrupted` when the channel ended first.
   */
  readonly details: Readonly<Record<string, unknown>>;
}

export interface SftpObserverSink {
  /** A mutating operation is about to be relayed: make it durable first. */
  commandStarted(operation: SftpOperation): void;
  /** Every operation's end (mutating or not); `operation` is the object `commandStarted` saw, if any. */
  commandCompleted(operation: SftpOperation, completion: SftpCompletion): void;
}

export interface SftpObserverOptions {
  readonly now: () => number;
  /** Paths named in a lookup batch's command; the rest are counted. Default 5. */
  readonly lookupPathsShown?: number;
  /** A lookup batch is flushed when it holds this many (a `find` over a tree). Default 1000. */
  readonly maxLookupBatch?: number;
  /** Outstanding requests; OpenSSH's sftp keeps 64 in flight. Default 4096. */
  readonly maxPending?: number;
  /** Open handles; OpenSSH's sftp-server allows 512. Default 4096. */
  readonly maxHandles?: number;
}

type LookupName = "stat" | "lstat" | "fstat" | "realpath" | "readlink" | "statvfs" | "fstatvfs" | "expand-path" | "limits" | "home-directory" | "users-groups-by-id";

/** What a pending request id waits for. */
type Pending =
  | { readonly type: "open"; readonly op: Op; readonly path: string; readonly flags: string; readonly details: Record<string, unknown> }
  | { readonly type: "opendir"; readonly op: Op; readonly path: string }
  | { readonly type: "close"; readonly handle: string }
  | { readonly type: "read"; readonly handle: string }
  | { readonly type: "write"; readonly handle: string; readonly bytes: number }
  | { readonly type: "readdir"; readonly handle: string }
  | { readonly type: "lookup"; readonly name: LookupName; readonly path: string; readonly startedAt: number }
  | { readonly type: "simple"; readonly op: Op; readonly details: Record<string, unknown> };

/** An operation in flight, with the details its completion will carry. */
interface Op {
  readonly operation: SftpOperation;
}

interface Handle {
  readonly path: string;
  readonly dir: boolean;
  readonly openedAt: number;
  readonly flags?: string;
  bytesRead: number;
  bytesWritten: number;
  reads: number;
  writes: number;
  entries: number;
  failed: number;
}

interface LookupBatch {
  count: number;
  failed: number;
  firstAt: number;
  lastAt: number;
  shown: string[];
  byName: Record<string, number>;
}

export class SftpObserver {
  private readonly clientSplitter = new SftpPacketSplitter(SftpType.WRITE, "client");
  private readonly serverSplitter = new SftpPacketSplitter(SftpType.DATA, "server");
  private readonly pending = new Map<number, Pending>();
  private readonly handles = new Map<string, Handle>();
  private batch: LookupBatch | undefined;
  private nextId = 1;
  private broken: SshProtocolError | undefined;
  private ended = false;
  private readonly lookupPathsShown: number;
  private readonly maxLookupBatch: number;
  private readonly maxPending: number;
  private readonly maxHandles: number;
  private serverVersion: number | undefined;

  constructor(
    private readonly sink: SftpObserverSink,
    private readonly options: SftpObserverOptions,
  ) {
    this.lookupPathsShown = options.lookupPathsShown ?? 5;
    this.maxLookupBatch = options.maxLookupBatch ?? 1000;
    this.maxPending = options.maxPending ?? 4096;
    this.maxHandles = options.maxHandles ?? 4096;
  }

  /** Bytes from the client (the channel's stdin). Mutating requests reach `commandStarted` here. */
  client(chunk: Uint8Array): void {
    this.guard(() => {
      this.clientSplitter.push(chunk);
      for (let packet = this.clientSplitter.next(); packet !== undefined; packet = this.clientSplitter.next()) this.onRequest(packet);
    });
  }

  /** Bytes from the server (the channel's stdout). */
  server(chunk: Uint8Array): void {
    this.guard(() => {
      this.serverSplitter.push(chunk);
      for (let packet = this.serverSplitter.next(); packet !== undefined; packet = this.serverSplitter.next()) this.onReply(packet);
    });
  }

  /** The channel closed: requests without a reply and handles never closed are completed as interrupted. */
  end(): void {
    if (this.ended) return;
    this.ended = true;
    const at = this.options.now();
    for (const entry of this.pending.values()) {
      if ("op" in entry) this.complete(entry.op, "error", at, { ...this.detailsOf(entry), interrupted: true });
    }
    this.pending.clear();
    for (const [key, handle] of this.handles) this.closeHandle(key, handle, at, "error", { interrupted: true });
    this.flushLookups();
  }

  /** The version the server answered INIT with (3 from OpenSSH), once seen. */
  get version(): number | undefined {
    return this.serverVersion;
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  get clientAtPacketBoundary(): boolean {
    return this.clientSplitter.atPacketBoundary;
  }

  private guard(work: () => void): void {
    if (this.broken !== undefined) throw this.broken;
    try {
      work();
    } catch (error) {
      this.broken =
        error instanceof SshProtocolError ? error : new SshProtocolError("SFTP_MALFORMED", "SFTP observer failed", { cause: error });
      throw this.broken;
    }
  }

  // --- requests (client → server) ---

  private onRequest(packet: SftpPacket): void {
    if (!CLIENT_TYPES.has(packet.type)) throw malformed(`client sent SFTP packet type ${packet.type}, not a request`);
    if (packet.streamed) {
      // WRITE: uint32 id | string handle | uint64 offset | (data, skipped)
      const r = new FieldReader(packet.head, "WRITE");
      const id = r.uint32("id");
      const handle = handleKey(r.bytesField("handle"));
      this.expect(id, { type: "write", handle, bytes: packet.payloadLength });
      return;
    }
    const type = packet.type;
    if (type === SftpType.INIT) return; // uint32 version | extension pairs: nothing to record
    const r = new FieldReader(packet.data, `request type ${type}`);
    const id = r.uint32("id");
    switch (type) {
      case SftpType.OPEN: {
        // string filename | uint32 pflags | ATTRS attrs
        const path = r.text("filename");
        const pflags = r.uint32("pflags");
        const attrs = decodeAttrs(r);
        const flags = describeOpenFlags(pflags);
        const writing = (pflags & OPEN_WRITE_FLAGS) !== 0;
        const openDetails: Record<string, unknown> = { path, flags };
        if (attrs.permissions !== undefined) openDetails.mode = formatMode(attrs.permissions);
        const op = this.start(`open ${path} (${flags})`, writing);
        this.expect(id, { type: "open", op, path, flags, details: openDetails });
        return;
      }
      case SftpType.OPENDIR: {
        const path = r.text("path");
        this.expect(id, { type: "opendir", op: this.start(`list ${path}`, false), path });
        return;
      }
      case SftpType.CLOSE:
        this.expect(id, { type: "close", handle: handleKey(r.bytesField("handle")) });
        return;
      case SftpType.READ:
        // string handle | uint64 offset | uint32 len
        this.expect(id, { type: "read", handle: handleKey(r.bytesField("handle")) });
        return;
      case SftpType.READDIR:
        this.expect(id, { type: "readdir", handle: handleKey(r.bytesField("handle")) });
        return;
      case SftpType.LSTAT:
      case SftpType.STAT:
      case SftpType.REALPATH:
      case SftpType.READLINK: {
        const name = type === SftpType.LSTAT ? "lstat" : type === SftpType.STAT ? "stat" : type === SftpType.REALPATH ? "realpath" : "readlink";
        this.lookup(id, name, r.text("path"));
        return;
      }
      case SftpType.FSTAT:
        this.lookup(id, "fstat", this.pathOf(handleKey(r.bytesField("handle"))));
        return;
      case SftpType.SETSTAT:
      case SftpType.FSETSTAT: {
        const path = type === SftpType.SETSTAT ? r.text("path") : this.pathOf(handleKey(r.bytesField("handle")));
        this.simple(id, "setstat", path, decodeAttrs(r), {});
        return;
      }
      case SftpType.REMOVE: {
        const path = r.text("filename");
        this.simple(id, `remove ${path}`, path, undefined, {});
        return;
      }
      case SftpType.MKDIR: {
        const path = r.text("path");
        const attrs = decodeAttrs(r);
        const mode = attrs.permissions === undefined ? undefined : formatMode(attrs.permissions);
        this.simple(id, `mkdir ${path}`, path, undefined, mode === undefined ? {} : { mode });
        return;
      }
      case SftpType.RMDIR: {
        const path = r.text("path");
        this.simple(id, `rmdir ${path}`, path, undefined, {});
        return;
      }
      case SftpType.RENAME: {
        const path = r.text("oldpath");
        const newPath = r.text("newpath");
        this.simple(id, `rename ${path} ${newPath}`, path, undefined, { newPath });
        return;
      }
      case SftpType.SYMLINK: {
        // OpenSSH sends (targetpath, linkpath), the reverse of the draft's order (PROTOCOL §3.1).
        const target = r.text("targetpath");
        const link = r.text("linkpath");
        this.simple(id, `symlink ${link} -> ${target}`, link, undefined, { target });
        return;
      }
      case SftpType.EXTENDED:
        this.onExtended(id, r);
        return;
      default:
        throw malformed(`client sent SFTP packet type ${type} out of place`);
    }
  }

  /** EXTENDED: uint32 id | string extended-request | request-specific data (OpenSSH PROTOCOL §4). */
  private onExtended(id: number, r: FieldReader): void {
    const name = r.text("extended-request");
    switch (name) {
      case "posix-rename@openssh.com": {
        const path = r.text("oldpath");
        const newPath = r.text("newpath");
        this.simple(id, `rename ${path} ${newPath}`, path, undefined, { newPath, posix: true });
        return;
      }
      case "hardlink@openssh.com": {
        const target = r.text("oldpath");
        const link = r.text("newpath");
        this.simple(id, `hardlink ${link} -> ${target}`, link, undefined, { target });
        return;
      }
      case "lsetstat@openssh.com": {
        const path = r.text("path");
        this.simple(id, "lsetstat", path, decodeAttrs(r), {});
        return;
      }
      case "copy-data": {
        // string read-handle | uint64 read-offset | uint64 read-length | string write-handle | uint64 write-offset
        const from = this.pathOf(handleKey(r.bytesField("read-handle")));
        const readOffset = r.uint64("read-offset");
        const readLength = r.uint64("read-length");
        const to = this.pathOf(handleKey(r.bytesField("write-handle")));
        this.simple(id, `copy-data ${from} -> ${to}`, from, undefined, { target: to, readOffset, readLength });
        return;
      }
      case "fsync@openssh.com": {
        const path = this.pathOf(handleKey(r.bytesField("handle")));
        this.simple(id, `fsync ${path}`, path, undefined, {}, false);
        return;
      }
      case "statvfs@openssh.com":
        this.lookup(id, "statvfs", r.text("path"));
        return;
      case "fstatvfs@openssh.com":
        this.lookup(id, "fstatvfs", this.pathOf(handleKey(r.bytesField("handle"))));
        return;
      case "expand-path@openssh.com":
        this.lookup(id, "expand-path", r.text("path"));
        return;
      case "home-directory":
        this.lookup(id, "home-directory", r.text("username"));
        return;
      case "limits@openssh.com":
        this.lookup(id, "limits", "");
        return;
      case "users-groups-by-id@openssh.com":
        this.lookup(id, "users-groups-by-id", "");
        return;
      default:
        // An extension we cannot read may change anything: announce it before it runs.
        this.simple(id, `extended ${name}`, "", undefined, { extension: name }, true);
    }
  }

  private simple(id: number, verb: string, path: string, attrs: SftpAttrs | undefined, extra: Record<string, unknown>, mutating = true): void {
    const details: Record<string, unknown> = path === "" ? { ...extra } : { path, ...extra };
    let command = verb;
    if (attrs !== undefined) {
      const described = describeAttrs(attrs);
      command = `${verb} ${path}${described === "" ? "" : ` (${described})`}`;
      if (attrs.permissions !== undefined) details.mode = formatMode(attrs.permissions);
      if (attrs.uid !== undefined) Object.assign(details, { uid: attrs.uid, gid: attrs.gid });
      if (attrs.size !== undefined) details.size = attrs.size;
      if (attrs.mtime !== undefined) Object.assign(details, { atime: attrs.atime, mtime: attrs.mtime });
    }
    this.expect(id, { type: "simple", op: this.start(command, mutating), details });
  }

  private lookup(id: number, name: LookupName, path: string): void {
    this.expect(id, { type: "lookup", name, path, startedAt: this.options.now() });
  }

  /** A non-lookup operation starts: the lookups before it are flushed first, so the record keeps their order. */
  private start(command: string, mutating: boolean): Op {
    this.flushLookups();
    const operation: SftpOperation = { id: this.nextId++, kind: "sftp", command, mutating, startedAt: this.options.now() };
    if (mutating) this.sink.commandStarted(operation);
    return { operation };
  }

  private expect(id: number, entry: Pending): void {
    if (this.pending.has(id)) throw malformed(`client reused request id ${id} while it is outstanding`);
    if (this.pending.size >= this.maxPending) {
      throw new SshProtocolError("SFTP_TOO_MANY", `more than ${this.maxPending} outstanding SFTP requests`);
    }
    this.pending.set(id, entry);
  }

  private pathOf(handle: string): string {
    return this.handles.get(handle)?.path ?? `(unknown handle ${handle})`;
  }

  // --- replies (server → client) ---

  private onReply(packet: SftpPacket): void {
    if (!SERVER_TYPES.has(packet.type)) throw malformed(`server sent SFTP packet type ${packet.type}, not a reply`);
    if (packet.streamed) {
      // DATA: uint32 id | (data, skipped)
      const id = new FieldReader(packet.head, "DATA").uint32("id");
      const entry = this.take(id, "DATA");
      if (entry.type !== "read") throw malformed(`DATA answers request ${id}, which is not a READ`);
      const handle = this.handles.get(entry.handle);
      if (handle !== undefined) {
        handle.bytesRead += packet.payloadLength;
        handle.reads++;
      }
      return;
    }
    if (packet.type === SftpType.VERSION) {
      this.serverVersion = new FieldReader(packet.data, "VERSION").uint32("version");
      return;
    }
    const r = new FieldReader(packet.data, `reply type ${packet.type}`);
    const id = r.uint32("id");
    const entry = this.take(id, `reply type ${packet.type}`);
    const at = this.options.now();
    if (packet.type === SftpType.STATUS) {
      // uint32 error code | string error message | string language tag
      const code = r.uint32("error code");
      const message = r.optionalText("error message") ?? "";
      this.onStatus(entry, code, message, at);
      return;
    }
    switch (entry.type) {
      case "open":
      case "opendir": {
        if (packet.type !== SftpType.HANDLE) throw malformed(`reply type ${packet.type} to an open`);
        const key = handleKey(r.bytesField("handle"));
        if (this.handles.size >= this.maxHandles) throw new SshProtocolError("SFTP_TOO_MANY", `more than ${this.maxHandles} open SFTP handles`);
        const dir = entry.type === "opendir";
        this.handles.set(key, {
          path: entry.path,
          dir,
          openedAt: at,
          ...(dir ? {} : { flags: entry.flags }),
          bytesRead: 0,
          bytesWritten: 0,
          reads: 0,
          writes: 0,
          entries: 0,
          failed: 0,
        });
        // A listing is recorded once, when its handle closes; an open file is recorded now.
        if (entry.type === "open") this.complete(entry.op, "ok", at, entry.details);
        else this.listings.set(key, entry.op);
        return;
      }
      case "readdir": {
        if (packet.type !== SftpType.NAME) throw malformed(`reply type ${packet.type} to a READDIR`);
        const handle = this.handles.get(entry.handle);
        if (handle !== undefined) handle.entries += r.uint32("count");
        return;
      }
      case "lookup":
        this.addLookup(entry, true, at);
        return;
      case "simple":
        this.complete(entry.op, "ok", at, entry.details);
        return;
      case "close":
      case "read":
      case "write":
        throw malformed(`reply type ${packet.type} to a ${entry.type.toUpperCase()}, which takes a STATUS`);
    }
  }

  /** Directory handles and the operation their `list` completes. */
  private readonly listings = new Map<string, Op>();

  private onStatus(entry: Pending, code: number, message: string, at: number): void {
    const ok = code === SFTP_OK;
    const error = ok ? {} : statusDetails(code, message);
    switch (entry.type) {
      case "open":
      case "opendir":
        // A STATUS to an open is a refusal (OK without a handle makes no sense either).
        this.complete(entry.op, "error", at, { ...this.detailsOf(entry), ...statusDetails(code, message) });
        return;
      case "close": {
        const handle = this.handles.get(entry.handle);
        if (handle !== undefined) this.closeHandle(entry.handle, handle, at, ok ? "ok" : "error", error);
        return;
      }
      case "read": {
        const handle = this.handles.get(entry.handle);
        if (handle !== undefined && code !== SFTP_EOF) handle.failed++;
        return;
      }
      case "write": {
        const handle = this.handles.get(entry.handle);
        if (handle === undefined) return;
        if (ok) {
          handle.bytesWritten += entry.bytes;
          handle.writes++;
        } else handle.failed++;
        return;
      }
      case "readdir": {
        const handle = this.handles.get(entry.handle);
        if (handle !== undefined && code !== SFTP_EOF) handle.failed++;
        return;
      }
      case "lookup":
        this.addLookup(entry, ok, at);
        return;
      case "simple":
        this.complete(entry.op, ok ? "ok" : "error", at, { ...entry.details, ...error });
        return;
    }
  }

  private closeHandle(key: string, handle: Handle, at: number, outcome: "ok" | "error", extra: Record<string, unknown>): void {
    this.flushLookups();
    this.handles.delete(key);
    const listing = this.listings.get(key);
    if (listing !== undefined) {
      this.listings.delete(key);
      const { operation } = listing;
      const renamed = { ...operation, command: `${operation.command} (${handle.entries} entries)` };
      this.complete({ operation: renamed }, outcome, at, { path: handle.path, entries: handle.entries, ...extra });
      return;
    }
    const operation: SftpOperation = { id: this.nextId++, kind: "sftp", command: `close ${handle.path}`, mutating: false, startedAt: handle.openedAt };
    this.complete({ operation }, outcome, at, {
      path: handle.path,
      ...(handle.flags === undefined ? {} : { flags: handle.flags }),
      bytesRead: handle.bytesRead,
      bytesWritten: handle.bytesWritten,
      reads: handle.reads,
      writes: handle.writes,
      ...(handle.failed > 0 ? { failedRequests: handle.failed } : {}),
      ...extra,
    });
  }

  private take(id: number, what: string): Pending {
    const entry = this.pending.get(id);
    if (entry === undefined) throw malformed(`server sent ${what} for request id ${id}, which is not outstanding`);
    this.pending.delete(id);
    return entry;
  }

  private complete(op: Op, outcome: "ok" | "error", at: number, details: Record<string, unknown>): void {
    const { operation } = op;
    this.sink.commandCompleted(operation, { outcome, completedAt: at, durationUs: Math.max(0, at - operation.startedAt), details });
  }

  private detailsOf(entry: Pending): Record<string, unknown> {
    switch (entry.type) {
      case "open":
        return entry.details;
      case "opendir":
        return { path: entry.path };
      case "simple":
        return entry.details;
      default:
        return {};
    }
  }

  // --- lookup batches ---

  private addLookup(entry: Extract<Pending, { type: "lookup" }>, ok: boolean, at: number): void {
    const batch = (this.batch ??= { count: 0, failed: 0, firstAt: entry.startedAt, lastAt: at, shown: [], byName: {} });
    batch.count++;
    if (!ok) batch.failed++;
    batch.lastAt = at;
    batch.byName[entry.name] = (batch.byName[entry.name] ?? 0) + 1;
    if (batch.shown.length < this.lookupPathsShown) batch.shown.push(entry.path === "" ? entry.name : `${entry.name} ${entry.path}`);
    if (batch.count >= this.maxLookupBatch) this.flushLookups();
  }

  private flushLookups(): void {
    const batch = this.batch;
    if (batch === undefined) return;
    this.batch = undefined;
    const more = batch.count > batch.shown.length ? ", …" : "";
    const operation: SftpOperation = {
      id: this.nextId++,
      kind: "sftp",
      command: `lookup ${batch.count} ${batch.count === 1 ? "path" : "paths"} (${batch.shown.join(", ")}${more})`,
      mutating: false,
      startedAt: batch.firstAt,
    };
    // A failed stat is how clients test for existence: the batch is an error only if nothing succeeded.
    this.complete({ operation }, batch.failed === batch.count ? "error" : "ok", batch.lastAt, {
      count: batch.count,
      failed: batch.failed,
      operations: batch.byName,
      paths: batch.shown,
    });
  }
}

function statusDetails(code: number, message: string): Record<string, unknown> {
  return { status: SFTP_STATUS_NAMES[code] ?? `STATUS_${code}`, statusCode: code, message };
}

/** Handles are opaque bytes (OpenSSH uses a 4-byte index): hex keys them in a Map. */
function handleKey(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}

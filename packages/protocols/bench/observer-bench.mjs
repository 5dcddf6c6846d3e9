// Observer throughput on the relay's hot path. Run after `pnpm build`:
//   node bench/observer-bench.mjs
// Large results and COPY streams are fed in 64 KiB chunks, as a socket delivers them.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import {
  PostgresObserver,
  encodeBackendCopyData,
  encodeCommandComplete,
  encodeCopyData,
  encodeCopyDone,
  encodeCopyResponse,
  encodeDataRow,
  encodeQuery,
  encodeReadyForQuery,
  encodeRowDescription,
} from "../dist/postgres/index.js";

const CHUNK = 65536;
const sink = { commandStarted() {}, commandCompleted() {} };
const clock = () => Math.round(performance.now() * 1000);

function concatMany(part, count) {
  const out = new Uint8Array(part.byteLength * count);
  for (let i = 0; i < count; i++) out.set(part, i * part.byteLength);
  return out;
}

function feed(observer, bytes) {
  for (let at = 0; at < bytes.byteLength; at += CHUNK) observer.backend(bytes.subarray(at, at + CHUNK));
}

function result(label, totalBytes, fn) {
  const before = process.memoryUsage().rss;
  const t0 = performance.now();
  fn();
  const ms = performance.now() - t0;
  const mb = totalBytes / 1e6;
  console.log(`${label.padEnd(48)} ${mb.toFixed(0).padStart(5)} MB in ${ms.toFixed(0).padStart(5)} ms = ${(mb / (ms / 1000)).toFixed(0).padStart(5)} MB/s  (rss +${((process.memoryUsage().rss - before) / 1e6).toFixed(0)} MB)`);
}

{
  // pgbench -M extended, replayed from the captured fixture (3 transactions of 7 statements).
  const fixture = JSON.parse(readFileSync(join(import.meta.dirname, "..", "test", "fixtures", "pgbench-extended.json"), "utf8"));
  const chunks = fixture.chunks
    .map((c) => ({ from: c.from, bytes: new Uint8Array(Buffer.from(c.base64, "base64")) }))
    // Leave out Terminate ('X') so the replays form one long session.
    .filter((c) => !(c.from === "frontend" && c.bytes[0] === 0x58));
  const rounds = 5000;
  let commands = 0;
  const counting = { commandStarted() {}, commandCompleted() { commands++; } };
  const observer = new PostgresObserver(counting, { now: clock });
  const t0 = performance.now();
  for (let r = 0; r < rounds; r++) {
    for (const { from, bytes } of chunks) (from === "frontend" ? observer.frontend(bytes) : observer.backend(bytes));
  }
  const ms = performance.now() - t0;
  console.log(`${"pgbench -M extended (fixture replay)".padEnd(48)} ${(rounds * 3).toString().padStart(5)} tx in ${ms.toFixed(0).padStart(5)} ms = ${((rounds * 3) / (ms / 1000)).toFixed(0)} tx/s, ${((commands / ms) * 1000).toFixed(0)} commands/s`);
}

const T = encodeRowDescription({ fields: [{ name: "x", tableOid: 0, columnAttribute: 0, typeOid: 25, typeSize: -1, typeModifier: -1, format: 0 }] });
for (const rowBytes of [100, 1000, 8192]) {
  const row = encodeDataRow({ values: [new Uint8Array(rowBytes - 11).fill(0x61)] });
  const count = Math.floor(200e6 / row.byteLength);
  // Built in 20 MB blocks so the input itself does not dominate memory.
  const block = concatMany(row, Math.floor(20e6 / row.byteLength));
  const blocks = Math.floor(count / (block.byteLength / row.byteLength));
  result(`DataRow ${rowBytes} B × ${(blocks * block.byteLength / row.byteLength / 1e6).toFixed(1)}M`, blocks * block.byteLength, () => {
    const observer = new PostgresObserver(sink, { now: clock });
    observer.frontend(encodeQuery({ query: "SELECT * FROM big" }));
    observer.backend(T);
    for (let b = 0; b < blocks; b++) feed(observer, block);
    observer.backend(encodeCommandComplete({ tag: "SELECT n" }));
    observer.backend(encodeReadyForQuery({ status: "idle" }));
  });
}

{
  const message = encodeBackendCopyData({ data: new Uint8Array(65536 - 5).fill(0x62) });
  const block = concatMany(message, 320);
  result("COPY OUT 64 KiB CopyData × 3200", block.byteLength * 10, () => {
    const observer = new PostgresObserver(sink, { now: clock });
    observer.frontend(encodeQuery({ query: "COPY big TO STDOUT" }));
    observer.backend(encodeCopyResponse({ type: "CopyOutResponse", format: 0, columnFormats: [0] }));
    for (let i = 0; i < 10; i++) feed(observer, block);
    observer.backend(encodeCommandComplete({ tag: "COPY 1" }));
    observer.backend(encodeReadyForQuery({ status: "idle" }));
  });
}

{
  // COPY FROM STDIN: the client's CopyData goes through the frontend parser.
  const message = encodeCopyData({ data: new Uint8Array(8192 - 5).fill(0x64) });
  const block = concatMany(message, 2560);
  result("COPY IN 8 KiB CopyData × 25600", block.byteLength * 10, () => {
    const observer = new PostgresObserver(sink, { now: clock });
    observer.frontend(encodeQuery({ query: "COPY big FROM STDIN" }));
    observer.backend(encodeCopyResponse({ type: "CopyInResponse", format: 0, columnFormats: [0] }));
    for (let i = 0; i < 10; i++) {
      for (let at = 0; at < block.byteLength; at += CHUNK) observer.frontend(block.subarray(at, at + CHUNK));
    }
    observer.frontend(encodeCopyDone());
    observer.backend(encodeCommandComplete({ tag: "COPY 1" }));
    observer.backend(encodeReadyForQuery({ status: "idle" }));
  });
}

{
  const row = encodeDataRow({ values: [new Uint8Array(100_000_000).fill(0x63)] });
  result("one 100 MB DataRow", row.byteLength, () => {
    const observer = new PostgresObserver(sink, { now: clock });
    observer.frontend(encodeQuery({ query: "SELECT huge" }));
    feed(observer, row);
    observer.backend(encodeCommandComplete({ tag: "SELECT 1" }));
    observer.backend(encodeReadyForQuery({ status: "idle" }));
  });
}


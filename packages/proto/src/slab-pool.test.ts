import { expect, test } from "vitest";

import { SlabPool } from "./slab-pool.js";

const KiB = 1024;

test("live messages never share bytes; a released slab's memory comes back", () => {
  const pool = new SlabPool(256 * KiB);
  const a = pool.allocate(100 * KiB).fill(1);
  const b = pool.allocate(100 * KiB).fill(2);
  expect(a.buffer).toBe(b.buffer); // carved from one slab
  const c = pool.allocate(100 * KiB).fill(3); // does not fit: a second slab
  expect(c.buffer).not.toBe(a.buffer);
  expect(a.every((byte) => byte === 1) && b.every((byte) => byte === 2)).toBe(true);

  pool.release(a);
  pool.release(b); // the first slab is empty now: kept as the spare
  pool.release(c); // the current slab is empty: it starts over
  const d = pool.allocate(100 * KiB);
  expect(d.buffer).toBe(c.buffer);
  expect(d.byteOffset).toBe(0);
  pool.allocate(100 * KiB);
  const f = pool.allocate(100 * KiB); // the current slab is full again: the spare is used
  expect(f.buffer).toBe(a.buffer);
});

test("steady streaming reuses the same bytes message after message", () => {
  const pool = new SlabPool(1024 * KiB);
  const first = pool.allocate(64 * KiB);
  pool.release(first);
  for (let i = 0; i < 100; i++) {
    const message = pool.allocate(64 * KiB + i);
    expect(message.buffer).toBe(first.buffer);
    expect(message.byteOffset).toBe(0);
    pool.release(message);
  }
});

test("small and oversized messages are plain Buffers, and releasing them is harmless", () => {
  const pool = new SlabPool(256 * KiB);
  const small = pool.allocate(100);
  const huge = pool.allocate(300 * KiB);
  expect(huge.buffer.byteLength).toBe(300 * KiB);
  pool.release(small);
  pool.release(huge);
});

test("trim() lets an idle pool's slabs go, but not ones in use or used since the last trim", () => {
  const pool = new SlabPool(256 * KiB);
  const a = pool.allocate(100 * KiB);
  pool.trim(); // used since the last trim: kept
  pool.release(a);
  expect(pool.allocate(100 * KiB).buffer).toBe(a.buffer);
  pool.trim();
  pool.trim(); // idle for a whole interval now, but one message is still out: the slab stays
  const b = pool.allocate(100 * KiB);
  expect(b.buffer).toBe(a.buffer);
});

test("an idle, empty pool holds nothing after trim()", () => {
  const pool = new SlabPool(256 * KiB);
  const a = pool.allocate(100 * KiB);
  pool.release(a);
  pool.trim();
  pool.trim();
  expect(pool.allocate(100 * KiB).buffer).not.toBe(a.buffer);
});

import { expect, test, vi } from "vitest";

import { SendQueue } from "./send-queue.js";

const text = (parts: Uint8Array[]) => Buffer.concat(parts).toString();

test("take() returns views across chunks and releases each callback once its chunk is taken", () => {
  const queue = new SendQueue();
  const [a, b, c] = [vi.fn(), vi.fn(), vi.fn()];
  const first = Buffer.from("hello ");
  queue.push(first, a);
  queue.push(Buffer.from("tunnel "), b);
  queue.push(Buffer.from("world"), c);
  expect(queue.bytes).toBe(18);

  const done: (() => void)[] = [];
  const part = queue.take(4, done);
  expect(text(part)).toBe("hell");
  expect(part[0]!.buffer).toBe(first.buffer); // a view, not a copy
  expect(done).toEqual([]);

  expect(text(queue.take(9, done))).toBe("o tunnel ");
  expect(done).toEqual([a, b]);
  expect(queue.bytes).toBe(5);

  expect(text(queue.take(5, done))).toBe("world");
  expect(done).toEqual([a, b, c]);
  expect(queue.bytes).toBe(0);
});

test("callbacks of empty writes right behind taken bytes are released too", () => {
  const queue = new SendQueue();
  const [a, b] = [vi.fn(), vi.fn()];
  queue.push(Buffer.from("ab"), undefined);
  queue.push(Buffer.alloc(0), a);
  queue.push(Buffer.from("c"), b);
  const done: (() => void)[] = [];
  queue.take(2, done);
  expect(done).toEqual([a]);
});

test("clear() hands back the callbacks still owed", () => {
  const queue = new SendQueue();
  const [a, b] = [vi.fn(), vi.fn()];
  queue.push(Buffer.from("ab"), a);
  queue.push(Buffer.from("cd"), b);
  queue.take(3, []);
  expect(queue.clear()).toEqual([b]);
  expect(queue.bytes).toBe(0);
});

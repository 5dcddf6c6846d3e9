import { afterEach, beforeEach, expect, test, vi } from "vitest";

import { Heartbeat } from "./heartbeat.js";

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

function start(pingIntervalMs: number, deadAfterMs: number) {
  const onPing = vi.fn();
  const onDead = vi.fn();
  const heartbeat = new Heartbeat({ pingIntervalMs, deadAfterMs, now: () => Date.now(), onPing, onDead });
  return { heartbeat, onPing, onDead };
}

test("pings every interval while the peer keeps talking, and never declares it dead", () => {
  const { heartbeat, onPing, onDead } = start(100, 250);
  for (let i = 0; i < 10; i++) {
    vi.advanceTimersByTime(100);
    heartbeat.touch();
  }
  expect(onPing).toHaveBeenCalledTimes(10);
  expect(onDead).not.toHaveBeenCalled();
  heartbeat.stop();
});

test("declares the link dead deadAfterMs after the last frame, not before", () => {
  const { heartbeat, onDead } = start(100, 250);
  vi.advanceTimersByTime(120);
  heartbeat.touch(); // last sign of life at t=120
  vi.advanceTimersByTime(249);
  expect(onDead).not.toHaveBeenCalled();
  vi.advanceTimersByTime(1);
  // The verdict waits for one I/O poll (a setImmediate, which these fake timers run 1 ms later).
  vi.advanceTimersByTime(1);
  expect(onDead).toHaveBeenCalledTimes(1);
  expect(onDead.mock.calls[0]![0]).toBeGreaterThanOrEqual(250);
  expect(onDead.mock.calls[0]![0]).toBeLessThanOrEqual(251);
  vi.advanceTimersByTime(1000);
  expect(onDead).toHaveBeenCalledTimes(1);
});

test("stop() ends pings and the dead-link check", () => {
  const { heartbeat, onPing, onDead } = start(100, 250);
  heartbeat.stop();
  vi.advanceTimersByTime(10_000);
  expect(onPing).not.toHaveBeenCalled();
  expect(onDead).not.toHaveBeenCalled();
});

test("a frame read right after an overdue check (this process was stalled) keeps the link alive", () => {
  const { heartbeat, onDead } = start(100, 250);
  // The process stalls past the deadline: the check runs late, and the peer's frame is read in the
  // same event loop turn, before the verdict.
  vi.advanceTimersByTime(249);
  setTimeout(() => heartbeat.touch(), 1); // lands alongside the dead-link check, before its verdict
  vi.advanceTimersByTime(2);
  expect(onDead).not.toHaveBeenCalled();
  vi.advanceTimersByTime(249);
  expect(onDead).not.toHaveBeenCalled();
  vi.advanceTimersByTime(10);
  expect(onDead).toHaveBeenCalledTimes(1);
  heartbeat.stop();
});

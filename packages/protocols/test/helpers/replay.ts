import type { Fixture } from "./fixtures.js";
import { observe } from "./observer-harness.js";
import type { Recorded } from "./observer-harness.js";

/**
 * Feed a capture to a fresh observer (deterministic clock), optionally cutting every chunk in
 * two at `cut`; returns everything the sink received.
 */
export function replay(fixture: Fixture, cut?: number): Recorded[] {
  const { sink, observer } = observe();
  for (const { from, bytes } of fixture.chunks) {
    const pieces = cut === undefined || cut >= bytes.byteLength ? [bytes] : [bytes.subarray(0, cut), bytes.subarray(cut)];
    for (const piece of pieces) (from === "frontend" ? observer.frontend(piece) : observer.backend(piece));
  }
  observer.end();
  return sink.events;
}

import { expect, test } from "vitest";

import { failedCodeFromWire, failedCodeToWire, TunnelError, type TunnelErrorCode } from "./errors.js";
import { StreamFailed } from "./messages.js";

test("every StreamFailed code maps to the TunnelErrorCode of the same name and back", () => {
  const names = Object.keys(StreamFailed.Code).filter((name) => name !== "CODE_UNSPECIFIED" && Number.isNaN(Number(name)));
  expect(names).toHaveLength(8);
  for (const name of names) {
    const wire = StreamFailed.Code[name as keyof typeof StreamFailed.Code];
    expect(failedCodeFromWire(wire)).toBe(name);
    expect(failedCodeToWire(name as TunnelErrorCode)).toBe(wire);
  }
});

test("unknown wire codes read as INTERNAL; local-only codes travel as INTERNAL", () => {
  expect(failedCodeFromWire(0)).toBe("INTERNAL");
  expect(failedCodeFromWire(99)).toBe("INTERNAL");
  expect(failedCodeFromWire(undefined)).toBe("INTERNAL");
  expect(failedCodeToWire("LINK_CLOSED")).toBe(StreamFailed.Code.INTERNAL);
});

test("TunnelError keeps code, cause and stream id", () => {
  const cause = new Error("socket hang up");
  const err = new TunnelError("LINK_CLOSED", "tunnel link closed", { cause, streamId: 3 });
  expect(err).toBeInstanceOf(Error);
  expect(err.name).toBe("TunnelError");
  expect(err.code).toBe("LINK_CLOSED");
  expect(err.cause).toBe(cause);
  expect(err.streamId).toBe(3);
});

import { describe, expect, it } from "vitest";
import { failureStatus, readStatus, type StatusReason } from "./status.js";

describe("failureStatus", () => {
  it.each<[StatusReason, number]>([
    ["BadRequest", 400],
    ["Unauthorized", 401],
    ["Forbidden", 403],
    ["NotFound", 404],
    ["RequestEntityTooLarge", 413],
    ["TooManyRequests", 429],
    ["InternalError", 500],
    ["ServiceUnavailable", 503],
  ])("%s is a Status with code %i", (reason, code) => {
    expect(failureStatus(reason, "gatehouse: no")).toEqual({
      kind: "Status",
      apiVersion: "v1",
      metadata: {},
      status: "Failure",
      message: "gatehouse: no",
      reason,
      code,
    });
  });

  it("serializes to the JSON kubectl reads (kind, apiVersion, code)", () => {
    const json = JSON.parse(JSON.stringify(failureStatus("Forbidden", 'access to "prod" denied')));
    expect(json).toMatchObject({ kind: "Status", apiVersion: "v1", status: "Failure", reason: "Forbidden", code: 403, message: 'access to "prod" denied' });
  });

  it("reads back through readStatus", () => {
    expect(readStatus(JSON.stringify(failureStatus("NotFound", "gone")))).toEqual({ reason: "NotFound", message: "gone", code: 404 });
  });
});

describe("readStatus", () => {
  const apiServerStatus = {
    kind: "Status",
    apiVersion: "v1",
    metadata: {},
    status: "Failure",
    message: 'pods "web-1" is forbidden: User "alice" cannot delete resource "pods" in API group "" in the namespace "prod"',
    reason: "Forbidden",
    details: { name: "web-1", kind: "pods" },
    code: 403,
  };

  it("reads the reason, message and code of a Status body given as a string", () => {
    expect(readStatus(JSON.stringify(apiServerStatus))).toEqual({ reason: "Forbidden", message: apiServerStatus.message, code: 403 });
  });

  it("reads a Status body given as bytes (Buffer and plain Uint8Array)", () => {
    const bytes = Buffer.from(JSON.stringify(apiServerStatus));
    expect(readStatus(bytes)).toEqual({ reason: "Forbidden", message: apiServerStatus.message, code: 403 });
    expect(readStatus(new Uint8Array(bytes))).toEqual({ reason: "Forbidden", message: apiServerStatus.message, code: 403 });
  });

  it("reads a Status body at an offset inside a larger buffer", () => {
    const big = Buffer.from(`xxxx${JSON.stringify(apiServerStatus)}yyyy`);
    expect(readStatus(big.subarray(4, big.length - 4))).toMatchObject({ reason: "Forbidden", code: 403 });
  });

  it("leaves out an empty reason and fields of the wrong type", () => {
    expect(readStatus(JSON.stringify({ kind: "Status", status: "Failure", reason: "", message: "m", code: "403" }))).toEqual({ message: "m" });
    expect(readStatus(JSON.stringify({ kind: "Status", status: "Success" }))).toEqual({});
  });

  it("keeps an empty message", () => {
    expect(readStatus(JSON.stringify({ kind: "Status", message: "", code: 500 }))).toEqual({ message: "", code: 500 });
  });

  it("is undefined for a body that is not a Status", () => {
    expect(readStatus(JSON.stringify({ kind: "Pod", apiVersion: "v1", metadata: { name: "web-1" } }))).toBeUndefined();
    expect(readStatus(JSON.stringify({ kind: "PodList", items: [] }))).toBeUndefined();
    expect(readStatus(JSON.stringify({ reason: "Forbidden", message: "m", code: 403 }))).toBeUndefined();
    expect(readStatus("null")).toBeUndefined();
    expect(readStatus("[]")).toBeUndefined();
    expect(readStatus('"Status"')).toBeUndefined();
  });

  it("is undefined for a body that is not JSON", () => {
    expect(readStatus("<html>502 Bad Gateway</html>")).toBeUndefined();
    expect(readStatus("")).toBeUndefined();
    expect(readStatus(Buffer.from([0x6b, 0x38, 0x73, 0x00, 0x0a]))).toBeUndefined(); // protobuf's "k8s\0" magic
    expect(readStatus(JSON.stringify(apiServerStatus).slice(0, 40))).toBeUndefined();
  });
});

import { describe, expect, it } from "vitest";
import { decodeDialRequest, decodeDialResult, encodeDialRequest, encodeDialResult } from "./tunnel-params.js";

describe("postgres tunnel params", () => {
  it("round-trips a dial request with startup parameters and a cancel key", () => {
    const request = {
      startup: { application_name: "psql", options: "-c search_path=app", "server.trick": "x" },
      cancel: { processId: 4242, secretKey: new Uint8Array([0, 1, 254, 255]) },
    };
    const decoded = decodeDialRequest(encodeDialRequest(request));
    expect(decoded.startup).toEqual(request.startup);
    expect(decoded.cancel?.processId).toBe(4242);
    expect([...decoded.cancel!.secretKey]).toEqual([0, 1, 254, 255]);
    expect(decodeDialRequest(encodeDialRequest({ startup: {} })).cancel).toBeUndefined();
  });

  it("round-trips a dial result, keeping the server's parameter order", () => {
    const result = {
      parameters: { server_version: "15.19", client_encoding: "UTF8", "backend.pid": "not-a-key" },
      backendKey: { processId: 7, secretKey: new Uint8Array([9, 8, 7, 6]) },
      auth: "scram-sha-256",
      tls: true,
    };
    const decoded = decodeDialResult(encodeDialResult(result));
    expect(Object.entries(decoded.parameters)).toEqual(Object.entries(result.parameters));
    expect(decoded.backendKey?.processId).toBe(7);
    expect([...decoded.backendKey!.secretKey]).toEqual([9, 8, 7, 6]);
    expect(decoded.auth).toBe("scram-sha-256");
    expect(decoded.tls).toBe(true);
  });
});

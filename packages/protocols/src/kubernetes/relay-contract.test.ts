import { describe, expect, it } from "vitest";
import {
  MAX_RESPONSE_HEAD,
  ResponseHeadError,
  ResponseHeadReader,
  encodeResponseHead,
  relayedRequestHeaders,
  relayedResponseHeaders,
  type ResponseHead,
} from "./relay-contract.js";

const head: ResponseHead = {
  status: 200,
  statusMessage: "OK",
  headers: [
    ["Content-Type", "application/json"],
    ["Audit-Id", "3f1c0a9e-0000-4000-8000-000000000000"],
    ["Set-Cookie", "a=1"],
    ["Set-Cookie", "b=2"],
    ["X-Note", "ünïcødé ✓"],
  ],
};

/** A frame with an arbitrary JSON (or non-JSON) payload and the length it claims. */
function rawFrame(payload: string | Buffer, claimedLength?: number): Buffer {
  const body = typeof payload === "string" ? Buffer.from(payload, "utf8") : payload;
  const frame = Buffer.alloc(4 + body.length);
  frame.writeUInt32BE(claimedLength ?? body.length, 0);
  body.copy(frame, 4);
  return frame;
}

describe("encodeResponseHead / ResponseHeadReader", () => {
  it("encodes a 4-byte big-endian length then the JSON head", () => {
    const frame = encodeResponseHead(head);
    const json = Buffer.from(JSON.stringify(head), "utf8");
    expect(frame.readUInt32BE(0)).toBe(json.length);
    expect(frame.subarray(4).equals(json)).toBe(true);
  });

  it("round trips a head in one chunk, with nothing after it", () => {
    const got = new ResponseHeadReader().push(encodeResponseHead(head));
    expect(got).toBeDefined();
    expect(got!.head).toEqual(head);
    expect(got!.rest.length).toBe(0);
  });

  it("returns the bytes after the head (the start of the body) as rest", () => {
    const body = Buffer.from('{"kind":"PodList","items":[]}');
    const got = new ResponseHeadReader().push(Buffer.concat([encodeResponseHead(head), body]));
    expect(got!.head).toEqual(head);
    expect(got!.rest.equals(body)).toBe(true);
  });

  it("reads a head split across 1-byte chunks, only on its last byte", () => {
    const frame = encodeResponseHead(head);
    const reader = new ResponseHeadReader();
    for (let i = 0; i < frame.length - 1; i++) {
      expect(reader.push(frame.subarray(i, i + 1))).toBeUndefined();
    }
    const got = reader.push(frame.subarray(frame.length - 1));
    expect(got!.head).toEqual(head);
    expect(got!.rest.length).toBe(0);
  });

  it("reads a head split at every byte boundary, the body's start arriving with its end", () => {
    const body = Buffer.from("body bytes");
    const all = Buffer.concat([encodeResponseHead(head), body]);
    const headLength = all.length - body.length;
    for (let cut = 1; cut < headLength; cut++) {
      const reader = new ResponseHeadReader();
      expect(reader.push(all.subarray(0, cut))).toBeUndefined();
      const got = reader.push(all.subarray(cut));
      expect(got!.head).toEqual(head);
      expect(got!.rest.equals(body)).toBe(true);
    }
  });

  it("defaults a missing statusMessage to an empty string", () => {
    const got = new ResponseHeadReader().push(rawFrame(JSON.stringify({ status: 101, headers: [["Upgrade", "websocket"]] })));
    expect(got!.head).toEqual({ status: 101, statusMessage: "", headers: [["Upgrade", "websocket"]] });
  });

  it("throws ResponseHeadError on a too-long head as soon as its length is read", () => {
    const reader = new ResponseHeadReader();
    const length = Buffer.alloc(4);
    length.writeUInt32BE(MAX_RESPONSE_HEAD + 1, 0);
    expect(() => reader.push(length)).toThrow(ResponseHeadError);
  });

  it("throws on a too-long head whose length arrives split across chunks", () => {
    const reader = new ResponseHeadReader();
    const length = Buffer.alloc(4);
    length.writeUInt32BE(0xffffffff, 0);
    expect(reader.push(length.subarray(0, 2))).toBeUndefined();
    expect(() => reader.push(length.subarray(2))).toThrow(/response head of 4294967295 bytes/);
  });

  it("accepts a head of exactly MAX_RESPONSE_HEAD bytes (waits for it)", () => {
    const reader = new ResponseHeadReader();
    const length = Buffer.alloc(4);
    length.writeUInt32BE(MAX_RESPONSE_HEAD, 0);
    expect(reader.push(length)).toBeUndefined();
  });

  it("throws ResponseHeadError on a head that is not JSON", () => {
    const reader = new ResponseHeadReader();
    let error: unknown;
    try {
      reader.push(rawFrame("HTTP/1.1 200 OK\r\n"));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ResponseHeadError);
    expect((error as Error).name).toBe("ResponseHeadError");
    expect((error as Error).message).toBe("response head is not JSON");
  });

  it.each([
    ["no status", { headers: [] }],
    ["a string status", { status: "200", headers: [] }],
    ["no headers", { status: 200 }],
    ["headers not pairs", { status: 200, headers: [["Content-Type"]] }],
    ["a header value not a string", { status: 200, headers: [["Content-Length", 5]] }],
    ["null", null],
    ["an array", [200, []]],
  ])("throws ResponseHeadError on JSON that is not a head (%s)", (_label, value) => {
    expect(() => new ResponseHeadReader().push(rawFrame(JSON.stringify(value)))).toThrow(ResponseHeadError);
  });
});

/** Node's rawHeaders form: name, value, name, value… */
const flat = (pairs: [string, string][]) => pairs.flat();

describe("relayedRequestHeaders", () => {
  const credentials: [string, string][] = [
    ["Authorization", "Bearer alice:secret"],
    ["authorization", "Basic YTpi"],
    ["Impersonate-User", "system:admin"],
    ["Impersonate-Group", "system:masters"],
    ["impersonate-group", "system:masters"],
    ["Impersonate-Extra-scopes", "view"],
    ["Impersonate-Extra-Acme.com%2Fproject", "p"],
    ["Impersonate-Uid", "1234"],
    ["IMPERSONATE-USER", "root"],
    ["iMpErSoNaTe-UiD", "0"],
  ];
  const hopByHop: [string, string][] = [
    ["Host", "gw.example:16443"],
    ["Keep-Alive", "timeout=5"],
    ["Proxy-Connection", "keep-alive"],
    ["Proxy-Authorization", "Basic eDp5"],
    ["Proxy-Authenticate", "Basic"],
    ["TE", "trailers"],
    ["Trailer", "X-Checksum"],
    ["Transfer-Encoding", "chunked"],
  ];
  const kept: [string, string][] = [
    ["Accept", "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"],
    ["Content-Type", "application/strategic-merge-patch+json"],
    ["User-Agent", "kubectl/v1.32.0 (linux/amd64) kubernetes/abcdef"],
    ["Sec-WebSocket-Protocol", "v5.channel.k8s.io, v4.channel.k8s.io"],
    ["Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="],
    ["Sec-WebSocket-Version", "13"],
    ["X-Stream-Protocol-Version", "portforward.k8s.io"],
    ["Kubectl-Command", "kubectl exec"],
    ["Content-Length", "42"],
  ];
  const upgradeHeaders: [string, string][] = [
    ["Connection", "Upgrade"],
    ["Upgrade", "websocket"],
  ];

  it("drops the client's credential and every Impersonate-* header, in any case", () => {
    const out = relayedRequestHeaders(flat([...credentials, ...kept]), false);
    const names = out.map(([n]) => n.toLowerCase());
    expect(names).not.toContain("authorization");
    expect(names.some((n) => n.startsWith("impersonate-"))).toBe(false);
    expect(out).toEqual(kept);
  });

  it("drops the credential on upgrades too", () => {
    const out = relayedRequestHeaders(flat([...credentials, ...upgradeHeaders]), true);
    expect(out).toEqual(upgradeHeaders);
  });

  it("drops hop-by-hop headers (Host included) and, without an upgrade, Connection and Upgrade", () => {
    const out = relayedRequestHeaders(flat([...hopByHop, ...upgradeHeaders, ["connection", "keep-alive"], ...kept]), false);
    expect(out).toEqual(kept);
  });

  it("keeps Connection and Upgrade for an upgrade, still dropping the other hop-by-hop headers", () => {
    const out = relayedRequestHeaders(flat([...hopByHop, ...upgradeHeaders, ...kept]), true);
    expect(out).toEqual([...upgradeHeaders, ...kept]);
  });

  it("keeps the SPDY upgrade's headers", () => {
    const spdy: [string, string][] = [
      ["Connection", "Upgrade"],
      ["Upgrade", "SPDY/3.1"],
      ["X-Stream-Protocol-Version", "portforward.k8s.io"],
      ["X-Stream-Protocol-Version", "v4.channel.k8s.io"],
    ];
    expect(relayedRequestHeaders(flat(spdy), true)).toEqual(spdy);
  });

  it("keeps names as sent, in order, repeated names apart", () => {
    const raw: [string, string][] = [
      ["accept", "application/json"],
      ["X-Custom", "1"],
      ["x-custom", "2"],
      ["USER-AGENT", "curl/8"],
    ];
    expect(relayedRequestHeaders(flat(raw), false)).toEqual(raw);
  });

  it("does not take headers whose names merely contain a dropped name", () => {
    const raw: [string, string][] = [
      ["X-Authorization-Hint", "x"],
      ["X-Impersonate-User", "y"],
      ["Upgrade-Insecure-Requests", "1"],
      ["Hosts", "z"],
    ];
    expect(relayedRequestHeaders(flat(raw), false)).toEqual(raw);
  });

  it("ignores a trailing name without a value, and an empty list", () => {
    expect(relayedRequestHeaders(["Accept", "*/*", "Dangling"], false)).toEqual([["Accept", "*/*"]]);
    expect(relayedRequestHeaders([], true)).toEqual([]);
  });
});

describe("relayedResponseHeaders", () => {
  const endToEnd: [string, string][] = [
    ["Content-Type", "application/json"],
    ["Audit-Id", "abc"],
    ["Cache-Control", "no-cache, private"],
    ["X-Kubernetes-Pf-Flowschema-Uid", "u1"],
    ["Set-Cookie", "a=1"],
    ["Set-Cookie", "b=2"],
    ["Content-Length", "12"],
    ["Sec-WebSocket-Accept", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="],
    ["Sec-WebSocket-Protocol", "v5.channel.k8s.io"],
    ["X-Stream-Protocol-Version", "v4.channel.k8s.io"],
    ["WWW-Authenticate", "Bearer"],
  ];
  const hopByHop: [string, string][] = [
    ["Transfer-Encoding", "chunked"],
    ["Keep-Alive", "timeout=5"],
    ["Proxy-Authenticate", "Basic"],
    ["Trailer", "X"],
    ["TE", "trailers"],
    ["Host", "api"],
    ["Proxy-Connection", "keep-alive"],
  ];

  it("drops hop-by-hop headers, and Connection/Upgrade without an upgrade", () => {
    const out = relayedResponseHeaders([...hopByHop, ["Connection", "keep-alive"], ["Upgrade", "h2c"], ...endToEnd], false);
    expect(out).toEqual(endToEnd);
  });

  it("keeps Connection and Upgrade (any case) for an upgrade's 101, dropping the rest", () => {
    const upgrade: [string, string][] = [
      ["connection", "Upgrade"],
      ["UPGRADE", "websocket"],
    ];
    const out = relayedResponseHeaders([...hopByHop, ...upgrade, ...endToEnd], true);
    expect(out).toEqual([...upgrade, ...endToEnd]);
  });

  it("drops hop-by-hop names in any case", () => {
    expect(relayedResponseHeaders([["TRANSFER-ENCODING", "chunked"], ["keep-alive", "x"], ["Content-Type", "text/plain"]], false)).toEqual([["Content-Type", "text/plain"]]);
  });

  it("does not modify the headers it is given", () => {
    const given: [string, string][] = [["Connection", "close"], ["Content-Type", "text/plain"]];
    const copy = given.map(([n, v]) => [n, v]);
    relayedResponseHeaders(given, false);
    expect(given).toEqual(copy);
  });
});

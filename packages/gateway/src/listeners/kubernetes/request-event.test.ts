import type { IncomingMessage } from "node:http";
import { REDACTED, commandLine, requestInfo } from "@gatehouse/protocols/kubernetes";
import { describe, expect, it } from "vitest";
import { keepsBody, keptBody, requestDraft } from "./request-event.js";

/** Only what request-event.ts reads of an IncomingMessage: its method and (lower-case) headers. */
function fakeReq(method: string, headers: Record<string, string> = {}): IncomingMessage {
  return { method, headers } as unknown as IncomingMessage;
}

const UA = "kubectl/v1.32.0 (linux/amd64) kubernetes/70d3cc9";

function draftOf(method: string, url: string, headers: Record<string, string> = { "user-agent": UA }, body?: { bytes: Buffer; complete: boolean; maxBytes: number }) {
  const info = requestInfo({ method, url });
  return { info, draft: requestDraft(info, fakeReq(method, headers), url, body) };
}

describe("requestDraft: kind and command", () => {
  it("an exec is kind exec, its command line the kubectl one", () => {
    const url = "/api/v1/namespaces/prod/pods/web-1/exec?command=sh&command=-c&command=echo%20hi&container=app&stdin=true&stdout=true&tty=true";
    const { info, draft } = draftOf("GET", url);
    expect(draft.kind).toBe("exec");
    expect(draft.command).toBe("exec pods/web-1 -n prod -c app -- sh -c 'echo hi'");
    expect(draft.command).toBe(commandLine(info));
    expect(draft.params).toBeNull();
    expect(draft.details).toEqual({
      method: "GET",
      path: url,
      verb: "exec",
      apiGroup: "",
      apiVersion: "v1",
      resource: "pods",
      subresource: "exec",
      namespace: "prod",
      name: "web-1",
      container: "app",
      userAgent: UA,
    });
  });

  it("an attach is kind exec too", () => {
    const url = "/api/v1/namespaces/prod/pods/web-1/attach?container=app&stdin=true&stdout=true";
    const { draft } = draftOf("POST", url);
    expect(draft.kind).toBe("exec");
    expect(draft.command).toBe("attach pods/web-1 -n prod -c app");
    expect(draft.details).toMatchObject({ method: "POST", verb: "attach", subresource: "attach", name: "web-1", namespace: "prod" });
  });

  it.each([
    ["GET", "/api/v1/pods?limit=500", "get pods -A"],
    ["GET", "/api/v1/namespaces/prod/pods/web-1/log?container=app&follow=true", "logs pods/web-1 -n prod -c app -f"],
    ["GET", "/api/v1/namespaces/prod/pods/web-1/portforward?ports=8080", "port-forward pods/web-1 -n prod"],
    ["DELETE", "/api/v1/namespaces/prod/configmaps/settings", "delete configmaps/settings -n prod"],
    ["GET", "/version?timeout=32s", "get --raw /version"],
  ])("%s %s is kind request", (method, url, command) => {
    const { draft } = draftOf(method, url);
    expect(draft.kind).toBe("request");
    expect(draft.command).toBe(command);
  });
});

describe("requestDraft: details", () => {
  it("a list carries its selectors, no namespace or name", () => {
    const url = "/apis/apps/v1/deployments?labelSelector=app%3Dweb&fieldSelector=status.phase%3DRunning";
    const { draft } = draftOf("GET", url);
    expect(draft.details).toEqual({
      method: "GET",
      path: url,
      verb: "list",
      apiGroup: "apps",
      apiVersion: "v1",
      resource: "deployments",
      labelSelector: "app=web",
      fieldSelector: "status.phase=Running",
      userAgent: UA,
    });
  });

  it("logs -f carries follow and the container", () => {
    const { draft } = draftOf("GET", "/api/v1/namespaces/prod/pods/web-1/log?container=app&follow=true");
    expect(draft.details).toMatchObject({ verb: "logs", subresource: "log", follow: true, container: "app", name: "web-1", namespace: "prod" });
  });

  it("a dry run is marked", () => {
    const { draft } = draftOf("POST", "/api/v1/namespaces/prod/configmaps?dryRun=All");
    expect(draft.details).toMatchObject({ verb: "create", resource: "configmaps", namespace: "prod", dryRun: true });
    const { draft: real } = draftOf("POST", "/api/v1/namespaces/prod/configmaps");
    expect(real.details).not.toHaveProperty("dryRun");
  });

  it("a non-resource request has only method, path, verb (and user agent)", () => {
    const { draft } = draftOf("GET", "/apis");
    expect(draft.details).toEqual({ method: "GET", path: "/apis", verb: "get", userAgent: UA });
  });

  it("cuts the user agent to 256 characters", () => {
    const long = "k".repeat(300);
    const { draft } = draftOf("GET", "/version", { "user-agent": long });
    expect(draft.details.userAgent).toBe("k".repeat(256));
    const { draft: exact } = draftOf("GET", "/version", { "user-agent": "u".repeat(256) });
    expect(exact.details.userAgent).toBe("u".repeat(256));
  });

  it("leaves the user agent out when there is none", () => {
    expect(draftOf("GET", "/version", {}).draft.details).not.toHaveProperty("userAgent");
    expect(draftOf("GET", "/version", { "user-agent": "" }).draft.details).not.toHaveProperty("userAgent");
  });

  it("cuts a path longer than 4096 characters and marks it", () => {
    const url = `/api/v1/namespaces/prod/pods?labelSelector=${"a".repeat(5000)}`;
    const { draft } = draftOf("GET", url);
    expect(draft.details.path).toBe(url.slice(0, 4096));
    expect((draft.details.path as string).length).toBe(4096);
    expect(draft.details.pathTruncated).toBe(true);
  });

  it("keeps a path of exactly 4096 characters whole, unmarked", () => {
    const prefix = "/api/v1/pods?labelSelector=";
    const url = prefix + "b".repeat(4096 - prefix.length);
    const { draft } = draftOf("GET", url);
    expect(draft.details.path).toBe(url);
    expect(draft.details).not.toHaveProperty("pathTruncated");
  });

  it("records the path it is given (the route's path), not the info's", () => {
    const info = requestInfo({ method: "GET", url: "/api/v1/pods?watch=1" });
    const draft = requestDraft(info, fakeReq("GET"), "/api/v1/pods?watch=1");
    expect(draft.details.path).toBe("/api/v1/pods?watch=1");
    expect(draft.details.verb).toBe("watch");
  });
});

describe("requestDraft: body", () => {
  const secret = {
    apiVersion: "v1",
    kind: "Secret",
    metadata: { name: "db", namespace: "prod" },
    data: { password: "aHVudGVyMg==", user: "YWRtaW4=" },
    stringData: { token: "s3cr3t" },
  };

  it("keeps a Secret's body with its data values redacted in params[0]", () => {
    const bytes = Buffer.from(JSON.stringify(secret));
    const { draft } = draftOf("POST", "/api/v1/namespaces/prod/secrets?fieldManager=kubectl-client-side-apply", { "content-type": "application/json", "user-agent": UA }, { bytes, complete: true, maxBytes: 65536 });
    expect(draft.kind).toBe("request");
    expect(draft.params).toHaveLength(1);
    const text = draft.params![0] as string;
    expect(text).not.toContain("aHVudGVyMg==");
    expect(text).not.toContain("YWRtaW4=");
    expect(text).not.toContain("s3cr3t");
    const kept = JSON.parse(text);
    expect(kept.data).toEqual({ password: REDACTED, user: REDACTED });
    expect(kept.stringData).toEqual({ token: REDACTED });
    expect(kept.metadata).toEqual(secret.metadata);
    expect(draft.details.body).toEqual({ contentType: "application/json", redacted: true });
  });

  it("redacts a patch to a Secret that does not name its kind (by the request's resource)", () => {
    const bytes = Buffer.from('{"data":{"password":"bmV3"}}');
    const { draft } = draftOf("PATCH", "/api/v1/namespaces/prod/secrets/db", { "content-type": "application/strategic-merge-patch+json" }, { bytes, complete: true, maxBytes: 65536 });
    expect(JSON.parse(draft.params![0] as string)).toEqual({ data: { password: REDACTED } });
    expect(draft.details.body).toEqual({ contentType: "application/strategic-merge-patch+json", redacted: true });
  });

  it("keeps another body as sent, unmarked", () => {
    const body = '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"settings"},"data":{"mode":"fast"}}';
    const { draft } = draftOf("POST", "/api/v1/namespaces/prod/configmaps", { "content-type": "application/json" }, { bytes: Buffer.from(body), complete: true, maxBytes: 65536 });
    expect(draft.params).toEqual([body]);
    expect(draft.details.body).toEqual({ contentType: "application/json" });
  });

  it("marks a body the caller kept only the start of as truncated", () => {
    const start = '{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"big"},"data":{"a":"';
    const { draft } = draftOf("POST", "/api/v1/namespaces/prod/configmaps", { "content-type": "application/json" }, { bytes: Buffer.from(start), complete: false, maxBytes: 65536 });
    expect(draft.params).toEqual([start]);
    expect(draft.details.body).toEqual({ contentType: "application/json", truncated: true });
  });

  it("withholds an incomplete Secret body, marked truncated and withheld", () => {
    const bytes = Buffer.from(JSON.stringify(secret).slice(0, 60));
    const { draft } = draftOf("POST", "/api/v1/namespaces/prod/secrets", { "content-type": "application/json" }, { bytes, complete: false, maxBytes: 65536 });
    expect(draft.params).toEqual([""]);
    expect(draft.details.body).toEqual({ contentType: "application/json", redacted: true, truncated: true, withheld: true });
  });

  it("caps a body at maxBytes and marks it truncated", () => {
    const body = `{"kind":"ConfigMap","data":{"x":"${"y".repeat(200)}"}}`;
    const { draft } = draftOf("PUT", "/api/v1/namespaces/prod/configmaps/c", { "content-type": "application/json" }, { bytes: Buffer.from(body), complete: true, maxBytes: 100 });
    expect(draft.params).toEqual([body.slice(0, 100)]);
    expect(draft.details.body).toEqual({ contentType: "application/json", truncated: true });
  });

  it("records a missing content type as null", () => {
    const { draft } = draftOf("POST", "/api/v1/namespaces/prod/configmaps", {}, { bytes: Buffer.from("{}"), complete: true, maxBytes: 65536 });
    expect(draft.details.body).toEqual({ contentType: null });
  });

  it("has no params and no body details for an empty body, or none", () => {
    const empty = draftOf("DELETE", "/api/v1/namespaces/prod/pods/web-1", {}, { bytes: Buffer.alloc(0), complete: true, maxBytes: 65536 }).draft;
    expect(empty.params).toBeNull();
    expect(empty.details).not.toHaveProperty("body");
    const none = draftOf("GET", "/api/v1/namespaces/prod/pods/web-1").draft;
    expect(none.params).toBeNull();
    expect(none.details).not.toHaveProperty("body");
  });
});

describe("keptBody", () => {
  it("redacts by the resource it is given", () => {
    const req = fakeReq("PATCH", { "content-type": "application/merge-patch+json" });
    const bytes = Buffer.from('{"stringData":{"k":"v"}}');
    expect(keptBody("secrets", req, { bytes, complete: true, maxBytes: 1024 })).toEqual({
      params: [JSON.stringify({ stringData: { k: REDACTED } })],
      body: { contentType: "application/merge-patch+json", redacted: true },
    });
    expect(keptBody("configmaps", req, { bytes, complete: true, maxBytes: 1024 })).toEqual({
      params: ['{"stringData":{"k":"v"}}'],
      body: { contentType: "application/merge-patch+json" },
    });
  });

  it("redacts a JSON patch writing under /data", () => {
    const req = fakeReq("PATCH", { "content-type": "application/json-patch+json" });
    const ops = [{ op: "replace", path: "/data/password", value: "bmV3" }];
    const kept = keptBody("secrets", req, { bytes: Buffer.from(JSON.stringify(ops)), complete: true, maxBytes: 1024 });
    expect(JSON.parse(kept.params[0] as string)).toEqual([{ op: "replace", path: "/data/password", value: REDACTED }]);
    expect(kept.body.redacted).toBe(true);
  });
});

describe("keepsBody", () => {
  it("is true for the methods that change the cluster", () => {
    for (const method of ["POST", "PUT", "PATCH", "DELETE"]) expect(keepsBody(method)).toBe(true);
  });

  it("is false for reads, unknown methods and none", () => {
    for (const method of ["GET", "HEAD", "OPTIONS", "CONNECT", "post", "", undefined]) expect(keepsBody(method)).toBe(false);
  });
});

import { describe, expect, it } from "vitest";
import { REDACTED, redactBody } from "./redact.js";

const secret = {
  apiVersion: "v1",
  kind: "Secret",
  metadata: { name: "db", namespace: "prod", annotations: { "kubectl.kubernetes.io/last-applied-configuration": JSON.stringify({ kind: "Secret", data: { password: "aHVudGVyMg==" } }) } },
  data: { password: "aHVudGVyMg==" },
  stringData: { token: "s3cr3t" },
};

describe("redactBody", () => {
  it("replaces Secret data and stringData values and the last-applied copy, keeping keys", () => {
    const r = redactBody(JSON.stringify(secret), { resource: "secrets", contentType: "application/json" });
    expect(r.redacted).toBe(true);
    expect(r.text).not.toContain("aHVudGVyMg==");
    expect(r.text).not.toContain("s3cr3t");
    const doc = JSON.parse(r.text);
    expect(doc.data).toEqual({ password: REDACTED });
    expect(doc.stringData).toEqual({ token: REDACTED });
    expect(JSON.parse(doc.metadata.annotations["kubectl.kubernetes.io/last-applied-configuration"]).data).toEqual({ password: REDACTED });
  });

  it("a strategic merge patch to a secret (no kind) is redacted by the request's resource", () => {
    const r = redactBody('{"data":{"password":"bmV3"}}', { resource: "secrets", contentType: "application/strategic-merge-patch+json" });
    expect(JSON.parse(r.text)).toEqual({ data: { password: REDACTED } });
  });

  it("JSON patch ops writing under /data are redacted", () => {
    const ops = [{ op: "replace", path: "/data/password", value: "bmV3" }, { op: "add", path: "/stringData", value: { a: "b" } }, { op: "add", path: "/metadata/labels/x", value: "y" }];
    const r = redactBody(JSON.stringify(ops), { resource: "secrets", contentType: "application/json-patch+json" });
    expect(JSON.parse(r.text)).toEqual([{ op: "replace", path: "/data/password", value: REDACTED }, { op: "add", path: "/stringData", value: { a: REDACTED } }, { op: "add", path: "/metadata/labels/x", value: "y" }]);
  });

  it("Secrets inside a List are redacted; other objects are kept as sent", () => {
    const list = { kind: "List", items: [secret, { kind: "ConfigMap", data: { mode: "two" } }] };
    const doc = JSON.parse(redactBody(JSON.stringify(list), { resource: "", contentType: "application/json" }).text);
    expect(doc.items[0].data).toEqual({ password: REDACTED });
    expect(doc.items[1].data).toEqual({ mode: "two" });
    const cm = '{"kind":"ConfigMap","data":{"mode":"two"}}';
    expect(redactBody(cm, { resource: "configmaps", contentType: "application/json" })).toEqual({ text: cm, redacted: false, truncated: false, withheld: false });
  });

  it("YAML (server-side apply) keeps keys and drops values, block scalars included", () => {
    const yaml = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ndata:\n  password: aHVudGVyMg==\nstringData:\n  cert: |\n    -----BEGIN-----\n    abc\n  user: admin\ntype: Opaque\n";
    const r = redactBody(yaml, { resource: "secrets", contentType: "application/apply-patch+yaml" });
    expect(r.withheld).toBe(false);
    expect(r.text).toBe("apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ndata:\n  password: REDACTED\nstringData:\n  cert: REDACTED\n  user: REDACTED\ntype: Opaque\n");
  });

  it("a Secret body it cannot read whole is withheld, never kept raw", () => {
    expect(redactBody('{"kind":"Secret","data":{"p', { resource: "secrets", contentType: "application/json" }).withheld).toBe(true);
    expect(redactBody(JSON.stringify(secret), { resource: "secrets", contentType: "application/json", complete: false })).toMatchObject({ text: "", withheld: true });
    expect(redactBody("data: {password: x}\n", { resource: "secrets", contentType: "application/apply-patch+yaml" }).withheld).toBe(true);
  });

  it("caps after redaction on a character boundary", () => {
    const r = redactBody(`{"kind":"ConfigMap","data":{"a":"${"é".repeat(100)}"}}`, { resource: "configmaps", contentType: "application/json", maxBytes: 41 });
    expect(r.truncated).toBe(true);
    expect(Buffer.byteLength(r.text)).toBeLessThanOrEqual(41);
    expect(r.text.endsWith("\uFFFD")).toBe(false);
  });
});

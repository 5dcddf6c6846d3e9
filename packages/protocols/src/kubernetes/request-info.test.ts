import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { commandLine, requestInfo } from "./request-info.js";

// What the real kubectl sent to the test API server (e2e/test/kube-apiserver.test.ts, recorded
// with RECORD_KUBECTL_FIXTURE=1).
const recorded: { method: string; url: string }[] = JSON.parse(readFileSync(join(import.meta.dirname, "fixtures/kubectl-requests.json"), "utf8"));
const sent = (method: string, prefix: string) => {
  const r = recorded.find((q) => q.method === method && q.url.startsWith(prefix));
  if (!r) throw new Error(`kubectl did not send ${method} ${prefix}`);
  return r;
};

describe("requestInfo on what kubectl really sends", () => {
  it("get pods -A is a cluster-wide list", () => {
    const i = requestInfo(sent("GET", "/api/v1/pods?"));
    expect(i).toMatchObject({ isResourceRequest: true, verb: "list", apiGroup: "", apiVersion: "v1", resource: "pods", namespace: "", name: "" });
    expect(commandLine(i)).toBe("get pods -A");
  });

  it("get -w lists, then watches from the list's resourceVersion", () => {
    const i = requestInfo(sent("GET", "/api/v1/namespaces/prod/pods?resourceVersion="));
    expect(i).toMatchObject({ verb: "watch", kubernetesVerb: "watch", resource: "pods", namespace: "prod", name: "" });
    expect(commandLine(i)).toBe("get pods -n prod --watch");
  });

  it("get pod web-1 is a get in its namespace", () => {
    const i = requestInfo(sent("GET", "/api/v1/namespaces/default/pods/web-1"));
    expect(i).toMatchObject({ verb: "get", resource: "pods", namespace: "default", name: "web-1", subresource: "" });
    expect(commandLine(i)).toBe("get pods/web-1 -n default");
  });

  it("apply: create (POST) then strategic merge patch, never dry-run", () => {
    const create = requestInfo(sent("POST", "/api/v1/namespaces/default/configmaps?"));
    expect(create).toMatchObject({ verb: "create", kubernetesVerb: "create", resource: "configmaps", namespace: "default", name: "", dryRun: false });
    const patch = requestInfo(sent("PATCH", "/api/v1/namespaces/default/configmaps/settings"));
    expect(patch).toMatchObject({ verb: "patch", resource: "configmaps", name: "settings" });
    expect(commandLine(patch)).toBe("patch configmaps/settings -n default");
  });

  it("apply --server-side is a patch on the named object", () => {
    const i = requestInfo(sent("PATCH", "/api/v1/namespaces/default/secrets/db-password?"));
    expect(i).toMatchObject({ verb: "patch", resource: "secrets", name: "db-password", dryRun: false });
  });

  it("delete names the object", () => {
    const i = requestInfo(sent("DELETE", "/api/v1/namespaces/default/configmaps/settings"));
    expect(commandLine(i)).toBe("delete configmaps/settings -n default");
  });

  it("logs -f is the log subresource, recorded as logs with follow", () => {
    const i = requestInfo(sent("GET", "/api/v1/namespaces/default/pods/web-1/log?"));
    expect(i).toMatchObject({ verb: "logs", kubernetesVerb: "get", subresource: "log", name: "web-1", follow: true });
    expect(commandLine(i)).toBe("logs pods/web-1 -n default -c app -f");
  });

  it("exec -i arrives as a WebSocket GET carrying the command", () => {
    const i = requestInfo(sent("GET", "/api/v1/namespaces/default/pods/web-1/exec?"));
    expect(i).toMatchObject({ verb: "exec", kubernetesVerb: "get", name: "web-1", container: "app", command: ["sh", "-c", "read x; echo got-$x; echo err >&2; exit 3"] });
    expect(commandLine(i)).toBe("exec pods/web-1 -n default -c app -- sh -c 'read x; echo got-$x; echo err >&2; exit 3'");
  });

  it("port-forward arrives as a WebSocket GET, then a SPDY POST", () => {
    expect(requestInfo(sent("GET", "/api/v1/namespaces/default/pods/web-1/portforward"))).toMatchObject({ verb: "portforward", kubernetesVerb: "get" });
    expect(requestInfo(sent("POST", "/api/v1/namespaces/default/pods/web-1/portforward"))).toMatchObject({ verb: "portforward", kubernetesVerb: "create" });
  });

  it("auth can-i posts a cluster-scoped SelfSubjectAccessReview", () => {
    const i = requestInfo(sent("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"));
    expect(i).toMatchObject({ verb: "create", apiGroup: "authorization.k8s.io", apiVersion: "v1", resource: "selfsubjectaccessreviews", namespace: "" });
  });

  it("discovery and version are non-resource requests", () => {
    for (const prefix of ["/version?", "/api?", "/apis?", "/openapi/v3?"]) {
      const i = requestInfo(sent("GET", prefix));
      expect(i.isResourceRequest).toBe(false);
      expect(i.verb).toBe("get");
    }
    expect(commandLine(requestInfo(sent("GET", "/version?")))).toBe("get --raw /version");
  });

  it("every recorded resource request names a resource and a known verb", () => {
    const verbs = new Set(["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection", "exec", "attach", "portforward", "proxy", "logs"]);
    for (const q of recorded) {
      const i = requestInfo(q);
      if (!i.isResourceRequest) continue;
      expect(i.resource, q.url).not.toBe("");
      expect(verbs.has(i.verb), q.url).toBe(true);
    }
  });
});

describe("requestInfo edge cases (RequestInfoFactory's rules)", () => {
  const info = (method: string, url: string) => requestInfo({ method, url });

  it("namespaces: list vs get vs status subresource", () => {
    expect(info("GET", "/api/v1/namespaces")).toMatchObject({ verb: "list", resource: "namespaces", namespace: "", name: "" });
    expect(info("GET", "/api/v1/namespaces/prod")).toMatchObject({ verb: "get", resource: "namespaces", namespace: "prod", name: "prod" });
    expect(info("PUT", "/api/v1/namespaces/prod/finalize")).toMatchObject({ verb: "update", resource: "namespaces", name: "prod", subresource: "finalize" });
    expect(info("GET", "/api/v1/namespaces/prod/status")).toMatchObject({ resource: "namespaces", name: "prod", subresource: "status" });
    expect(commandLine(info("GET", "/api/v1/namespaces"))).toBe("get namespaces");
    expect(commandLine(info("GET", "/api/v1/namespaces/prod"))).toBe("get namespaces/prod");
  });

  it("cluster-scoped resources in a group", () => {
    expect(info("GET", "/apis/rbac.authorization.k8s.io/v1/clusterroles/admin")).toMatchObject({ verb: "get", apiGroup: "rbac.authorization.k8s.io", resource: "clusterroles", name: "admin", namespace: "" });
    expect(commandLine(info("GET", "/apis/rbac.authorization.k8s.io/v1/clusterroles"))).toBe("get clusterroles.rbac.authorization.k8s.io");
  });

  it("subresources status and scale", () => {
    const scale = info("PATCH", "/apis/apps/v1/namespaces/prod/deployments/web/scale");
    expect(scale).toMatchObject({ verb: "patch", apiGroup: "apps", resource: "deployments", name: "web", subresource: "scale" });
    expect(commandLine(scale)).toBe("patch deployments.apps/web --subresource=scale -n prod");
    expect(info("PUT", "/api/v1/namespaces/prod/pods/web-1/status")).toMatchObject({ verb: "update", subresource: "status" });
  });

  it("exec over a WebSocket GET and over a SPDY POST, with the command", () => {
    const url = "/api/v1/namespaces/prod/pods/web-1/exec?command=sh&command=-c&command=read+x%3B+echo+%24x&container=app&stdin=true&stdout=true&stderr=true";
    const ws = info("GET", url);
    expect(ws).toMatchObject({ verb: "exec", kubernetesVerb: "get", subresource: "exec", command: ["sh", "-c", "read x; echo $x"], container: "app" });
    expect(info("POST", url)).toMatchObject({ verb: "exec", kubernetesVerb: "create" });
    expect(commandLine(ws)).toBe("exec pods/web-1 -n prod -c app -- sh -c 'read x; echo $x'");
    expect(info("POST", "/api/v1/namespaces/prod/pods/web-1/attach?stdin=true")).toMatchObject({ verb: "attach", command: [] });
    expect(commandLine(info("GET", "/api/v1/namespaces/prod/pods/web-1/portforward"))).toBe("port-forward pods/web-1 -n prod");
  });

  it("watch=true turns a list into a watch; watch=false/0 does not", () => {
    expect(info("GET", "/api/v1/namespaces/prod/pods?watch=true&labelSelector=app%3Dweb")).toMatchObject({ verb: "watch", labelSelector: "app=web" });
    expect(info("GET", "/api/v1/pods?watch=1")).toMatchObject({ verb: "watch" });
    expect(info("GET", "/api/v1/pods?watch=false")).toMatchObject({ verb: "list" });
    expect(info("GET", "/api/v1/pods?watch=0")).toMatchObject({ verb: "list" });
    expect(commandLine(info("GET", "/api/v1/namespaces/prod/pods?watch=true&labelSelector=app%3Dweb"))).toBe("get pods -n prod -l app=web --watch");
  });

  it("a metadata.name field selector names the object of a list or watch", () => {
    const i = info("GET", "/api/v1/namespaces/default/configmaps?fieldSelector=metadata.name%3Dsettings&watch=true");
    expect(i).toMatchObject({ verb: "watch", name: "settings", fieldSelector: "metadata.name=settings" });
  });

  it("legacy /api/v1/watch/ paths", () => {
    expect(info("GET", "/api/v1/watch/namespaces/prod/pods/web-1")).toMatchObject({ verb: "watch", kubernetesVerb: "watch", namespace: "prod", resource: "pods", name: "web-1" });
    expect(info("GET", "/api/v1/watch/pods")).toMatchObject({ verb: "watch", resource: "pods", namespace: "" });
    expect(info("GET", "/api/v1/watch")).toMatchObject({ isResourceRequest: false });
  });

  it("proxy: the special verb keeps the rest of the path out of the subresource", () => {
    expect(info("GET", "/api/v1/proxy/namespaces/prod/services/web/metrics")).toMatchObject({ verb: "proxy", resource: "services", name: "web", subresource: "" });
    expect(info("GET", "/api/v1/namespaces/prod/services/web:80/proxy/metrics")).toMatchObject({ verb: "proxy", kubernetesVerb: "get", subresource: "proxy", name: "web:80" });
  });

  it("delete without a name is deletecollection; dryRun is recorded", () => {
    const i = info("DELETE", "/api/v1/namespaces/prod/pods?labelSelector=app%3Dweb&dryRun=All");
    expect(i).toMatchObject({ verb: "deletecollection", dryRun: true, labelSelector: "app=web" });
    expect(commandLine(i)).toBe("delete pods -n prod -l app=web --dry-run=server");
    expect(commandLine(info("DELETE", "/api/v1/namespaces/prod/pods"))).toBe("delete pods -n prod --all");
  });

  it("malformed escapes and odd paths never throw", () => {
    expect(info("GET", "/api/v1/namespaces/p%zz/pods/a%2Fb")).toMatchObject({ namespace: "p%zz", name: "a/b" });
    // Go's splitPath keeps empty segments: "//api//v1/pods" has version "" — never a host "api".
    expect(info("GET", "//api//v1/pods")).toMatchObject({ path: "//api//v1/pods", apiPrefix: "api", apiVersion: "" });
    expect(info("GET", "/api/v1/pods?fieldSelector=metadata.name%3D..")).toMatchObject({ verb: "list", name: "" });
  });

  it("short or unknown paths are non-resource: discovery of a group, healthz", () => {
    expect(info("GET", "/apis/apps/v1")).toMatchObject({ isResourceRequest: false, verb: "get" });
    expect(info("GET", "/api/v1")).toMatchObject({ isResourceRequest: false });
    expect(info("GET", "/healthz")).toMatchObject({ isResourceRequest: false });
    expect(info("POST", "/")).toMatchObject({ isResourceRequest: false, verb: "post" });
  });
});

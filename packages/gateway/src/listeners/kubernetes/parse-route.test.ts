import { describe, expect, it } from "vitest";
import { KUBE_PATH_PREFIX, parseRoute } from "./kubernetes-listener.js";

describe("parseRoute", () => {
  it("splits /k8s/CONNECTION off the path and query the API server is asked", () => {
    expect(parseRoute("/k8s/prod/api/v1/pods?watch=1")).toEqual({ connection: "prod", path: "/api/v1/pods?watch=1" });
    expect(parseRoute("/k8s/prod/apis/apps/v1/namespaces/web/deployments/front")).toEqual({ connection: "prod", path: "/apis/apps/v1/namespaces/web/deployments/front" });
  });

  it("a bare connection is the API's root", () => {
    expect(parseRoute("/k8s/prod")).toEqual({ connection: "prod", path: "/" });
    expect(parseRoute("/k8s/prod/")).toEqual({ connection: "prod", path: "/" });
  });

  it("a query straight after the connection is the root's query", () => {
    expect(parseRoute("/k8s/prod?x=1")).toEqual({ connection: "prod", path: "/?x=1" });
    expect(parseRoute("/k8s/prod?timeout=32s&x=/a")).toEqual({ connection: "prod", path: "/?timeout=32s&x=/a" });
  });

  it("a slash inside the query does not end the connection's name early", () => {
    expect(parseRoute("/k8s/prod?next=/api/v1")).toEqual({ connection: "prod", path: "/?next=/api/v1" });
  });

  it("decodes a percent-encoded connection name, leaving the rest as sent", () => {
    expect(parseRoute("/k8s/my%20cluster/api/v1/namespaces/a%20b/pods")).toEqual({ connection: "my cluster", path: "/api/v1/namespaces/a%20b/pods" });
    expect(parseRoute("/k8s/%E6%9D%B1%E4%BA%AC/version")).toEqual({ connection: "東京", path: "/version" });
    expect(parseRoute("/k8s/a%2Fb/api")).toEqual({ connection: "a/b", path: "/api" });
  });

  it("keeps the rest of the path as sent (empty segments included)", () => {
    expect(parseRoute("/k8s/prod//api/v1/pods")).toEqual({ connection: "prod", path: "//api/v1/pods" });
  });

  it.each([
    ["/api/v1/pods"],
    ["/"],
    [""],
    ["/k8s"],
    ["/k8s/"],
    ["/k8s//api"],
    ["/k8s/?x=1"],
    ["/k8sprod/api"],
    ["/K8S/prod/api"],
    ["k8s/prod/api"],
    ["/k8s/%zz/api"],
    ["/k8s/%E6%9D/api"],
    ["/k8s/prod%/api"],
    ["https://gw.example/k8s/prod/api"],
  ])("is undefined for %j", (url) => {
    expect(parseRoute(url)).toBeUndefined();
  });

  it("serves at the prefix kubeconfig names", () => {
    expect(KUBE_PATH_PREFIX).toBe("/k8s/");
  });
});

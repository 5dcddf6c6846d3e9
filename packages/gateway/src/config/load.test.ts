import { describe, expect, it } from "vitest";
import { GatewayError } from "../errors.js";
import { parseConfigText } from "./load.js";

const TOKEN_HASH = "a".repeat(64);

function problemsOf(yaml: string): string[] {
  try {
    parseConfigText(yaml);
  } catch (error) {
    expect(error).toBeInstanceOf(GatewayError);
    return (error as GatewayError).problems;
  }
  throw new Error("expected the config to be rejected");
}

describe("gateway config", () => {
  it("fills every default for an empty file", () => {
    const config = parseConfigText("");
    expect(config.dataDir).toBe("./data");
    expect(config.listen.api).toEqual({ host: "127.0.0.1", port: 8009 });
    expect(config.tunnel).toEqual({ pingIntervalMs: 10_000, deadAfterMs: 30_000, openTimeoutMs: 15_000 });
    expect(config.store.url).toBeUndefined();
    expect(config.connections).toEqual([]);
  });

  it("accepts a full config", () => {
    const config = parseConfigText(`
listen: { api: "0.0.0.0:9000" }
connectors: [ { name: dc1, tokenSha256: ${TOKEN_HASH} } ]
connections:
  - name: echo
    protocol: tcp
    connector: dc1
    listen: "127.0.0.1:0"
    target: { host: 127.0.0.1, port: 7 }
    allow: [ { identity: agent-1 }, { group: sre } ]
`);
    expect(config.listen.api).toEqual({ host: "0.0.0.0", port: 9000 });
    expect(config.connections[0]?.listen).toEqual({ host: "127.0.0.1", port: 0 });
    expect(config.connections[0]?.allow).toEqual([{ identity: "agent-1" }, { group: "sre" }]);
  });

  it("names the path of a wrongly typed value", () => {
    const problems = problemsOf(`
connectors: [ { name: dc1, tokenSha256: ${TOKEN_HASH} } ]
connections:
  - { name: a, protocol: tcp, connector: dc1, listen: ":1", target: { host: h, port: 1 } }
  - { name: b, protocol: tcp, connector: dc1, listen: ":2", target: { host: h, port: 2 } }
  - { name: c, protocol: tcp, connector: dc1, listen: ":3", target: { host: h, port: "five" } }
`);
    expect(problems).toEqual(['connections[2].target.port: expected a number, got "five"']);
  });

  it("rejects unknown keys, naming each, and reports every problem at once", () => {
    const problems = problemsOf(`
listen: { api: "nonsense", postgress: ":15432" }
recordin: {}
`);
    expect(problems).toContain("listen.postgress: unknown key");
    expect(problems).toContain("recordin: unknown key");
    expect(problems).toContain('listen.api: expected "host:port", got "nonsense"');
  });

  it("checks references between connections and connectors", () => {
    const problems = problemsOf(`
connections:
  - { name: a, protocol: tcp, connector: nowhere, target: { host: h, port: 1 } }
  - { name: a, protocol: postgres, connector: nowhere, listen: ":5", target: { host: h, port: 1 } }
`);
    expect(problems).toContain('connections[0].connector: no connector named "nowhere" in connectors');
    expect(problems).toContain("connections[0].listen: a tcp connection needs its own listen address");
    expect(problems).toContain("connections[1].name: duplicate connection name (also connections[0])");
    expect(problems.some((p) => p.startsWith("connections[1].listen: only tcp connections"))).toBe(true);
  });

  it("checks mysql connections like postgres ones, and allowLocalInfile only on them", () => {
    const problems = problemsOf(`
listen: { mysql: "127.0.0.1:13306" }
mysql: { requireTls: sometimes }
connectors: [{ name: dc1, tokenSha256: "${"a".repeat(64)}" }]
connections:
  - { name: m, protocol: mysql, connector: dc1, listen: ":5", target: { host: h, port: 3306 }, allowLocalInfile: true }
  - { name: p, protocol: postgres, connector: dc1, target: { host: h, port: 5432 }, allowLocalInfile: true }
`);
    expect(problems.some((p) => p.startsWith("connections[0].listen: only tcp connections have their own listener; mysql uses listen.mysql"))).toBe(true);
    expect(problems).toContain("connections[1].allowLocalInfile: only mysql connections have LOAD DATA LOCAL INFILE");
    expect(problems.some((p) => p.startsWith("mysql.requireTls"))).toBe(true);
    expect(problems.some((p) => p.startsWith("connections[0].allowLocalInfile"))).toBe(false);
  });

  it("takes kubernetes connections with a kubeconfig, and names what belongs only to them", () => {
    const ok = parseConfigText(`
listen: { kubernetes: "127.0.0.1:16443" }
connectors: [{ name: dc1, tokenSha256: "${"a".repeat(64)}" }]
connections:
  - { name: k, protocol: kubernetes, connector: dc1, target: { host: h, port: 6443, kubeconfig: /etc/k.yaml, context: prod }, impersonate: false }
`);
    expect(ok.connections[0]).toMatchObject({ protocol: "kubernetes", impersonate: false, target: { kubeconfig: "/etc/k.yaml", context: "prod" } });
    expect(ok.listen.kubernetes).toEqual({ host: "127.0.0.1", port: 16443 });
    const problems = problemsOf(`
listen: { kubernetes: "127.0.0.1:16443" }
connectors: [{ name: dc1, tokenSha256: "${"a".repeat(64)}" }]
connections:
  - { name: k, protocol: kubernetes, connector: dc1, target: { host: h, port: 6443 }, credential: { user: admin, password: "env:X" } }
  - { name: p, protocol: postgres, connector: dc1, target: { host: h, port: 5432, kubeconfig: /etc/k.yaml }, impersonate: true }
`);
    expect(problems.some((p) => p.startsWith("connections[0].credential: a kubernetes connection's credential is the connector's kubeconfig"))).toBe(true);
    expect(problems).toContain("connections[1].target.kubeconfig: only kubernetes connections read a kubeconfig");
    expect(problems).toContain("connections[1].impersonate: only kubernetes connections impersonate");
  });

  it("takes ssh connections with a pinned host key and a key reference, with ssh defaults", () => {
    const config = parseConfigText(`
listen: { ssh: "127.0.0.1:12222" }
connectors: [ { name: dc1, tokenSha256: ${TOKEN_HASH} } ]
connections:
  - { name: web1, protocol: ssh, connector: dc1, target: { host: h, port: 22, hostKey: "SHA256:${"A".repeat(43)}" }, credential: { user: deploy, privateKey: "file:/etc/gatehouse/web1_ed25519" } }
  - { name: web2, protocol: ssh, connector: dc1, target: { host: h, port: 22, hostKey: "[h]:22 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFzM9X4fh1QNAW54PMLFTFiwRlXmLVdyKl7GpRCADKy3" }, credential: { user: deploy, password: "env:WEB2_PASSWORD" }, allowPortForwarding: false }
`);
    expect(config.listen.ssh).toEqual({ host: "127.0.0.1", port: 12222 });
    expect(config.ssh.hostKey).toBeUndefined();
    expect(config.recording.ssh).toEqual({ execOutputBytes: 1024 * 1024, streamBytes: 64 * 1024 * 1024 });
    expect(config.connections[0]).toMatchObject({ allowPortForwarding: true, credential: { privateKey: "file:/etc/gatehouse/web1_ed25519" } });
    expect(config.connections[1]?.allowPortForwarding).toBe(false);
  });

  it("names what an ssh connection lacks, a bad host key, and ssh keys on other protocols", () => {
    const problems = problemsOf(`
connectors: [ { name: dc1, tokenSha256: ${TOKEN_HASH} } ]
recording: { ssh: { execOutputBytes: -1 } }
connections:
  - { name: a, protocol: ssh, connector: dc1, target: { host: h, port: 22 } }
  - { name: b, protocol: ssh, connector: dc1, target: { host: h, port: 22, hostKey: "trust me" }, credential: { user: u, privateKey: "/plain/path" } }
  - { name: c, protocol: postgres, connector: dc1, target: { host: h, port: 5432, hostKey: "SHA256:${"A".repeat(43)}" }, allowPortForwarding: true }
`);
    expect(problems).toContain("connections[0].target.hostKey: an ssh connection needs the resource's host key pinned (a known_hosts line or SHA256:… fingerprint); there is no trust on first use");
    expect(problems).toContain("connections[0].credential.user: an ssh connection needs the user the connector logs in as");
    expect(problems.some((p) => p.startsWith("connections[0].credential: an ssh connection needs credential.privateKey or credential.password"))).toBe(true);
    expect(problems.some((p) => p.startsWith("connections[1].target.hostKey: expected a known_hosts line"))).toBe(true);
    expect(problems).toContain('connections[1].credential.privateKey: expected "env:NAME" or "file:PATH"');
    expect(problems).toContain("connections[2].target.hostKey: only ssh connections pin a host key");
    expect(problems).toContain("connections[2].allowPortForwarding: only ssh connections have port forwarding");
    expect(problems.some((p) => p.startsWith("recording.ssh.execOutputBytes"))).toBe(true);
  });

  it("reports YAML syntax errors and duplicate keys", () => {
    expect(problemsOf("listen: [unclosed")[0]).toMatch(/^config: /);
    expect(problemsOf("dataDir: a\ndataDir: b")[0]).toMatch(/^config: .*[Uu]nique|duplicate/i);
  });

  it("requires a secret reference, never a literal password", () => {
    const problems = problemsOf(`
connectors: [ { name: dc1, tokenSha256: ${TOKEN_HASH} } ]
connections:
  - { name: a, protocol: postgres, connector: dc1, target: { host: h, port: 5432 }, credential: { user: u, password: hunter2 } }
`);
    expect(problems).toEqual(['connections[0].credential.password: expected "env:NAME" or "file:PATH"']);
  });

  it("takes target.serverPublicKey (the MySQL server's RSA key file, read by the connector)", () => {
    const config = parseConfigText(`
connectors: [ { name: dc1, tokenSha256: ${TOKEN_HASH} } ]
connections:
  - { name: a, protocol: postgres, connector: dc1, target: { host: h, port: 3306, tls: disable, serverPublicKey: /etc/gatehouse/mysql-rsa.pem } }
`);
    expect(config.connections[0]?.target.serverPublicKey).toBe("/etc/gatehouse/mysql-rsa.pem");
  });

  it("takes identity.oidc with its defaults, and until on allow entries", () => {
    const config = parseConfigText(`
identity:
  oidc: { issuer: "https://idp.example.com/realms/main", audience: gatehouse, nameClaim: client_id }
  disabled: [ old-agent, "ops@example.com" ]
connectors: [ { name: dc1, tokenSha256: ${TOKEN_HASH} } ]
connections:
  - name: app
    protocol: postgres
    connector: dc1
    target: { host: db, port: 5432 }
    allow: [ { identity: "ci@example.com" }, { group: sre, until: 2026-12-31T00:00:00Z } ]
`);
    expect(config.identity).toEqual({
      oidc: {
        issuer: "https://idp.example.com/realms/main",
        audience: "gatehouse",
        nameClaim: "client_id",
        groupsClaim: "groups",
        clockSkewSeconds: 60,
        requestTimeoutMs: 5000,
        jwksRefreshCooldownMs: 30_000,
        jwksMaxAgeMs: 600_000,
      },
      disabled: ["old-agent", "ops@example.com"],
    });
    // YAML 1.2 reads the unquoted date-time as text, which the policy parses.
    expect(config.connections[0]?.allow[1]).toEqual({ group: "sre", until: "2026-12-31T00:00:00Z" });
    expect(parseConfigText("").identity).toEqual({ disabled: [] });
    expect(parseConfigText("identity: { oidc: { issuer: 'http://127.0.0.1:8080', audience: [a, b] } }").identity.oidc?.audience).toEqual(["a", "b"]);
  });

  it("names bad identity settings by path", () => {
    const problems = problemsOf(`
identity:
  oidc: { issuer: "http://idp.example.com", audience: [], clockSkew: 5, clockSkewSeconds: -1 }
  disabled: [ "no spaces" ]
connectors: [ { name: dc1, tokenSha256: ${TOKEN_HASH} } ]
connections:
  - { name: a, protocol: postgres, connector: dc1, target: { host: h, port: 1 }, allow: [ { identity: x, until: "2026-12-31" }, { until: "2026-12-31T00:00:00Z" } ] }
`);
    expect(problems).toEqual(
      expect.arrayContaining([
        "identity.oidc.clockSkew: unknown key",
        "identity.oidc.issuer: expected an https:// issuer URL (http:// only on a loopback host), without query or fragment",
        "identity.oidc.audience: must be at least 1",
        "identity.oidc.clockSkewSeconds: must be at least 0",
        expect.stringMatching(/^identity\.disabled\[0\]: expected an identity name/),
        "connections[0].allow[0].until: expected an ISO 8601 date-time with a zone, like 2026-12-31T00:00:00Z",
        "connections[0].allow[1]: expected an identity or a group",
      ]),
    );
    expect(problemsOf("identity: { oidc: { audience: x } }")).toEqual(["identity.oidc.issuer: required"]);
  });
});

import { z } from "zod";
import { parseHostPort, type HostPort } from "./address.js";

// The gateway's configuration, validated once at start. Every option's
// default lives here and is documented in docs/configuration.md; keep the two
// in step. Unknown keys are errors (strictObject) so a typo never silently
// falls back to a default.

const hostPort = z.string().transform((text, ctx): HostPort => {
  const parsed = parseHostPort(text);
  if (typeof parsed === "string") {
    ctx.addIssue({ code: "custom", message: parsed });
    return z.NEVER;
  }
  return parsed;
});

const name = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, "expected a name of letters, digits, '.', '_' or '-' (at most 63)");

/**
 * An identity's name: what a client gives as its user name, and what an OIDC
 * token's name claim maps to (a client id, a username, an email address).
 * The same rule as `keys create --identity` (the API), and at most 63
 * characters like a Postgres user name.
 */
const identityName = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._@-]{0,62}$/, "expected an identity name of letters, digits, '.', '_', '@' or '-' (at most 63)");

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/i, "expected a SHA-256 as 64 hex digits");

/**
 * "env:NAME" or "file:PATH". A connection's credential is resolved by the connector, never by the
 * gateway; `store.password` (the gateway's own secret) by the gateway at start (store-connection.ts).
 */
const secretRef = z.string().regex(/^(env:[A-Za-z_][A-Za-z0-9_]*|file:.+)$/, 'expected "env:NAME" or "file:PATH"');

const listenSchema = z.strictObject({
  /** HTTP API, connector tunnel (/v1/tunnel) and health checks. */
  api: hostPort.default({ host: "127.0.0.1", port: 8009 }),
  /** Postgres wire protocol listener (the Postgres issue). */
  postgres: hostPort.optional(),
  /** MySQL/MariaDB wire protocol listener (issue 10); usually 127.0.0.1:13306. */
  mysql: hostPort.optional(),
  /** SSH listener (issue 11); usually 127.0.0.1:12222. Clients log in as IDENTITY@CONNECTION. */
  ssh: hostPort.optional(),
  /**
   * Kubernetes API listener (HTTPS; issue 12); usually 127.0.0.1:16443. kubectl's server is
   * https://HOST:PORT/k8s/CONNECTION; `gatehouse kubeconfig` writes the file.
   */
  kubernetes: hostPort.optional(),
  /**
   * Prometheus /metrics on its own plain-HTTP listener (no token), e.g. 0.0.0.0:9109. Left out:
   * the api listener serves /metrics (also without the admin token, like /healthz).
   */
  metrics: hostPort.optional(),
});

const tlsFilesSchema = z.strictObject({
  cert: z.string().min(1),
  key: z.string().min(1),
});

const apiSchema = z.strictObject({
  /** SHA-256 (hex) of the admin token. Left out: one is generated into the data directory at first start. */
  adminTokenSha256: sha256Hex.optional(),
  /** Serve the API (and the tunnel) over TLS with these PEM files. */
  tls: tlsFilesSchema.optional(),
});

const storeSchema = z.strictObject({
  /** postgres:// URL of the store. Left out: the embedded store under <dataDir>/store. */
  url: z.string().regex(/^postgres(ql)?:\/\//, "expected a postgres:// URL").optional(),
  /** The password for store.url when the URL has none: "env:NAME" or "file:PATH". Left out: the URL's, else PGPASSWORD. */
  password: secretRef.optional(),
  /** Connections in the pool to store.url. */
  maxConnections: z.number().int().min(1).max(100).default(10),
  /**
   * Milliseconds between reads of the store's change counter, the fallback for change notices
   * (LISTEN/NOTIFY) missed while the listening connection was down: access keys, SSH keys and
   * identity settings changed through another gateway of the store apply here within it. store.url only.
   */
  changePollMs: z.number().int().min(100).max(60_000).default(2_000),
});

const tunnelSchema = z.strictObject({
  /** Milliseconds between pings on each connector link. */
  pingIntervalMs: z.number().int().min(100).default(10_000),
  /** A link silent this long (ms) is closed as dead. */
  deadAfterMs: z.number().int().min(300).default(30_000),
  /** How long (ms) a connector has to answer a stream open. */
  openTimeoutMs: z.number().int().min(100).default(15_000),
});

const shutdownSchema = z.strictObject({
  /**
   * Milliseconds a stopping gateway (SIGTERM, SIGINT) lets open sessions finish after it stops
   * accepting new ones; then it ends them (Postgres: FATAL 57P01) and exits within about 2 s more.
   */
  graceMs: z.number().int().min(0).max(3_600_000).default(10_000),
});

const postgresSchema = z.strictObject({
  /** PEM files for the Postgres listener's TLS. Left out: a self-signed pair generated into <dataDir>/tls at first start. */
  tls: tlsFilesSchema.optional(),
  /**
   * Which clients must use TLS: "non-loopback" (a client on this machine may
   * use plaintext with SCRAM-SHA-256), "always", or "never" (plaintext SCRAM
   * everywhere; only for networks you trust).
   */
  requireTls: z.enum(["non-loopback", "always", "never"]).default("non-loopback"),
  /**
   * How a client proves itself over TLS. "password": its access key or OIDC token in cleartext
   * inside TLS. "scram": SCRAM-SHA-256-PLUS (channel binding, what psql's channel_binding=require
   * needs) or SCRAM-SHA-256; access keys only, since an OIDC token has no verifier to check it
   * against. Without TLS it is always SCRAM-SHA-256.
   */
  tlsAuth: z.enum(["password", "scram"]).default("password"),
});

const mysqlSchema = z.strictObject({
  /**
   * Which clients must use TLS (the SSL capability, with postgres.tls's certificate): as
   * postgres.requireTls. Without TLS a client proves its access key with mysql_native_password.
   */
  requireTls: z.enum(["non-loopback", "always", "never"]).default("non-loopback"),
  /**
   * The version the greeting shows while the mysql connections' resources disagree or none has
   * been reached yet (see packages/protocols/src/mysql/README.md). Set a MariaDB-style
   * "5.5.5-10.11.0-MariaDB-gatehouse" when the resources are MariaDB.
   */
  serverVersion: z.string().min(1).max(60).regex(/^[^\0]+$/, "no NUL bytes").default("8.0.36-gatehouse"),
});

const sshSchema = z.strictObject({
  /** The SSH listener's host key (a private key file, OpenSSH or PEM). Left out: an Ed25519 key generated at first start at <dataDir>/ssh/ssh_host_ed25519_key. */
  hostKey: z.string().min(1).optional(),
});

const kubernetesSchema = z.strictObject({
  /** PEM files for the Kubernetes listener's TLS. Left out: the Postgres listener's (postgres.tls, or the generated pair). */
  tls: tlsFilesSchema.optional(),
});

const kubernetesRecordingSchema = z.strictObject({
  /** Bytes of a mutating request's body kept in its event (after Secrets are redacted); the rest is marked truncated. */
  bodyBytes: z.number().int().min(0).max(16 * 1024 * 1024).default(64 * 1024),
});

const sshRecordingSchema = z.strictObject({
  /** Bytes of each exec's output (stdout and stderr together) kept in its event; the rest is counted, marked truncated. */
  execOutputBytes: z.number().int().min(0).max(64 * 1024 * 1024).default(1024 * 1024),
  /** Bytes of interactive terminal streams kept per session (both directions). */
  streamBytes: z.number().int().min(0).default(64 * 1024 * 1024),
});

const authThrottleSchema = z.strictObject({
  /** Failed authentications (per client address, and per claimed identity) before attempts are slowed down. */
  freeFailures: z.number().int().min(0).default(3),
  /** The first delay (ms) before answering an attempt past those; it doubles with each further failure. */
  delayMs: z.number().int().min(0).default(100),
  /** The longest delay (ms). */
  maxDelayMs: z.number().int().min(0).default(2_000),
  /** After this many failures, attempts are refused for `lockoutMs` without checking the key. */
  lockoutAfter: z.number().int().min(1).default(20),
  /** How long (ms) a lockout lasts. */
  lockoutMs: z.number().int().min(0).default(60_000),
  /** Failures are forgotten after this long (ms) without another; a successful authentication forgets them at once. */
  forgetAfterMs: z.number().int().min(1).default(900_000),
});

const refusalRecordsSchema = z.strictObject({
  /** Refusals of unauthenticated clients recorded one by one per client address and window; the rest are counted. */
  recordEach: z.number().int().min(1).default(5),
  /** The window (ms): refusals past `recordEach` in it are recorded as one event with their count when it ends. */
  windowMs: z.number().int().min(1).default(10_000),
  /** Characters kept of a name an unauthenticated client claims (identity, connection, application). */
  maxClaimedChars: z.number().int().min(8).max(1024).default(64),
});

/** Limits on what clients can hold or try before (and after) they authenticate. */
const limitsSchema = z.strictObject({
  /** The whole handshake (TLS, startup, authentication) must be done within this (ms); Postgres's authentication_timeout. */
  handshakeTimeoutMs: z.number().int().min(100).default(60_000),
  /** Connections still in their handshake, in total; more are refused with "too many connections". */
  maxHandshakes: z.number().int().min(1).default(1_000),
  /** Connections still in their handshake from one client address. */
  maxHandshakesPerAddress: z.number().int().min(1).default(64),
  /** Open sessions of one identity; 0: no limit. */
  maxSessionsPerIdentity: z.number().int().min(0).default(200),
  authThrottle: authThrottleSchema.default(() => authThrottleSchema.parse({})),
  refusalRecords: refusalRecordsSchema.default(() => refusalRecordsSchema.parse({})),
});

const journalSchema = z.strictObject({
  /** Bytes of journal segment files before new sessions and commands are refused (strict) or dropped (best-effort). */
  maxBytes: z.number().int().min(64 * 1024).default(1024 * 1024 * 1024),
  /** Bytes of each segment file (zero-filled when made; deleted once the store has all of it). */
  segmentBytes: z.number().int().min(16 * 1024).max(1024 * 1024 * 1024).default(16 * 1024 * 1024),
});

const recordingSchema = z.strictObject({
  /** Bytes kept of each bound parameter value (the rest is counted, marked truncated). */
  maxParamBytes: z.number().int().min(0).max(1024 * 1024).default(4096),
  /**
   * strict: a command reaches the resource only once its record is durable in the journal;
   * best-effort: relay first, and record a recording_degraded event when anything is lost.
   */
  mode: z.enum(["strict", "best-effort"]).default("strict"),
  /** The write-ahead journal in <dataDir>/journal. */
  journal: journalSchema.default(() => journalSchema.parse({})),
  /** Days: the gateway signs no retention cut that would remove sessions younger than this. */
  minRetentionDays: z.number().int().min(0).default(30),
  /** SSH: what is kept of exec output and terminal streams. */
  ssh: sshRecordingSchema.default(() => sshRecordingSchema.parse({})),
  /** Kubernetes: what is kept of request bodies (exec streams share recording.ssh.streamBytes). */
  kubernetes: kubernetesRecordingSchema.default(() => kubernetesRecordingSchema.parse({})),
});

const connectorSchema = z.strictObject({
  name,
  /** SHA-256 (hex) of the connector's token; the token itself stays with the connector. */
  tokenSha256: sha256Hex,
});

const allowEntrySchema = z
  .strictObject({
    identity: identityName.optional(),
    group: z.string().min(1).optional(),
    /** The entry stops granting access at this instant (ISO 8601 with a zone: 2026-12-31T00:00:00Z). */
    until: z.iso.datetime({ offset: true, message: "expected an ISO 8601 date-time with a zone, like 2026-12-31T00:00:00Z" }).optional(),
  })
  .refine((entry) => entry.identity !== undefined || entry.group !== undefined, {
    message: "expected an identity or a group",
  });

/** An issuer URL: https, or http on a loopback host (a provider on the gateway's own machine). */
const issuerUrl = z.string().refine(
  (text) => {
    const url = URL.parse(text);
    if (!url || url.search || url.hash) return false;
    return url.protocol === "https:" || (url.protocol === "http:" && /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])$/.test(url.hostname));
  },
  { message: "expected an https:// issuer URL (http:// only on a loopback host), without query or fragment" },
);

const oidcSchema = z.strictObject({
  /** The issuer identifier, exactly as it appears in tokens' `iss`; its discovery document is at ISSUER/.well-known/openid-configuration. */
  issuer: issuerUrl,
  /** The audience (`aud`) a token must carry to be accepted here; a list accepts any of them. */
  audience: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
  /** The claim that names the identity (`sub`, `client_id`, `preferred_username`...). A dotted path reaches into objects. */
  nameClaim: z.string().min(1).default("sub"),
  /** The claim that lists the identity's groups (an array, or a space- or comma-separated string). Missing means no groups. */
  groupsClaim: z.string().min(1).default("groups"),
  /** Seconds of clock difference tolerated when checking `exp` and `nbf`. */
  clockSkewSeconds: z.number().int().min(0).max(600).default(60),
  /** PEM file of the CA that signed the provider's HTTPS certificate, for a provider with a private CA. Left out: the system's CAs. */
  ca: z.string().min(1).optional(),
  /** Timeout (ms) of each request to the provider (discovery, JWKS). */
  requestTimeoutMs: z.number().int().min(100).max(60_000).default(5_000),
  /** A token signed with a key the cached JWKS lacks refetches the JWKS, at most once per this many ms. */
  jwksRefreshCooldownMs: z.number().int().min(0).default(30_000),
  /** The JWKS is refetched when older than this (ms), even without an unknown key. */
  jwksMaxAgeMs: z.number().int().min(1_000).default(600_000),
});

const identitySchema = z.strictObject({
  /** Accept OIDC access tokens (JWTs) wherever a password is accepted. Left out: access keys only. */
  oidc: oidcSchema.optional(),
  /** Identities refused on every connection, however they authenticate. */
  disabled: z.array(identityName).default([]),
});

const targetSchema = z.strictObject({
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535),
  /** Postgres: the database on the resource. */
  database: z.string().min(1).optional(),
  /** Postgres: how the connector secures its connection to the resource. */
  tls: z.enum(["disable", "prefer", "require", "verify-full"]).optional(),
  /** PEM file (on the connector's machine) of the CA that signed the resource's certificate. */
  ca: z.string().min(1).optional(),
  /** MySQL: PEM file (on the connector's machine) of the server's RSA public key, for caching_sha2_password without TLS. */
  serverPublicKey: z.string().min(1).optional(),
  /**
   * SSH (required): the resource's host key the connector pins, a known_hosts line ("[host]:port ssh-ed25519 AAAA…"
   * or "ssh-ed25519 AAAA…") or OpenSSH's fingerprint "SHA256:…". No trust on first use.
   */
  hostKey: z
    .string()
    .regex(/^(SHA256:[A-Za-z0-9+/]{43}=?|(\S+ )?(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh\.com|sk-ecdsa-sha2-nistp256@openssh\.com) [A-Za-z0-9+/]+=*( .*)?)$/, 'expected a known_hosts line ("ssh-ed25519 AAAA…") or a fingerprint "SHA256:…"')
    .optional(),
  /**
   * Kubernetes: a kubeconfig file on the connector's machine whose credentials and CA the connector
   * uses (it still connects to host:port, the address its allow-list checks). Left out: the pod's
   * service account (in-cluster).
   */
  kubeconfig: z.string().min(1).optional(),
  /** Kubernetes: the kubeconfig's context; left out: its current-context. */
  context: z.string().min(1).optional(),
});

const credentialSchema = z.strictObject({
  user: z.string().min(1).optional(),
  password: secretRef.optional(),
  /** SSH: a reference to the private key the connector logs in with ("file:PATH" or "env:NAME"), resolved at the connector. */
  privateKey: secretRef.optional(),
});

const connectionSchema = z.strictObject({
  name,
  protocol: z.enum(["tcp", "postgres", "mysql", "ssh", "kubernetes"]),
  connector: name,
  /** tcp only: the gateway address clients connect to for this connection. */
  listen: hostPort.optional(),
  target: targetSchema,
  credential: credentialSchema.optional(),
  allow: z.array(allowEntrySchema).default([]),
  /** mysql only: let clients run LOAD DATA LOCAL INFILE (their files go to the resource). Default false. */
  allowLocalInfile: z.boolean().default(false),
  /** ssh only: let clients open local port forwards (`ssh -L`, direct-tcpip) from the resource's side. Default true. */
  allowPortForwarding: z.boolean().default(true),
  /**
   * kubernetes only: the connector adds Impersonate-User (the identity) and Impersonate-Group (its
   * groups), so the cluster's RBAC decides as the agent. false: the connector's own account as is.
   */
  impersonate: z.boolean().default(true),
});

export const configSchema = z.strictObject({
    /** Where the embedded store, generated keys and the runtime state live. Relative to the working directory. */
    dataDir: z.string().min(1).default("./data"),
    listen: listenSchema.default(() => listenSchema.parse({})),
    api: apiSchema.default({}),
    store: storeSchema.default(() => storeSchema.parse({})),
    tunnel: tunnelSchema.default(() => tunnelSchema.parse({})),
    postgres: postgresSchema.default(() => postgresSchema.parse({})),
    mysql: mysqlSchema.default(() => mysqlSchema.parse({})),
    ssh: sshSchema.default(() => sshSchema.parse({})),
    kubernetes: kubernetesSchema.default(() => kubernetesSchema.parse({})),
    recording: recordingSchema.default(() => recordingSchema.parse({})),
    shutdown: shutdownSchema.default(() => shutdownSchema.parse({})),
    identity: identitySchema.default(() => identitySchema.parse({})),
    limits: limitsSchema.default(() => limitsSchema.parse({})),
    log: z.strictObject({ level: z.enum(["trace", "debug", "info", "warn", "error", "fatal"]).default("info") }).default({ level: "info" }),
    connectors: z.array(connectorSchema).default([]),
    connections: z.array(connectionSchema).default([]),
  });

export type GatewayConfig = z.output<typeof configSchema>;
export type ConnectionConfig = GatewayConfig["connections"][number];
export type ConnectorConfig = GatewayConfig["connectors"][number];
export type AllowEntry = ConnectionConfig["allow"][number];
export type IdentityConfig = GatewayConfig["identity"];
export type OidcConfig = NonNullable<IdentityConfig["oidc"]>;
export type LimitsConfig = GatewayConfig["limits"];

export interface ConfigProblem {
  path: (string | number)[];
  message: string;
}

/**
 * Checks the cross-references the shape alone cannot express. Runs on the
 * raw input, so these problems are reported together with shape errors
 * rather than only once every shape error is fixed.
 */
export function crossReferenceProblems(raw: unknown): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const root = isRecord(raw) ? raw : {};
  const connectors = Array.isArray(root.connectors) ? root.connectors : [];
  const connections = Array.isArray(root.connections) ? root.connections : [];
  const connectorNames = new Set(connectors.filter(isRecord).map((c) => c.name));
  const store = isRecord(root.store) ? root.store : {};
  if (store.password !== undefined && store.url === undefined) {
    problems.push({ path: ["store", "password"], message: "only used with store.url (the embedded store has no password)" });
  }
  const seen = new Map<unknown, number>();
  connections.forEach((connection, i) => {
    if (!isRecord(connection)) return;
    const earlier = seen.get(connection.name);
    if (earlier !== undefined) problems.push({ path: ["connections", i, "name"], message: `duplicate connection name (also connections[${earlier}])` });
    seen.set(connection.name, i);
    if (typeof connection.connector === "string" && !connectorNames.has(connection.connector)) {
      problems.push({ path: ["connections", i, "connector"], message: `no connector named "${connection.connector}" in connectors` });
    }
    if (connection.protocol === "tcp" && connection.listen === undefined) {
      problems.push({ path: ["connections", i, "listen"], message: "a tcp connection needs its own listen address" });
    }
    if (typeof connection.protocol === "string" && connection.protocol !== "tcp" && connection.listen !== undefined) {
      problems.push({
        path: ["connections", i, "listen"],
        message: `only tcp connections have their own listener; ${connection.protocol} uses listen.${connection.protocol}`,
      });
    }
    if (connection.allowLocalInfile !== undefined && connection.protocol !== "mysql") {
      problems.push({ path: ["connections", i, "allowLocalInfile"], message: "only mysql connections have LOAD DATA LOCAL INFILE" });
    }
    const target = isRecord(connection.target) ? connection.target : {};
    const credential = isRecord(connection.credential) ? connection.credential : {};
    if (connection.protocol !== "kubernetes") {
      for (const key of ["kubeconfig", "context"] as const) {
        if (target[key] !== undefined) problems.push({ path: ["connections", i, "target", key], message: "only kubernetes connections read a kubeconfig" });
      }
      if (connection.impersonate !== undefined) problems.push({ path: ["connections", i, "impersonate"], message: "only kubernetes connections impersonate" });
    } else if (credential.password !== undefined || credential.user !== undefined) {
      problems.push({ path: ["connections", i, "credential"], message: "a kubernetes connection's credential is the connector's kubeconfig (target.kubeconfig) or its service account, not a user or password" });
    }
    if (connection.protocol === "ssh") {
      if (target.hostKey === undefined) {
        problems.push({ path: ["connections", i, "target", "hostKey"], message: "an ssh connection needs the resource's host key pinned (a known_hosts line or SHA256:… fingerprint); there is no trust on first use" });
      }
      if (credential.user === undefined) problems.push({ path: ["connections", i, "credential", "user"], message: "an ssh connection needs the user the connector logs in as" });
      if (credential.password === undefined && credential.privateKey === undefined) {
        problems.push({ path: ["connections", i, "credential"], message: "an ssh connection needs credential.privateKey or credential.password (a file: or env: reference)" });
      }
    } else {
      if (target.hostKey !== undefined) problems.push({ path: ["connections", i, "target", "hostKey"], message: "only ssh connections pin a host key" });
      if (credential.privateKey !== undefined) problems.push({ path: ["connections", i, "credential", "privateKey"], message: "only ssh connections log in with a private key" });
      if (connection.allowPortForwarding !== undefined) problems.push({ path: ["connections", i, "allowPortForwarding"], message: "only ssh connections have port forwarding" });
    }
  });
  return problems;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

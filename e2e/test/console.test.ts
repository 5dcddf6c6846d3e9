import { existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rmSync } from "node:fs";
import { newToken, REPO_ROOT, runCli, startConnectorProcess, startGatewayProcess, type Proc, type RunningGateway } from "../lib/processes.js";
import { request as httpRequest } from "node:http";
import { freePort, startPostgresServer, type PostgresServer, type TestDatabase } from "../lib/postgres-server.js";
import { startPostgresStack, type PostgresStack } from "../lib/postgres-stack.js";
// The gateway's own tests' OpenID provider for people (code + PKCE, login skipped), shared rather than copied.
import { startLoginIssuer, type LoginIssuer } from "../../packages/gateway/test/support/oidc-login-issuer.js";
import { gatewaySpeaksSsh, startSshStack, type SshStack } from "../lib/ssh-stack.js";
import { SshTerminal } from "../lib/ssh-clients.js";
import { startKubeStack, type KubeStack } from "../lib/kube-stack.js";
import { eventually, queryStore, startEvidenceStack } from "./evidence-support.js";

// The web console in a real browser (Debian's chromium, headless, driven by playwright-core)
// against a real gateway process: sessions made by real psql and ssh runs through it. What an
// auditor or an on-call engineer does: sign in, list, filter, open a session, watch a live one, replay
// a shell, and what must never happen: a recorded <script> running, data reaching a signed-out browser.
// Screenshots go to e2e/artifacts/ (gitignored).

const CHROMIUM = process.env.GATEHOUSE_CHROMIUM ?? "/usr/bin/chromium";
const NO_CHROMIUM = `${CHROMIUM} is not installed (scripts/setup.sh --test installs Debian's chromium when run as root)`;
const ARTIFACTS = join(REPO_ROOT, "e2e/artifacts");
const haveChromium = existsSync(CHROMIUM);
const XSS = "<script>alert(1)</script>";
/** Terminal escapes in a statement: set the window title (OSC 0), clear the screen, red text. */
const ESCAPES = "\u001b]0;pwned\u0007\u001b[2J\u001b[31mred";

let stack: PostgresStack | undefined;
let browser: Browser | undefined;

beforeAll(async () => {
  if (!haveChromium) return;
  mkdirSync(ARTIFACTS, { recursive: true });
  stack = await startPostgresStack();
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await stack?.stop();
});

async function shot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(ARTIFACTS, `console-${name}.png`), fullPage: true });
}

/** A fresh browser profile signed in with the admin token through the sign-in form. */
async function signedIn(apiUrl: string, adminToken: string): Promise<{ context: BrowserContext; page: Page; dialogs: string[] }> {
  const context = await browser!.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  const dialogs: string[] = [];
  page.on("dialog", (dialog) => {
    dialogs.push(dialog.message());
    void dialog.dismiss();
  });
  await page.goto(`${apiUrl}/ui/`);
  await page.getByTestId("sign-in-page").waitFor();
  await page.getByTestId("admin-token").fill(adminToken);
  await page.getByTestId("sign-in").click();
  await page.getByTestId("signed-in-as").waitFor();
  return { context, page, dialogs };
}

describe.skipIf(!haveChromium)("the web console in a browser", () => {
  it("a signed-out browser gets no data: the API answers 401 and the page shows the sign-in", async () => {
    const context = await browser!.newContext();
    const page = await context.newPage();
    const api = await page.request.get(`${stack!.gateway.apiUrl}/api/v1/sessions`);
    expect(api.status()).toBe(401);
    await page.goto(`${stack!.gateway.apiUrl}/ui/#/sessions`);
    await page.getByTestId("sign-in-page").waitFor();
    expect(await page.getByTestId("sessions-table").count()).toBe(0);
    // A wrong token is refused on the page too.
    await page.getByTestId("admin-token").fill("not-the-token");
    await page.getByTestId("sign-in").click();
    await expect.poll(() => page.getByTestId("sign-in-error").textContent()).toMatch(/not valid/);
    await shot(page, "signed-out");
    await context.close();
  });

  it("signs in with the admin token, lists sessions, filters by identity, opens a psql session with its timeline and verification; a recorded <script> stays text", async () => {
    const s = stack!;
    // Another identity with its own connection, so the filter has something to leave out.
    const other = await runCli(["keys", "create", "--identity", "someone-else"], { cwd: s.gateway.dir });
    expect(other.code).toBe(0);
    const otherKey = other.stdout.trim();
    const mine = await s.psql([s.conninfo({ application: "console-e2e" }), "-c", "select 'console-e2e-ok' as marker", "-c", `select '${XSS}' as x`, "-c", `select '${ESCAPES}' as y`, "-c", "select * from no_such_table_e2e"]);
    expect(mine.stderr).toMatch(/no_such_table_e2e/);
    const theirs = await s.psql([s.conninfo({ connection: "app-locked", user: "someone-else", password: otherKey, application: "console-e2e-other" }), "-c", "select 1"]);
    expect(theirs.code).toBe(0);
    const refused = await s.psql([s.conninfo({ connection: "app-locked", application: "console-e2e-denied" }), "-c", "select 1"]);
    expect(refused.stderr).toMatch(/not allowed/);
    const recorded = await s.sessionOf("console-e2e");
    await s.sessionOf("console-e2e-other");
    const denied = await s.sessionOf("console-e2e-denied");

    const { context, page, dialogs } = await signedIn(s.gateway.apiUrl, s.gateway.adminToken);
    await page.getByTestId("session-row").first().waitFor();
    const identities = async () => page.getByTestId("session-identity").allTextContents();
    expect(new Set(await identities())).toEqual(new Set(["agent", "someone-else"]));
    await shot(page, "sessions");

    await page.getByTestId("filter-identity").fill("someone-else");
    await page.getByTestId("filter-apply").click();
    await expect.poll(async () => [...new Set(await identities())]).toEqual(["someone-else"]);
    expect(page.url()).toContain("identity=someone-else");
    await shot(page, "sessions-filtered");

    await page.goto(`${s.gateway.apiUrl}/ui/#/session/${recorded.session.id}`);
    await page.getByTestId("timeline").waitFor();
    await expect.poll(() => page.getByTestId("verify-result").textContent()).toMatch(/Hash chain and seal verify/);
    const facts = await page.getByTestId("session-facts").textContent();
    expect(facts).toContain("agent");
    expect(facts).toContain("access key");
    expect(facts).toContain("console-e2e");
    const commands = await page.getByTestId("event-command").allTextContents();
    expect(commands).toContain("select 'console-e2e-ok' as marker");
    // The statement with a script tag is shown as the text it was, and nothing ran.
    expect(commands).toContain(`select '${XSS}' as x`);
    expect(await page.locator("#main script").count()).toBe(0);
    // Terminal escapes are characters on the page, not instructions: the title and styles stay.
    // (shown as their control pictures, ␛ and ␇, so an auditor sees them)
    expect(commands).toContain("select '␛]0;pwned␇␛[2J␛[31mred' as y");
    expect(await page.title()).toBe("gatehouse console");
    // The failed statement stands out, with its SQLSTATE.
    const failed = page.locator('tr.failed[data-testid="event-row"]');
    await expect.poll(() => failed.count()).toBeGreaterThan(0);
    expect(await failed.first().textContent()).toContain("42P01");
    await shot(page, "session");
    expect(dialogs).toEqual([]);

    // A refused attempt stands out: a red row with its reason.
    await page.goto(`${s.gateway.apiUrl}/ui/#/session/${denied.session.id}`);
    const refusedRow = page.locator('tr.refused[data-testid="event-row"]');
    await refusedRow.first().waitFor();
    expect(await refusedRow.first().textContent()).toMatch(/denied[\s\S]*not allowed/);
    await shot(page, "session-denied");

    // The search page finds the statement across sessions, still as text.
    await page.goto(`${s.gateway.apiUrl}/ui/#/search?q=${encodeURIComponent("alert(1)")}`);
    await page.getByTestId("search-body").locator("tr").first().waitFor();
    expect(await page.getByTestId("search-body").textContent()).toContain(XSS);
    expect(await page.locator("#main script").count()).toBe(0);
    await page.goto(`${s.gateway.apiUrl}/ui/#/connectors`);
    await page.getByTestId("connector-row").first().waitFor();
    expect(await page.getByTestId("connectors-body").textContent()).toContain("dc1");
    await shot(page, "connectors");
    expect(dialogs).toEqual([]);

    // Signing out ends it: the page shows the sign-in and the API refuses the old cookie.
    await page.getByTestId("sign-out").click();
    await page.getByTestId("sign-in-page").waitFor();
    expect((await page.request.get(`${s.gateway.apiUrl}/api/v1/sessions`)).status()).toBe(401);
    await context.close();
  });

  it("says plainly when a session's record does not verify: an event edited in the store", async () => {
    // A gateway on a Postgres store of its own, so the test can edit the record as the store's owner could.
    const evidence = await startEvidenceStack({ storeDatabase: true });
    try {
      const client = await evidence.client("console-tamper");
      await client.query("select 1 as honest");
      await client.query("select 2 as also_honest");
      await client.end();
      const recorded = await eventually("the session sealed in the store", async () => {
        const rows = await queryStore<{ id: string }>(evidence.storeUrl!, "select id from sessions where client_application = 'console-tamper' and ended_at is not null");
        return rows[0]?.id;
      });
      const [edited] = await queryStore<{ seq: string }>(evidence.storeUrl!, "select seq from events where session_id = $1 and command = 'select 1 as honest'", [recorded]);
      await queryStore(evidence.storeUrl!, "update events set command = 'select 1 as harmless' where session_id = $1 and seq = $2", [recorded, edited!.seq]);

      const { context, page } = await signedIn(evidence.gateway.apiUrl, evidence.gateway.adminToken);
      await page.goto(`${evidence.gateway.apiUrl}/ui/#/session/${recorded}`);
      await page.getByTestId("timeline").waitFor();
      await expect.poll(() => page.getByTestId("verify-result").textContent()).toBe("This record does NOT verify.");
      const box = await page.getByTestId("verify-result").locator("..").textContent();
      expect(box).toContain(`edited at event ${edited!.seq}`);
      expect(await page.getByTestId("verify-result").locator("..").getAttribute("class")).toContain("bad");
      // The row where the record breaks is marked in the timeline.
      expect(await page.locator(`tr[data-testid="event-row"][data-seq="${edited!.seq}"]`).getAttribute("class")).toContain("unverified");
      // The timeline shows what the store holds now; the box says it is not what was recorded.
      expect(await page.getByTestId("event-command").allTextContents()).toContain("select 1 as harmless");
      await shot(page, "session-not-verified");
      await context.close();
    } finally {
      await evidence.stop();
    }
  });

  it("shows a new statement of an open psql session within a second, without reloading", async () => {
    const s = stack!;
    const psql = s.spawnClient("psql", ["-X", "-q", s.conninfo({ application: "console-e2e-live" })]);
    psql.stdout!.resume();
    psql.stderr!.resume();
    try {
      psql.stdin!.write("select 'live-first';\n");
      let open: { id: string } | undefined;
      const deadline = Date.now() + 20_000;
      while (!open) {
        const { sessions } = await s.api<{ sessions: Array<{ id: string; clientApplication: string | null; endedAt: string | null; eventCount: number }> }>("/api/v1/sessions?limit=50");
        open = sessions.find((x) => x.clientApplication === "console-e2e-live" && x.endedAt === null && x.eventCount >= 2);
        if (!open && Date.now() > deadline) throw new Error("the open psql session did not reach the store");
        if (!open) await new Promise((r) => setTimeout(r, 100));
      }
      const { context, page } = await signedIn(s.gateway.apiUrl, s.gateway.adminToken);
      await page.goto(`${s.gateway.apiUrl}/ui/#/session/${open.id}`);
      await expect.poll(() => page.getByTestId("live-state").textContent()).toBe("live");
      await expect.poll(() => page.getByTestId("event-command").allTextContents()).toContain("select 'live-first';");
      // Let the live tail's stream open before the statement goes.
      await page.waitForTimeout(300);
      const sent = Date.now();
      psql.stdin!.write("select 'live-second-statement';\n");
      await page.getByText("select 'live-second-statement';").waitFor({ timeout: 5_000 });
      const took = Date.now() - sent;
      console.log(`live tail: the statement showed ${took} ms after it was sent`);
      await shot(page, "live-tail");
      expect(took).toBeLessThan(1_000);
      psql.stdin!.end("\\q\n");
      await expect.poll(() => page.getByTestId("live-state").textContent(), { timeout: 10_000 }).toBe("ended");
      await context.close();
    } finally {
      psql.kill();
    }
  });
});

describe.skipIf(!haveChromium)("replay of a terminal stream", () => {
  let ssh: SshStack | undefined;
  afterAll(async () => {
    await ssh?.stop();
  });

  it("plays an ssh shell session in xterm.js with play, pause and seek, and offers its exports", async (ctx) => {
    if (!(await gatewaySpeaksSsh())) return ctx.skip();
    ssh = await startSshStack();
    const terminal = new SshTerminal(ssh.endpoint(), { cols: 100, rows: 30 });
    const marker = `replay-${Date.now().toString(36)}`;
    try {
      await terminal.waitFor(/[$#] ?$/m);
      terminal.type(`echo hello-${marker}`);
      await terminal.waitFor(new RegExp(`^hello-${marker}`, "m"));
      await new Promise((r) => setTimeout(r, 300));
      terminal.type(`printf '\\033[31m%s\\033[0m\\n' red-${marker}`);
      await terminal.waitFor(new RegExp(`^red-${marker}`, "m"));
      terminal.type("exit");
      await terminal.waitForExit();
    } finally {
      terminal.close();
    }
    const recorded = await ssh.sessionWith(`hello-${marker}`);

    const { context, page, dialogs } = await signedIn(ssh.gateway.apiUrl, ssh.gateway.adminToken);
    await page.goto(`${ssh.gateway.apiUrl}/ui/#/session/${recorded.session.id}`);
    await page.getByTestId("stream").first().waitFor();
    await expect.poll(() => page.getByTestId("verify-result").textContent()).toMatch(/Hash chain and seal verify/);
    const screen = page.getByTestId("replay-terminal").first();
    await page.getByTestId("replay-play").first().click();
    await expect.poll(() => screen.textContent(), { timeout: 15_000 }).toContain(`hello-${marker}`);
    // Pause (the cast is short: it may have played to its end already, which pauses it too).
    const button = page.getByTestId("replay-play").first();
    if ((await button.textContent()) === "Pause") await button.click();
    await expect.poll(() => button.textContent()).toBe("Play");
    // Seek back to the start: the screen is redrawn from nothing; then to the end.
    const seek = page.getByTestId("replay-seek").first();
    await seek.evaluate((el) => {
      const input = el as unknown as { value: string; max: string; dispatchEvent(event: Event): boolean };
      input.value = "0";
      input.dispatchEvent(new Event("input", { bubbles: true }));
    });
    await expect.poll(() => screen.textContent()).not.toContain(`hello-${marker}`);
    await seek.evaluate((el) => {
      const input = el as unknown as { value: string; max: string; dispatchEvent(event: Event): boolean };
      input.value = input.max;
      input.dispatchEvent(new Event("input", { bubbles: true }));
    });
    await expect.poll(() => screen.textContent()).toContain(`red-${marker}`);
    await shot(page, "replay");

    // The export links download the recorded stream (the existing export routes), with the cookie.
    const cast = page.getByTestId("export-asciicast").first();
    const castResponse = await page.request.get(new URL((await cast.getAttribute("href"))!, ssh.gateway.apiUrl).href);
    expect(castResponse.status()).toBe(200);
    expect(await castResponse.text()).toContain(`hello-${marker}`);
    const jsonl = page.getByTestId("export-jsonl").first();
    const jsonlResponse = await page.request.get(new URL((await jsonl.getAttribute("href"))!, ssh.gateway.apiUrl).href);
    expect(jsonlResponse.status()).toBe(200);
    expect((await jsonlResponse.text()).split("\n")[0]).toContain("gatehouse-stream-v1");
    expect(dialogs).toEqual([]);
    await context.close();
  });
});

describe.skipIf(!haveChromium)("replay of a kubectl exec stream", () => {
  let kube: KubeStack | undefined;
  afterAll(async () => {
    await kube?.stop();
  });

  it("plays what a kubectl exec printed, from the recorded stream, and says how it ended", async () => {
    kube = await startKubeStack();
    const marker = `kube-replay-${Date.now().toString(36)}`;
    const run = await kube.kubectl(["exec", "-i", "web-1", "-n", "default", "--", "sh", "-c", `read x; echo ${marker}-$x; exit 4`], { input: "ping\n" });
    expect(run.stdout).toContain(`${marker}-ping`);
    expect(run.code).toBe(4);
    const recorded = await kube.sessionWith(marker);

    const { context, page, dialogs } = await signedIn(kube.gateway.apiUrl, kube.gateway.adminToken);
    await page.goto(`${kube.gateway.apiUrl}/ui/#/session/${recorded.session.id}`);
    await page.getByTestId("stream").first().waitFor();
    await expect.poll(() => page.getByTestId("verify-result").textContent()).toMatch(/Hash chain and seal verify/);
    // The exec's row: its exit code stands out as a failure.
    const execRow = page.locator('tr[data-testid="event-row"][data-kind="exec"]');
    expect(await execRow.first().textContent()).toContain("exit 4");
    const screen = page.getByTestId("replay-terminal").first();
    await page.getByTestId("replay-play").first().click();
    await expect.poll(() => screen.textContent(), { timeout: 15_000 }).toContain(`${marker}-ping`);
    await shot(page, "replay-kubectl-exec");
    expect(dialogs).toEqual([]);
    await context.close();
  });
});

describe.skipIf(!haveChromium)("sign-in with the identity provider", () => {
  let issuer: LoginIssuer | undefined;
  let gateway: RunningGateway | undefined;
  let connector: Proc | undefined;
  afterAll(async () => {
    await connector?.stop();
    await gateway?.proc.stop();
    if (gateway) rmSync(gateway.dir, { recursive: true, force: true });
    await issuer?.close();
  });

  it("a person signs in through the provider (code + PKCE) in the browser and sees only their own sessions", async () => {
    const s = stack!;
    issuer = await startLoginIssuer({ alice: { groups: ["dev"] } });
    // The redirect URI names the gateway's address, so it listens on a port chosen first.
    const apiPort = await freePort();
    const redirectUri = `http://127.0.0.1:${apiPort}/ui/auth/callback`;
    issuer.setRedirectUri(redirectUri);
    const dc1 = newToken();
    const credential = { user: s.server.user, ...(s.server.password === null ? {} : { password: "env:GATEHOUSE_E2E_PG_PASSWORD" }) };
    gateway = await startGatewayProcess({
      listen: { api: `127.0.0.1:${apiPort}`, postgres: "127.0.0.1:0" },
      identity: { oidc: { issuer: issuer.issuer, audience: "gatehouse", ca: issuer.caFile } },
      console: { auditors: ["auditors"], oidc: { clientId: issuer.clientId, redirectUri, scopes: ["openid", "groups"] } },
      connectors: [{ name: "dc1", tokenSha256: dc1.sha256 }],
      connections: [{ name: "app", protocol: "postgres", connector: "dc1", target: { host: s.server.host, port: s.server.port, database: s.db.name, tls: "disable" }, credential, allow: [{ identity: "alice" }, { identity: "bob" }] }],
    });
    connector = await startConnectorProcess({ gateway: gateway.apiUrl, name: "dc1", token: dc1.token, allow: `${s.server.host}:${s.server.port}`, ...(s.server.password === null ? {} : { extra: { GATEHOUSE_E2E_PG_PASSWORD: s.server.password } }) });
    await gateway.proc.waitFor((l) => l.msg === "connector connected");
    const listen = gateway.proc.lines.find((l) => l.msg === "gateway started")!.postgres as { host: string; port: number };
    const sessionIds: Record<string, string> = {};
    for (const who of ["alice", "bob"]) {
      const created = await runCli(["keys", "create", "--identity", who], { cwd: gateway.dir });
      expect(created.code).toBe(0);
      const ran = await s.psql([`host=${listen.host} port=${listen.port} user=${who} dbname=app sslmode=require password=${created.stdout.trim()} application_name=oidc-e2e-${who}`, "-c", `select '${who}-statement'`]);
      expect(ran.code).toBe(0);
      const deadline = Date.now() + 20_000;
      while (!sessionIds[who]) {
        const response = await fetch(`${gateway.apiUrl}/api/v1/sessions?identity=${who}`, { headers: { Authorization: `Bearer ${gateway.adminToken}` } });
        const { sessions } = (await response.json()) as { sessions: Array<{ id: string; endedAt: string | null }> };
        const ended = sessions.find((x) => x.endedAt !== null);
        if (ended) sessionIds[who] = ended.id;
        else if (Date.now() > deadline) throw new Error(`${who}'s session did not reach the store`);
        else await new Promise((r) => setTimeout(r, 100));
      }
    }

    // The provider's certificate is self-signed (the gateway trusts it through identity.oidc.ca; the browser is told to).
    const context = await browser!.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1400, height: 900 } });
    const page = await context.newPage();
    await page.goto(`${gateway.apiUrl}/ui/`);
    await page.getByTestId("oidc-sign-in").click();
    await page.getByTestId("signed-in-as").waitFor({ timeout: 20_000 });
    expect(await page.getByTestId("signed-in-as").textContent()).toMatch(/alice\s*own sessions/);
    const cookies = await context.cookies(gateway.apiUrl);
    expect(cookies.find((c) => c.name === "gatehouse_console")).toMatchObject({ httpOnly: true, sameSite: "Strict" });
    await page.getByTestId("session-row").first().waitFor();
    expect(await page.getByTestId("session-identity").allTextContents()).toEqual(["alice"]);
    await shot(page, "oidc-own-sessions");
    // Bob's session by its id: the gateway answers as if it did not exist.
    await page.goto(`${gateway.apiUrl}/ui/#/session/${sessionIds.bob}`);
    await page.getByRole("alert").waitFor();
    expect(await page.getByRole("alert").textContent()).toContain(`no session ${sessionIds.bob}`);
    expect(await page.locator("body").textContent()).not.toContain("bob-statement");
    await page.goto(`${gateway.apiUrl}/ui/#/session/${sessionIds.alice}`);
    await expect.poll(() => page.getByTestId("event-command").allTextContents()).toContain("select 'alice-statement'");
    await context.close();
  });
});

describe("console sign-ins with gateway --workers 2", () => {
  let server: PostgresServer | undefined;
  let store: TestDatabase | undefined;
  let gateway: RunningGateway | undefined;
  afterAll(async () => {
    await gateway?.proc.stop();
    if (gateway) rmSync(gateway.dir, { recursive: true, force: true });
    await store?.drop();
    await server?.stop();
  });

  /** A GET on a connection of its own: node:cluster hands each new connection to the next worker. */
  const getOnNewConnection = (url: string, cookie: string) =>
    new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest(url, { agent: false, headers: { cookie, connection: "close" } }, (res) => {
        let body = "";
        res.setEncoding("utf8").on("data", (t: string) => (body += t));
        res.once("end", () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.once("error", reject);
      req.end();
    });

  it("a sign-in made on one worker is good on every worker, and a sign-out ends it on every worker (both shared in DATA_DIR)", async () => {
    server = await startPostgresServer();
    store = await server.createDatabase({ empty: true });
    gateway = await startGatewayProcess({ listen: { api: "127.0.0.1:0" }, store: { url: server.url(store.name) } }, undefined, 90_000, ["--workers", "2"]);
    const signIn = await fetch(`${gateway.apiUrl}/ui/auth/token`, { method: "POST", headers: { "content-type": "application/json", "x-gatehouse-console": "1" }, body: JSON.stringify({ token: gateway.adminToken }) });
    expect(signIn.status).toBe(200);
    const cookie = signIn.headers.getSetCookie().find((c) => c.startsWith("gatehouse_console="))!.split(";")[0]!;
    for (let i = 0; i < 8; i++) {
      const me = await getOnNewConnection(`${gateway.apiUrl}/ui/auth/me`, cookie);
      expect(JSON.parse(me.body), `request ${i}`).toMatchObject({ me: { name: "admin" } });
      expect((await getOnNewConnection(`${gateway.apiUrl}/api/v1/sessions`, cookie)).status, `request ${i}`).toBe(200);
    }
    // A sign-out on whichever worker answers ends it on every worker: a kept copy of the cookie is refused.
    const out = await fetch(`${gateway.apiUrl}/ui/auth/sign-out`, { method: "POST", headers: { cookie, "x-gatehouse-console": "1" } });
    expect(out.status).toBeLessThan(300);
    for (let i = 0; i < 8; i++) {
      expect((await getOnNewConnection(`${gateway.apiUrl}/api/v1/sessions`, cookie)).status, `request ${i} after sign-out`).toBe(401);
    }
  });
});

describe.skipIf(haveChromium)("the web console in a browser", () => {
  it.skip(NO_CHROMIUM, () => undefined);
});

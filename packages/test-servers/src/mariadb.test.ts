import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { canStartThrowawayMariadb, createMariadbTestAccounts, findMariadb, startThrowawayMariadb, type MariadbServer } from "./mariadb.js";

const run = promisify(execFile);

describe.skipIf(!canStartThrowawayMariadb())("a throwaway MariaDB with TLS", () => {
  let server: MariadbServer;
  beforeAll(async () => {
    server = await startThrowawayMariadb({ tls: true });
  }, 120_000);
  afterAll(() => server?.stop());

  it("logs a real password user in over TLS, the certificate verified against caFile for 127.0.0.1", async () => {
    expect(server).toMatchObject({ source: "throwaway", tls: true, user: "gatehouse" });
    expect(server.caFile).toMatch(/cert\.pem$/);
    const { stdout } = await run(
      "mariadb",
      ["--no-defaults", "-h", server.host, "-P", String(server.port), "-u", server.user, "--ssl", `--ssl-ca=${server.caFile}`, "--ssl-verify-server-cert", "-N", "-B", "-e", "SHOW STATUS LIKE 'Ssl_version'"],
      { env: { PATH: process.env.PATH!, MYSQL_PWD: server.password! } },
    );
    expect(stdout).toMatch(/^Ssl_version\tTLSv1\.[23]\n$/);
    await expect(run("mariadb", ["--no-defaults", "-h", server.host, "-P", String(server.port), "-u", server.user, "-pwrong", "-e", "SELECT 1"])).rejects.toMatchObject({
      stderr: expect.stringMatching(/ERROR 1045 \(28000\)/),
    });
  });

  it("findMariadb({ tls: true }) gives a server with TLS whatever the local one has", async () => {
    const found = await findMariadb({ tls: true });
    try {
      expect(found.tls).toBe(true);
      expect(found.sql("SELECT @@have_ssl")).toBe("YES");
    } finally {
      await found.stop();
    }
  }, 120_000);

  it("test accounts: a native user who can log in to its database, an ed25519 one, all gone after drop()", async () => {
    const accounts = createMariadbTestAccounts(server, "gh_ts");
    const login = (user: string, password: string, database?: string) =>
      run("mariadb", ["--no-defaults", "-h", server.host, "-P", String(server.port), "-u", user, ...(database ? ["-D", database] : []), "-N", "-e", "SELECT CURRENT_USER()"], {
        env: { PATH: process.env.PATH!, MYSQL_PWD: password },
      });
    expect((await login(accounts.native.user, accounts.native.password, accounts.database)).stdout.trim()).toBe(`${accounts.native.user}@%`);
    expect(accounts.ed25519).not.toBeNull();
    expect((await login(accounts.ed25519!.user, accounts.ed25519!.password)).stdout.trim()).toBe(`${accounts.ed25519!.user}@%`);
    accounts.drop();
    expect(server.sql(`SELECT COUNT(*) FROM mysql.user WHERE user LIKE 'gh\\_ts\\_%'`)).toBe("0");
    await expect(login(accounts.native.user, accounts.native.password)).rejects.toMatchObject({ stderr: expect.stringMatching(/ERROR 1045/) });
  });
});

import { once } from "node:events";
import { createServer, type AddressInfo, type Server } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { pino } from "pino";
import type { OpenStream } from "@gatehouse/proto";
import { encodeDialRequest } from "@gatehouse/protocols/postgres";
import { ConnectorError } from "../../errors.js";
import { dialPostgres } from "./postgres-dialer.js";

// The startup parameters the gateway forwards are not trusted to be well formed: a NUL byte would let them
// name another role than the connection's credential (the server takes the last `user`).

const servers: Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

describe("dialPostgres with forwarded startup parameters", () => {
  it("refuses a parameter holding a NUL byte with PROTOCOL_ERROR, before connecting to the server", async () => {
    let connections = 0;
    const server = createServer((socket) => {
      connections++;
      socket.destroy();
    });
    servers.push(server);
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const { port } = server.address() as AddressInfo;

    const open = {
      protocol: "postgres",
      connection: "app",
      target: { host: "127.0.0.1", port, options: { tls: "disable" } },
      credential: { user: "app_ro" },
      params: encodeDialRequest({ startup: { application_name: "psql\0user\0postgres" } }),
    } as unknown as OpenStream;
    const ctx = { password: null, logger: pino({ level: "silent" }), signal: new AbortController().signal, timeoutMs: 2000 };

    const error = await dialPostgres(open, ctx).then(
      () => null,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ConnectorError);
    expect(error).toMatchObject({ code: "PROTOCOL_ERROR" });
    expect((error as Error).message).toMatch(/startup parameter "application_name" contains a NUL byte/);
    expect(connections).toBe(0);
  });
});

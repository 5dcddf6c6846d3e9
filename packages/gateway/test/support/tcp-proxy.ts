import { createServer, connect, type Socket } from "node:net";

/**
 * A TCP proxy on 127.0.0.1:0 that can be cut like a blackholed network: `blackhole()` stops
 * forwarding in both directions but keeps every socket open (nothing is refused or reset, so a
 * client learns nothing until its own timeouts), and connections made meanwhile are accepted and
 * held. `restore()` forwards again, what was held included. `cut()` is a server that is down:
 * every connection is reset, new ones too, so a client fails at once, until `restore()`.
 */
export interface TcpProxy {
  port: number;
  blackhole(): void;
  cut(): void;
  restore(): void;
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  let blackholed = false;
  let cut = false;
  const links = new Set<{ client: Socket; upstream: Socket | undefined }>();
  const forward = (link: { client: Socket; upstream: Socket | undefined }) => {
    const upstream = (link.upstream ??= connect(target.port, target.host));
    upstream.on("error", () => link.client.destroy());
    upstream.on("close", () => link.client.destroy());
    link.client.on("close", () => upstream.destroy());
    link.client.pipe(upstream);
    upstream.pipe(link.client);
  };
  const server = createServer((client) => {
    client.on("error", () => undefined);
    if (cut) {
      client.resetAndDestroy();
      return;
    }
    const link = { client, upstream: undefined };
    links.add(link);
    client.on("close", () => links.delete(link));
    if (blackholed) client.pause();
    else forward(link);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as { port: number }).port,
    blackhole() {
      blackholed = true;
      for (const { client, upstream } of links) {
        client.unpipe();
        client.pause();
        upstream?.unpipe();
        upstream?.pause();
      }
    },
    cut() {
      cut = true;
      for (const { client, upstream } of links) {
        client.resetAndDestroy();
        upstream?.destroy();
      }
    },
    restore() {
      cut = false;
      blackholed = false;
      for (const link of links) {
        if (!link.upstream) {
          forward(link);
          continue;
        }
        link.client.pipe(link.upstream);
        link.upstream.pipe(link.client);
      }
    },
    async close() {
      for (const { client, upstream } of links) {
        client.destroy();
        upstream?.destroy();
      }
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

import { createServer, type Server } from "node:net";

/** A real TCP echo server on a free loopback port. */
export async function startEchoServer(): Promise<{ port: number; server: Server; close: () => Promise<void> }> {
  const server = createServer((socket) => {
    socket.on("error", () => undefined);
    socket.pipe(socket);
  });
  await new Promise<void>((res) => server.listen(0, "127.0.0.1", res));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    server,
    close: () =>
      new Promise<void>((res) => {
        server.close(() => res());
        server.unref();
      }),
  };
}

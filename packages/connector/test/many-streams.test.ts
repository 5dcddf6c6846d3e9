import { afterEach, expect, it } from "vitest";
import { startConnector } from "../src/index.js";
import { Cleanup, EchoServer, FakeGateway, LogCapture, readAll, tcpOpen, testSettings } from "./helpers.js";

const TOKEN = "many-streams-token";
const cleanup = new Cleanup();
afterEach(() => cleanup.run());

it("opens 30 streams at once without a MaxListenersExceededWarning", async () => {
  const warnings: Error[] = [];
  const onWarning = (warning: Error) => warnings.push(warning);
  process.on("warning", onWarning);
  cleanup.add(() => void process.off("warning", onWarning));
  const gateway = await FakeGateway.start(TOKEN);
  cleanup.add(() => gateway.close());
  const echo = await EchoServer.start();
  cleanup.add(() => echo.close());
  const connector = startConnector(testSettings(gateway, `127.0.0.1:${echo.port}`), { logger: new LogCapture().logger });
  cleanup.add(() => connector.stop());
  const link = await gateway.link();

  const echoed = await Promise.all(
    Array.from({ length: 30 }, async (_, i) => {
      const { stream } = await link.mux.open(tcpOpen({ host: "127.0.0.1", port: echo.port }, { sessionId: `s${i}` }));
      const back = readAll(stream);
      stream.end(`stream ${i}`);
      return (await back).toString();
    }),
  );
  expect(echoed).toEqual(Array.from({ length: 30 }, (_, i) => `stream ${i}`));
  // Warnings are emitted on the next tick.
  await new Promise((resolve) => setImmediate(resolve));
  expect(warnings.filter((w) => w.name === "MaxListenersExceededWarning").map((w) => w.message)).toEqual([]);
});

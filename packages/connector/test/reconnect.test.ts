import { afterEach, expect, it } from "vitest";
import { Backoff, startConnector } from "../src/index.js";
import { Cleanup, delay, FakeGateway, LogCapture, testSettings } from "./helpers.js";

const TOKEN = "reconnect-token";
const cleanup = new Cleanup();
afterEach(() => cleanup.run());

it("comes back within about a second of a gateway whose outage let the backoff grow to seconds", async () => {
  const first = await FakeGateway.start(TOKEN);
  const port = first.port;
  // The top of every jittered range: the wait the backoff alone would give is as long as it gets.
  const backoff = new Backoff({ baseMs: 250, capMs: 30_000, random: () => 0.999 });
  const logs = new LogCapture();
  const connector = startConnector(testSettings(first, "127.0.0.1:1"), { logger: logs.logger, backoff });
  cleanup.add(() => connector.stop());
  await first.link();
  await first.close();

  // Waits of 0.25, 0.5, 1 and 2 s between refused dials; the one now under way is 4 s.
  while (backoff.attempt < 5) await delay(50);
  const second = await FakeGateway.start(TOKEN, { port });
  cleanup.add(() => second.close());
  const backAt = performance.now();
  await second.link();
  expect(performance.now() - backAt).toBeLessThan(1_500);
  expect(logs.lines.some((l) => l.msg === "the gateway answers again; dialing now")).toBe(true);
});

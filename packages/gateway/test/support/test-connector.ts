import { parseConnectorSettings, startConnector, type Connector } from "@gatehouse/connector";
import pino from "pino";

/**
 * A real connector in the test's process, named dc1, dialing `gateway` with `token` and allowed to
 * reach `allow` ("host:port,…"); resolves once the gateway's log (`logs`) says it connected.
 */
export async function startTestConnector(gatewayApiUrl: string, token: string, allow: string, logs: ReadonlyArray<Record<string, unknown>>): Promise<Connector> {
  const settings = parseConnectorSettings(["--gateway", gatewayApiUrl.replace(/^http/, "ws"), "--name", "dc1", "--token", token, "--allow", allow], {});
  const connector = startConnector(settings, { logger: pino({ level: "silent" }) });
  const deadline = Date.now() + 10_000;
  while (!logs.some((l) => l.msg === "connector connected")) {
    if (Date.now() > deadline) {
      await connector.stop();
      throw new Error("the connector did not connect");
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return connector;
}

// CPU one command costs the gateway's metrics on the hot path: two performance.now() around the
// relay's inspector (sessions/command-timing.ts), the commands counter and the added-latency
// histogram, on children cached per protocol. Not a test: a measurement (docs/operations.md).
//
//   pnpm --filter @gatehouse/gateway build && node packages/gateway/bench/metrics-cost.mjs
import { GatewayMetrics } from "../dist/metrics/gateway-metrics.js";

const metrics = new GatewayMetrics({ processMetrics: false });
const postgres = metrics.forProtocol("postgres");
const N = 2_000_000;
for (let round = 0; round < 3; round++) {
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < N; i++) {
    const arrived = performance.now();
    postgres.command("ok");
    postgres.addedLatency((performance.now() - arrived) / 1000);
  }
  const cpu = process.cpuUsage(cpu0);
  console.log(`metrics per command: ${(((cpu.user + cpu.system) * 1000) / N).toFixed(0)} ns CPU`);
}

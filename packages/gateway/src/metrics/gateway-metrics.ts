import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { CommandOutcome, ProtocolMetrics, SessionMetrics } from "./session-metrics.js";

/**
 * Buckets for the time the gateway adds to a command (seconds): a relayed statement costs tens of
 * µs in best-effort mode and one journal fdatasync (≈ 0.1–5 ms on common disks) in strict mode; a
 * slow or failing disk shows up in the upper buckets.
 */
const ADDED_LATENCY_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
/** Buckets for one journal fdatasync (seconds): NVMe ≈ 50 µs, SSD ≈ 0.5–2 ms, network disks 5–50 ms. */
const FSYNC_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

/**
 * The metrics a gateway updates as things happen: sessions, commands, refusals, journal syncs.
 * State the gateway already holds (journal backlog, links, listeners) is not here but read at
 * scrape time (state-gauges.ts), so the hot path does nothing for it.
 *
 * One Registry per gateway (never prom-client's global one), so two gateways in one process (the
 * tests) keep their own numbers. Children per protocol are made once and cached: a command costs
 * one counter increment and one histogram observation, no label lookup.
 */
export class GatewayMetrics implements SessionMetrics {
  readonly registry = new Registry();
  private readonly sessionsStarted: Counter<"protocol">;
  private readonly sessionsEnded: Counter<"protocol" | "end_reason">;
  private readonly commands: Counter<"protocol" | "outcome">;
  private readonly addedLatency: Histogram<"protocol">;
  private readonly authRefusals: Counter<"protocol" | "reason">;
  private readonly fsync: Histogram;
  private readonly byProtocol = new Map<string, ProtocolMetrics>();

  constructor(options: { processMetrics?: boolean } = {}) {
    const registers = [this.registry];
    this.sessionsStarted = new Counter({
      name: "gatehouse_sessions_started_total",
      help: "Sessions opened (recorded), by protocol; refused attempts are recorded as sessions too and count here",
      labelNames: ["protocol"],
      registers,
    });
    this.sessionsEnded = new Counter({
      name: "gatehouse_sessions_ended_total",
      help: "Sessions closed and sealed, by protocol and end reason (client_closed, resource_closed, connector_lost, auth_failed, denied, connector_unavailable, recording_unavailable, gateway_shutdown...)",
      labelNames: ["protocol", "end_reason"],
      registers,
    });
    this.commands = new Counter({
      name: "gatehouse_commands_total",
      help: "Commands recorded with their outcome (statements, SSH execs and mutating SFTP operations, Kubernetes API requests), by protocol and outcome (ok, error, unfinished)",
      labelNames: ["protocol", "outcome"],
      registers,
    });
    this.addedLatency = new Histogram({
      name: "gatehouse_command_added_latency_seconds",
      help: "Time the gateway holds a command: from the client chunk that completes its request arriving to that chunk being handed to the tunnel toward the connector (parsing, journaling, and in strict mode the wait for the journal's fdatasync)",
      labelNames: ["protocol"],
      buckets: ADDED_LATENCY_BUCKETS,
      registers,
    });
    this.authRefusals = new Counter({
      name: "gatehouse_auth_refusals_total",
      help: "Clients refused before they proved who they are, by protocol and reason (wrong_key, no_key, expired, locked_out, tls_required, credentials_unavailable, unknown_key...)",
      labelNames: ["protocol", "reason"],
      registers,
    });
    this.fsync = new Histogram({
      name: "gatehouse_journal_fsync_seconds",
      help: "Duration of one journal group-commit fdatasync (each strict-mode command waits for one)",
      buckets: FSYNC_BUCKETS,
      registers,
    });
    // Process metrics under their usual names (process_cpu_seconds_total, nodejs_eventloop_lag_seconds...),
    // which dashboards for any Node service already read. Off in tests that start many gateways.
    if (options.processMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  /** The cached counters of one protocol: what a session calls per command. */
  forProtocol(protocol: string): ProtocolMetrics {
    let found = this.byProtocol.get(protocol);
    if (found) return found;
    const started = this.sessionsStarted.labels(protocol);
    const ok = this.commands.labels(protocol, "ok");
    const error = this.commands.labels(protocol, "error");
    const unfinished = this.commands.labels(protocol, "unfinished");
    const latency = this.addedLatency.labels(protocol);
    found = {
      sessionStarted: () => started.inc(),
      sessionEnded: (endReason) => this.sessionsEnded.labels(protocol, endReason).inc(),
      command: (outcome: CommandOutcome) => (outcome === "ok" ? ok : outcome === "error" ? error : unfinished).inc(),
      addedLatency: (seconds) => latency.observe(seconds),
    };
    this.byProtocol.set(protocol, found);
    return found;
  }

  /** A client refused before it authenticated (recorded as `auth_failed`). */
  authRefused(protocol: string, reason: string): void {
    this.authRefusals.labels(protocol, reason).inc();
  }

  /** One journal fdatasync took `seconds`. */
  journalSynced(seconds: number): void {
    this.fsync.observe(seconds);
  }

  /** The Prometheus text exposition (format 0.0.4). */
  async exposition(): Promise<{ contentType: string; text: string }> {
    return { contentType: PROMETHEUS_CONTENT_TYPE, text: await this.registry.metrics() };
  }
}

export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

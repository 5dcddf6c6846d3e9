import { Counter, Gauge, type Registry } from "prom-client";
import type { GatewayConfig } from "../config/schema.js";
import type { Journal } from "../journal/journal.js";
import type { Shipper } from "../journal/shipper.js";
import type { ListenerState } from "../listeners/server-watch.js";
import type { Recorder } from "../sessions/recorder.js";
import type { ConnectorRegistry } from "../tunnel/connector-registry.js";

/** What the gateway already knows and /metrics reads at scrape time (never on a session's path). */
export interface GatewayState {
  config: () => GatewayConfig;
  recorder: Recorder;
  journal: Journal;
  shipper: Shipper;
  registry: ConnectorRegistry;
  /** The store failed its last use (shipping, reading keys). */
  storeFailing: () => boolean;
  /** Each configured listener by config key (the api's and the metrics listener's included). */
  listeners: () => Readonly<Record<string, ListenerState>>;
  /** What /readyz would answer now. */
  ready: () => boolean;
}

/**
 * Gauges and counters whose values are read from the gateway's own state when Prometheus scrapes
 * (prom-client's `collect`), so keeping them costs the hot path nothing.
 */
export function registerStateGauges(registry: Registry, state: GatewayState): void {
  const registers = [registry];
  const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[], collect: (g: Gauge<L>) => void) =>
    new Gauge<L>({
      name,
      help,
      labelNames,
      registers,
      collect() {
        this.reset();
        collect(this);
      },
    });
  /** A counter kept by the gateway's own objects (journal, shipper stats), copied at scrape time. */
  const counter = (name: string, help: string, read: () => number) =>
    new Counter({
      name,
      help,
      registers,
      collect() {
        this.reset();
        this.inc(read());
      },
    });

  gauge("gatehouse_sessions_open", "Sessions open now (recorded and not yet closed), by protocol", ["protocol"], (g) => {
    for (const [protocol, count] of state.recorder.openByProtocol()) g.set({ protocol }, count);
  });
  gauge("gatehouse_recording_mode", "The recording mode (strict or best-effort): 1 for the mode in force", ["mode"], (g) => g.set({ mode: state.recorder.mode }, 1));

  // The journal and its way to the store.
  gauge("gatehouse_journal_unshipped_entries", "Journal entries not yet in the store", [], (g) => g.set(state.journal.backlog().entries));
  gauge("gatehouse_journal_unshipped_bytes", "Bytes of journal entries not yet in the store", [], (g) => g.set(state.journal.backlog().bytes));
  gauge("gatehouse_journal_oldest_unshipped_age_seconds", "Age of the oldest journal entry not yet in the store (to within a second; 0 when none)", [], (g) =>
    g.set(state.journal.backlog().oldestAgeSeconds),
  );
  gauge("gatehouse_journal_used_bytes", "Bytes written into the journal's segment files still kept", [], (g) => g.set(state.journal.usedBytes));
  gauge("gatehouse_journal_capacity_bytes", "Bytes of segment files the journal may hold before strict recording refuses new work (recording.journal.maxBytes)", [], (g) =>
    g.set(state.journal.capacityBytes),
  );
  gauge("gatehouse_journal_accepting", "1 when the journal takes new work; 0 when it is full or cannot be written (strict mode then refuses sessions and commands)", [], (g) =>
    g.set(state.journal.problem() === undefined ? 1 : 0),
  );
  counter("gatehouse_journal_entries_appended_total", "Entries appended to the journal", () => state.journal.stats.appended);
  counter("gatehouse_journal_entries_refused_total", "Entries the journal refused because it was full or unwritable", () => state.journal.stats.refused);
  counter("gatehouse_shipper_batches_total", "Batches the shipper stored", () => state.shipper.stats.batches);
  counter("gatehouse_shipper_events_total", "Events the shipper stored", () => state.shipper.stats.events);
  counter("gatehouse_shipper_errors_total", "Store calls of the shipper that failed (each is retried with backoff)", () => state.shipper.stats.failures);
  counter("gatehouse_shipper_rejected_entries_total", "Journal entries the store refused as invalid and the shipper skipped (each logged)", () => state.shipper.stats.rejected);
  gauge("gatehouse_store_up", "1 when the store answered its last use (shipping the journal, reading keys); 0 when it failed", [], (g) => g.set(state.storeFailing() ? 0 : 1));
  gauge("gatehouse_store_unreachable_seconds", "For how long the shipper has been failing to reach the store (0 while it answers)", [], (g) => {
    const since = state.shipper.stats.storeDownSinceMs;
    g.set(since === undefined ? 0 : Math.max(0, (Date.now() - since) / 1000));
  });

  // Connectors: links by name, streams and round trip per link, and whether each connection can be reached.
  gauge("gatehouse_connector_links", "Tunnels held by connector processes, by connector name and state (live, draining); configured connectors without one show 0", ["connector", "state"], (g) => {
    for (const { name } of state.config().connectors) {
      g.set({ connector: name, state: "live" }, 0);
      g.set({ connector: name, state: "draining" }, 0);
    }
    for (const link of state.registry.list()) g.inc({ connector: link.name, state: link.mux.draining ? "draining" : "live" });
  });
  gauge("gatehouse_connector_link_streams", "Tunnel streams open on each connector link", ["connector", "link_id"], (g) => {
    for (const link of state.registry.list()) g.set({ connector: link.name, link_id: link.id }, link.mux.streamCount);
  });
  gauge("gatehouse_connector_link_rtt_seconds", "Round trip of the last answered tunnel heartbeat ping on each connector link", ["connector", "link_id"], (g) => {
    for (const link of state.registry.list()) {
      const rtt = link.mux.roundTripMs;
      if (rtt !== undefined) g.set({ connector: link.name, link_id: link.id }, rtt / 1000);
    }
  });
  gauge("gatehouse_connection_connector_up", "1 when a connection's connector has a live, non-draining tunnel (new sessions can reach the resource); 0 when not", ["connection", "protocol", "connector"], (g) => {
    const live = new Set(state.registry.list().filter((l) => !l.mux.draining).map((l) => l.name));
    for (const c of state.config().connections) g.set({ connection: c.name, protocol: c.protocol, connector: c.connector }, live.has(c.connector) ? 1 : 0);
  });

  gauge("gatehouse_listener_up", "1 when a configured listener takes clients; 0 when it is down (failed, closed by itself) or stopping", ["listener"], (g) => {
    for (const [listener, s] of Object.entries(state.listeners())) g.set({ listener }, s.state === "listening" ? 1 : 0);
  });
  gauge("gatehouse_ready", "1 when /readyz answers ready", [], (g) => g.set(state.ready() ? 1 : 0));
}

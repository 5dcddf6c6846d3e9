import type { LimitsConfig } from "../config/schema.js";
import type { Clock } from "../clock.js";
import type { Logger } from "../logger.js";
import type { Recorder } from "./recorder.js";
import { recordRefusal, type Refusal } from "./session-broker.js";

export type RefusalRecordSettings = LimitsConfig["refusalRecords"];

/** Claimed names kept in a burst's summary. */
const MAX_NAMES_IN_SUMMARY = 10;

interface Burst {
  startedUs: number;
  recorded: number;
  /** The first refusal past `recordEach`: the summary is recorded as its session. */
  first: Refusal | undefined;
  count: number;
  lastUs: number;
  reasons: Record<string, number>;
  identities: Set<string>;
  timer: NodeJS.Timeout | undefined;
}

/**
 * Records the refusals of clients that have not authenticated, without
 * letting them write without bound: names they claim are cut to
 * `maxClaimedChars`, and per client address only the first `recordEach`
 * refusals of a window are recorded one by one; the rest of the window is
 * recorded, when it ends, as one refusal with its `count`, reasons and the
 * identities claimed. Every refusal still ends up in the record.
 */
export class RefusalRecords {
  private readonly bursts = new Map<string, Burst>();
  /** For a later /metrics: refusals folded into a summary rather than recorded alone. */
  readonly counters = { aggregated: 0, summaries: 0 };

  constructor(
    private readonly recorder: Recorder,
    private readonly settings: () => RefusalRecordSettings,
    private readonly clock: Clock,
    private readonly logger: Logger,
  ) {}

  /** Records (or counts) one refusal; never rejects: a recording failure is logged. */
  async record(refusal: Refusal): Promise<void> {
    const { recordEach, windowMs, maxClaimedChars } = this.settings();
    const cut = cutClaims(refusal, maxClaimedChars);
    // Counted one by one, also those a burst records together: a guessing client shows in the rate.
    this.recorder.metrics?.authRefused(refusal.protocol, String(refusal.details.reason ?? refusal.endReason));
    const key = refusal.clientAddress ?? "";
    const now = this.clock();
    let burst = this.bursts.get(key);
    if (burst && now - burst.startedUs >= windowMs * 1000) {
      await this.summarize(key, burst);
      burst = undefined;
    }
    if (!burst) {
      burst = { startedUs: now, recorded: 0, first: undefined, count: 0, lastUs: now, reasons: {}, identities: new Set(), timer: undefined };
      const started = burst;
      started.timer = setTimeout(() => void this.summarize(key, started), windowMs).unref();
      this.bursts.set(key, burst);
    }
    if (burst.recorded < recordEach) {
      burst.recorded++;
      await this.write(cut);
      return;
    }
    burst.first ??= cut;
    burst.count++;
    burst.lastUs = now;
    const reason = String(cut.details.reason ?? cut.endReason);
    burst.reasons[reason] = (burst.reasons[reason] ?? 0) + 1;
    if (burst.identities.size < MAX_NAMES_IN_SUMMARY) burst.identities.add(cut.identity.name);
    this.counters.aggregated++;
  }

  /** Records every pending summary (the listener is closing). */
  async flush(): Promise<void> {
    await Promise.all([...this.bursts].map(([key, burst]) => this.summarize(key, burst)));
  }

  private async summarize(key: string, burst: Burst): Promise<void> {
    if (this.bursts.get(key) !== burst) return;
    this.bursts.delete(key);
    clearTimeout(burst.timer);
    if (!burst.first) return;
    this.counters.summaries++;
    const { first } = burst;
    this.logger.warn({ clientAddress: first.clientAddress, count: burst.count, reasons: burst.reasons }, "refusals from one address recorded together");
    await this.write({
      ...first,
      details: {
        ...first.details,
        count: burst.count,
        reasons: burst.reasons,
        identities: [...burst.identities],
        firstUs: burst.startedUs,
        lastUs: burst.lastUs,
      },
    });
  }

  private async write(refusal: Refusal): Promise<void> {
    await recordRefusal(this.recorder, refusal).catch((err: unknown) => this.logger.error({ err }, "could not record a refused attempt"));
  }
}

/** A name a client claimed, cut to `max` characters (marked with "…"). */
export function cutClaim(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}

function cutClaims(refusal: Refusal, max: number): Refusal {
  return {
    ...refusal,
    connection: cutClaim(refusal.connection, max),
    identity: { ...refusal.identity, name: cutClaim(refusal.identity.name, max) },
    clientApplication: refusal.clientApplication === null ? null : cutClaim(refusal.clientApplication, max),
  };
}

import { describe, expect, it } from "vitest";
import { readiness, workersReadiness } from "./readiness.js";

const ready = readiness({ recordingMode: "strict", journalProblem: undefined, storeFailing: false, listeners: { "listen.postgres": { state: "listening" } } });
const full = readiness({ recordingMode: "strict", journalProblem: { reason: "journal_full", message: "full" } as never, storeFailing: true, storeDownForSeconds: 90, listeners: {} });

describe("workersReadiness (gateway --workers)", () => {
  it("is ready when every worker is, and lists them", () => {
    const combined = workersReadiness([
      { worker: 0, value: ready },
      { worker: 1, value: ready },
    ]);
    expect(combined.ready).toBe(true);
    expect(combined.body).toMatchObject({ status: "ready", workers: { "0": "ready", "1": "ready" }, checks: { listeners: { "listen.postgres": "listening" } } });
  });

  it("is not ready when one worker is not (the balancer cannot route around it), naming the worker and why", () => {
    expect(full.ready).toBe(false);
    const combined = workersReadiness([
      { worker: 0, value: ready },
      { worker: 1, value: full },
    ]);
    expect(combined.ready).toBe(false);
    expect(combined.body.status).toBe("not_ready");
    expect(combined.body.reason).toMatch(/^worker 1: new sessions are refused: the store has been unreachable for 90 s/);
    expect(combined.body.checks.recording).toBe("journal_full");
    expect(combined.body.workers).toEqual({ "0": "ready", "1": "not_ready" });
  });

  it("leaves out a worker being started again (it gets no connections), but not one that does not answer", () => {
    expect(workersReadiness([{ worker: 0, value: ready }, { worker: 1, value: "down" }])).toMatchObject({ ready: true, body: { workers: { "0": "ready", "1": "down" } } });
    expect(workersReadiness([{ worker: 0, value: ready }, { worker: 1, value: "starting" }]).ready).toBe(true);
    expect(workersReadiness([{ worker: 0, value: ready }, { worker: 1, value: null }])).toMatchObject({ ready: false, body: { reason: "worker 1 did not answer", workers: { "1": "not_ready" } } });
  });

  it("is not ready when no worker runs", () => {
    expect(workersReadiness([{ worker: 0, value: "down" }, { worker: 1, value: "starting" }])).toMatchObject({ ready: false, body: { reason: "no gateway worker is running" } });
  });
});

import type { Checkpoint, SessionRecord } from "@gatehouse/store";
import { isoFromUs } from "../clock.js";
import { genesisHash } from "./chain.js";
import { chainStart, checkCheckpoint, type ChainHead } from "./checkpoints.js";
import type { PublicKey } from "./signing.js";
import type { VerifyFailure } from "./verify.js";

// Checks the gateways' checkpoint chains (checkpoints.ts) and holds the store's sessions up
// against them. Each session's own chain (verify.ts) cannot show what the store's owner does to
// whole sessions; the checkpoints can:
//   a chain      cut        a checkpoint is missing (a gap), or the chain ends before the end known
//                           from an exported copy or the running gateway
//                edited     a checkpoint's content, link or hash differs (from an exported copy too)
//                bad_seal   a checkpoint's signature does not verify
//                unknown_key signed by a key the verifier was not given (its chain is not checked)
//   a session    missing    opened (checkpoint) but not in the store, and no signed retention cut
//                           covers it: deleted by hand
//                unsealed   sealed (checkpoint) but open in the store; or open in the store though
//                           a later state checkpoint of its gateway no longer lists it live
//                edited     its row differs from what was opened, or its end, count or final hash
//                           from its seal checkpoint
//                inserted   in the store, but its gateway's chain, begun before it, never opened it
// A session dropped by `gatehouse retention` (opened, sealed, then covered by a signed retention
// checkpoint) is counted as retained, not as a failure.

export type ChainReason = "cut" | "edited" | "bad_seal" | "unknown_key";

export interface ChainFailure {
  /** The gateway's key id. */
  gateway: string;
  seq: number;
  reason: ChainReason;
  message: string;
}

export interface CheckpointReport {
  /** Checkpoints checked, from the store and (not in the store) from the exported copy. */
  checkpoints: number;
  gateways: string[];
  chainFailures: ChainFailure[];
  sessionFailures: VerifyFailure[];
  /** Sessions opened and sealed, then removed under a signed retention checkpoint. */
  retained: number;
}

export interface CheckpointInputs {
  /** As stored, in (gateway, seq) order. */
  stored: readonly Checkpoint[];
  /** An exported copy (verify --checkpoints FILE), checked as a chain of its own first. */
  exported?: readonly Checkpoint[];
  /** Where running gateways say their chains stand (read through the API). */
  heads?: readonly (ChainHead & { gateway: string })[];
  /** The store's sessions: all of them (`complete`), or the ones asked about. */
  sessions: ReadonlyMap<string, SessionRecord>;
  /** `sessions` is the whole store, so a session not in it is missing from the store. */
  complete: boolean;
  keys: readonly PublicKey[];
}

export function verifyCheckpoints(inputs: CheckpointInputs): CheckpointReport {
  const { keys } = inputs;
  const chainFailures: ChainFailure[] = [];
  const stored = groupByGateway(inputs.stored);
  const exported = groupByGateway(inputs.exported ?? []);

  // The exported copy is trusted only as far as it verifies on its own.
  const trustedExport = new Map<string, Checkpoint[]>();
  for (const [gateway, chain] of exported) {
    const { valid, failure } = walkChain(gateway, chain, keys);
    if (failure) chainFailures.push({ ...failure, message: `in the exported checkpoints: ${failure.message}` });
    trustedExport.set(gateway, valid);
  }

  // Every chain as the verifier reconstructs it: the store's authentic checkpoints (hash and
  // signature check out), plus what the export holds that the store lost or altered.
  const chains = new Map<string, Checkpoint[]>();
  for (const gateway of new Set([...stored.keys(), ...trustedExport.keys()])) {
    const fromStore = stored.get(gateway) ?? [];
    const { valid, failure } = walkChain(gateway, fromStore, keys);
    if (failure) chainFailures.push(failure);
    const copy = trustedExport.get(gateway) ?? [];
    const bySeq = new Map(fromStore.map((c) => [c.seq, c]));
    const lost: number[] = [];
    for (const c of copy) {
      const mine = bySeq.get(c.seq);
      if (mine === undefined) lost.push(c.seq);
      else if (mine.hash !== c.hash || mine.prevHash !== c.prevHash) {
        if (!failure || failure.seq !== c.seq) chainFailures.push({ gateway, seq: c.seq, reason: "edited", message: "the store's checkpoint differs from the exported one" });
      }
    }
    // Each run of checkpoints the store lost, unless the walk above already named that gap.
    for (let i = 0; i < lost.length; ) {
      let j = i;
      while (j + 1 < lost.length && lost[j + 1] === lost[j]! + 1) j++;
      const [from, to] = [lost[i]!, lost[j]!];
      if (!(failure?.reason === "cut" && failure.seq === from)) {
        chainFailures.push({ gateway, seq: from, reason: "cut", message: `checkpoint${from === to ? ` ${from} is` : `s ${from}–${to} are`} in the exported copy but not in the store` });
      }
      i = j + 1;
    }
    const merged = new Map(valid.map((c) => [c.seq, c]));
    for (const c of copy) if (!merged.has(c.seq)) merged.set(c.seq, c);
    chains.set(gateway, [...merged.values()].sort((a, b) => a.seq - b.seq));
  }
  for (const head of inputs.heads ?? []) {
    const chain = stored.get(head.gateway) ?? [];
    const last = chain[chain.length - 1]?.seq ?? 0;
    if (last < head.seq) {
      chainFailures.push({ gateway: head.gateway, seq: last + 1, reason: "cut", message: `the store's chain ends at ${last}; the running gateway's is at ${head.seq}` });
    } else if (chain.find((c) => c.seq === head.seq)?.hash !== head.hash) {
      chainFailures.push({ gateway: head.gateway, seq: head.seq, reason: "edited", message: "the store's checkpoint differs from the running gateway's" });
    }
  }

  const report = crossCheck(chains, inputs.sessions, inputs.complete);
  return { checkpoints: [...chains.values()].reduce((n, c) => n + c.length, 0), gateways: [...chains.keys()], chainFailures, ...report };
}

function groupByGateway(list: readonly Checkpoint[]): Map<string, Checkpoint[]> {
  const out = new Map<string, Checkpoint[]>();
  for (const c of list) {
    let chain = out.get(c.gateway);
    if (!chain) out.set(c.gateway, (chain = []));
    chain.push(c);
  }
  for (const chain of out.values()) chain.sort((a, b) => a.seq - b.seq);
  return out;
}

/**
 * Walks one gateway's checkpoints from seq 1: every checkpoint that is authentic on its own (its
 * hash and signature check out, so the gateway wrote it), and the first thing wrong with the chain.
 */
function walkChain(gateway: string, chain: readonly Checkpoint[], keys: readonly PublicKey[]): { valid: Checkpoint[]; failure?: ChainFailure } {
  let prev: string | undefined = chainStart(gateway);
  let expected = 1;
  let failure: ChainFailure | undefined;
  const note = (f: ChainFailure) => (failure ??= f);
  const valid: Checkpoint[] = [];
  for (const c of chain) {
    if (c.seq < expected) {
      note({ gateway, seq: c.seq, reason: "edited", message: `checkpoint ${c.seq} appears twice` });
      continue;
    }
    if (c.seq > expected) {
      const range = c.seq - expected > 1 ? `s ${expected}–${c.seq - 1} are` : ` ${expected} is`;
      note({ gateway, seq: expected, reason: "cut", message: `checkpoint${range} missing` });
      prev = undefined; // the link across a gap cannot be checked
    }
    expected = c.seq + 1;
    switch (checkCheckpoint(c, keys)) {
      case "edited":
        note({ gateway, seq: c.seq, reason: "edited", message: "the checkpoint's content does not match its hash" });
        prev = undefined;
        continue;
      case "bad_signature":
        note({ gateway, seq: c.seq, reason: "bad_seal", message: "the checkpoint's signature does not verify" });
        prev = undefined;
        continue;
      case "unknown_key":
        return { valid, failure: { gateway, seq: c.seq, reason: "unknown_key", message: `signed with key ${gateway}, which is not among the public keys given` } };
      case "ok":
        break;
    }
    if (prev !== undefined && c.prevHash !== prev) note({ gateway, seq: c.seq, reason: "edited", message: `the checkpoint does not follow checkpoint ${c.seq - 1}` });
    prev = c.hash;
    valid.push(c);
  }
  return failure ? { valid, failure } : { valid };
}

const num = (details: Record<string, unknown> | null, key: string): number | undefined => {
  const value = details?.[key];
  return typeof value === "number" ? value : undefined;
};

function crossCheck(chains: ReadonlyMap<string, Checkpoint[]>, sessions: ReadonlyMap<string, SessionRecord>, complete: boolean): Pick<CheckpointReport, "sessionFailures" | "retained"> {
  const opens = new Map<string, Checkpoint>();
  const seals = new Map<string, Checkpoint>();
  const retentions: Checkpoint[] = [];
  const states = new Map<string, Checkpoint[]>();
  for (const [gateway, chain] of chains) {
    for (const c of chain) {
      if (c.kind === "open" && c.sessionId) opens.set(c.sessionId, c);
      else if (c.kind === "seal" && c.sessionId) seals.set(c.sessionId, c);
      else if (c.kind === "retention") retentions.push(c);
      else if (c.kind === "state") (states.get(gateway) ?? states.set(gateway, []).get(gateway)!).push(c);
    }
  }
  const failures: VerifyFailure[] = [];
  const fail = (sessionId: string, reason: VerifyFailure["reason"], message: string) => failures.push({ sessionId, seq: null, reason, message });
  const at = (c: Checkpoint) => `${isoFromUs(c.timeUs)} (checkpoint ${c.gateway}#${c.seq})`;
  let retained = 0;

  for (const [id, open] of opens) {
    const session = sessions.get(id);
    const seal = seals.get(id);
    if (session === undefined) {
      if (!complete) continue;
      const startedUs = num(open.details, "startedUs") ?? open.timeUs;
      const endedUs = seal ? (num(seal.details, "endedUs") ?? seal.timeUs) : undefined;
      const cut = endedUs === undefined ? undefined : retentions.find((r) => startedUs < (num(r.details, "horizonUs") ?? 0) && endedUs <= r.timeUs);
      if (cut) retained++;
      else fail(id, "missing", `opened at ${at(open)}${seal ? " and sealed" : ""}, but not in the store, and no signed retention cut covers it: deleted by hand`);
      continue;
    }
    // The row the gateway opened: even a session without events (or a seal) cannot be rewritten.
    if (genesisHash(session) !== open.details?.["genesis"]) {
      fail(id, "edited", `the session's row (identity, connection, client, start) is not the one its gateway opened at ${at(open)}`);
      continue;
    }
    if (seal) continue; // checked below
    if (session.endedUs !== null) continue; // ended in the store; its own seal check applies
    // Open in the store, never sealed in the chain: was its gateway still running it?
    const later = (states.get(open.gateway) ?? []).filter((s) => s.seq > open.seq);
    const last = later[later.length - 1];
    const live = last?.details?.["live"];
    if (last && Array.isArray(live) && !live.includes(id)) {
      fail(id, "unsealed", `open in the store, but its gateway's checkpoint of ${at(last)} no longer has it live: its end and seal are missing`);
    }
  }
  for (const [id, seal] of seals) {
    const session = sessions.get(id);
    if (session === undefined) continue; // missing: reported above (or not asked about)
    if (session.endedUs === null) {
      fail(id, "unsealed", `sealed at ${at(seal)} with ${num(seal.details, "eventCount")} events, but open in the store: its seal was removed`);
    } else if (session.finalHash !== seal.details?.["finalHash"] || session.eventCount !== num(seal.details, "eventCount") || session.endedUs !== num(seal.details, "endedUs")) {
      fail(id, "edited", `the store's end, event count or final hash differ from the seal checkpoint of ${at(seal)}`);
    }
  }
  // A session no chain opened, though the chain of the gateway that sealed it (or, still open,
  // every chain given) was running before it started — and went on past its start: the sessions
  // are read after the checkpoints, so one opened in between is in them but not in the chains.
  const span = (chain: readonly Checkpoint[]) => ({ from: chain[0]?.timeUs ?? Number.POSITIVE_INFINITY, to: chain[chain.length - 1]?.timeUs ?? Number.NEGATIVE_INFINITY });
  const spans = new Map([...chains].map(([g, chain]) => [g, span(chain)]));
  const all = { from: Math.min(Number.POSITIVE_INFINITY, ...[...spans.values()].map((s) => s.from)), to: Math.max(Number.NEGATIVE_INFINITY, ...[...spans.values()].map((s) => s.to)) };
  for (const [id, session] of sessions) {
    if (opens.has(id)) continue;
    const sealer = session.sealSignature?.split(":")[1];
    const covering = sealer === undefined ? all : spans.get(sealer);
    if (covering !== undefined && covering.from < session.startedUs && session.startedUs < covering.to) {
      fail(id, "inserted", `no checkpoint opened this session, though ${sealer === undefined ? "the gateways' chains run" : `gateway ${sealer}'s chain runs`} from before it started to after: no gateway recorded it`);
    }
  }
  return { sessionFailures: failures, retained };
}

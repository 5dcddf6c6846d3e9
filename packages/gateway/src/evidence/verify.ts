import type { SessionEvent, SessionRecord, StreamChunk } from "@gatehouse/store";
import { eventHash, genesisHash } from "./chain.js";
import { checkSeal, type PublicKey } from "./signing.js";
import { verifyStreams } from "./verify-streams.js";

// Recomputes a session's chain and seal from the stored rows and says what, if anything, is wrong
// — the first bad sequence number and why:
//   edited     an event's content (or the session's own row) is not what was hashed
//   deleted    an event is missing (a gap, or fewer events than were sealed)
//   reordered  events are stored in another order than they were chained
//   inserted   an event that was never part of the chain (a duplicate seq, one more than sealed)
//   unsealed   the session ended but carries no seal, or events carry no hashes
//   bad_seal   the seal does not verify (a forged or altered seal, or altered end/count/hash)
//   unknown_key the seal was made by a key the verifier was not given
//   missing    (verify-checkpoints.ts) a session the gateway's checkpoints opened is not in the store
// An open session (no end yet) has its chain checked but no seal to check; it is reported as open.

export type VerifyReason = "edited" | "deleted" | "reordered" | "inserted" | "unsealed" | "bad_seal" | "unknown_key" | "missing";

export interface VerifyFailure {
  sessionId: string;
  /** The first sequence number that is wrong; null for the session's own row or its seal. */
  seq: number | null;
  reason: VerifyReason;
  message: string;
  /** A byte stream's failure (verify-streams.ts): the stream, and its first bad chunk (null: the stream as a whole). */
  stream?: { id: number; chunk: number | null };
}

export interface SessionVerdict {
  sessionId: string;
  ok: boolean;
  /** Not ended yet: there is no seal to check. */
  open: boolean;
  /** Events found in the store. */
  events: number;
  failure?: VerifyFailure;
}

/**
 * `events` as stored for the session, in (seq, ts) order; `chunks`: its byte streams' chunks as
 * stored, in (stream, seq) order, checked once the events (which summarize the streams) are.
 */
export function verifySession(session: SessionRecord, events: readonly SessionEvent[], keys: readonly PublicKey[], chunks: readonly StreamChunk[] = []): SessionVerdict {
  const verdict = verifyEvents(session, events, keys);
  if (!verdict.ok) return verdict;
  const failure = verifyStreams(session, events, chunks);
  return failure ? { ...verdict, ok: false, failure } : verdict;
}

function verifyEvents(session: SessionRecord, events: readonly SessionEvent[], keys: readonly PublicKey[]): SessionVerdict {
  const verdict = (failure?: Omit<VerifyFailure, "sessionId">): SessionVerdict => ({
    sessionId: session.id,
    ok: failure === undefined,
    open: session.endedUs === null,
    events: events.length,
    ...(failure ? { failure: { sessionId: session.id, ...failure } } : {}),
  });

  const genesis = genesisHash(session);
  const sealedEnd = session.endedUs !== null && session.sealSignature !== null && session.finalHash !== null ? { count: session.eventCount, finalHash: session.finalHash } : undefined;
  const chain = checkChain(genesis, events, sealedEnd);
  if (chain.failure) return verdict(chain.failure);
  const { count, last } = chain;

  if (session.endedUs === null) {
    // Still open: the count kept by the store must match what is there.
    if (session.eventCount > count) return verdict({ seq: count + 1, reason: "deleted", message: `the session counts ${session.eventCount} events but the store holds ${count}` });
    if (session.eventCount < count) return verdict({ seq: session.eventCount + 1, reason: "inserted", message: `the store holds ${count} events but the session counts ${session.eventCount}` });
    return verdict();
  }
  if (session.sealSignature === null || session.finalHash === null) {
    return verdict({ seq: null, reason: "unsealed", message: `the session ended (${session.endReason ?? "no reason"}) but has no seal` });
  }
  // The seal covers the end, the count and the final hash as the store keeps them; the chain
  // must then arrive at exactly that hash after exactly that many events.
  const sealed = { sessionId: session.id, genesis, eventCount: session.eventCount, finalHash: session.finalHash, endedUs: session.endedUs, endReason: session.endReason ?? "" };
  const check = checkSeal(session.sealSignature, sealed, keys);
  switch (check.result) {
    case "malformed":
      return verdict({ seq: null, reason: "bad_seal", message: "the seal is not an ed25519 seal" });
    case "unknown_key":
      return verdict({ seq: null, reason: "unknown_key", message: `sealed with key ${check.keyId}, which is not among the public keys given` });
    case "bad_signature":
      return verdict({ seq: null, reason: "bad_seal", message: "the seal's signature does not match the session's end, event count or final hash (the session row was altered)" });
    case "ok":
      break;
  }
  if (count < session.eventCount) return verdict({ seq: count + 1, reason: "deleted", message: `sealed with ${session.eventCount} events, the store holds ${count}` });
  if (count > session.eventCount) return verdict({ seq: session.eventCount + 1, reason: "inserted", message: `sealed with ${session.eventCount} events, the store holds ${count}` });
  if (last !== session.finalHash) {
    return verdict({ seq: null, reason: "edited", message: "the chain is consistent but does not end in the sealed hash: the events were rewritten and re-hashed" });
  }
  return verdict();
}

/** How many deleted events `verify` looks through to recognise a renumbered remainder. */
const RENUMBER_SEARCH = 64;

type ChainResult = { failure: Omit<VerifyFailure, "sessionId">; count?: never; last?: never } | { failure?: never; count: number; last: string };

/**
 * Walks the events in stored order, checking each one's own hash and its link to the one before.
 * `sealed`: the count and final hash the session's seal claims (not yet checked here), to tell
 * events appended after the sealed end.
 */
function checkChain(genesis: string, events: readonly SessionEvent[], sealed: { count: number; finalHash: string } | undefined): ChainResult {
  // Where each stored hash sits, to tell a reordering or an insertion from an edit.
  const positionOf = new Map<string, number>();
  events.forEach((e, i) => {
    if (e.hash) positionOf.set(e.hash, i);
  });
  // A session recorded with the chain has hashes on its events (or a seal): there, an event
  // without a hash was not written by the gateway. Before the chain existed, none had one.
  const chained = sealed !== undefined || events.some((e) => e.hash);
  let expectedPrev = genesis;
  let expectedSeq = 1;
  for (let i = 0; i < events.length; i++) {
    const e = events[i]!;
    if (e.seq < expectedSeq) return { failure: { seq: e.seq, reason: "inserted", message: `a second event with seq ${e.seq}` } };
    if (e.seq > expectedSeq) {
      const range = e.seq - expectedSeq > 1 ? `${expectedSeq}–${e.seq - 1} are` : `${expectedSeq} is`;
      return { failure: { seq: expectedSeq, reason: "deleted", message: `event ${range} missing` } };
    }
    const selfOk = !!e.hash && !!e.prevHash && eventHash(e.prevHash, e) === e.hash;
    const linkOk = e.prevHash === expectedPrev;
    if (selfOk && linkOk) {
      expectedPrev = e.hash!;
      expectedSeq++;
      continue;
    }
    // Not where the chain goes on. Put in by hand, or one of the chain's own events changed?
    const inserted = insertedAt(i, expectedPrev, expectedSeq - 1, events, sealed);
    if (inserted) return { failure: inserted };
    if (!e.hash || !e.prevHash) {
      if (chained) return { failure: { seq: e.seq, reason: "inserted", message: "the event has no hash: the gateway, which chains every event, did not write it" } };
      return { failure: { seq: e.seq, reason: "unsealed", message: "the event has no hash (recorded without the chain)" } };
    }
    return { failure: explain(e, i, events, positionOf, genesis, selfOk, linkOk) };
  }
  return { count: expectedSeq - 1, last: expectedPrev };
}

/**
 * Whether the events from position `i` on, up to where the chain goes on, were put in by hand: no
 * stored event was chained after the one at `i` (nor is it the sealed end), and either a later
 * event was chained right after the last good one, or the last good one is the sealed end.
 */
function insertedAt(
  i: number,
  lastGood: string,
  goodCount: number,
  events: readonly SessionEvent[],
  sealed: { count: number; finalHash: string } | undefined,
): Omit<VerifyFailure, "sessionId"> | undefined {
  const e = events[i]!;
  const followed = !!e.hash && events.some((x, j) => j !== i && x.prevHash === e.hash);
  if (followed || (e.hash && e.hash === sealed?.finalHash)) return undefined; // something follows it: edited or moved
  const prevSeq = goodCount === 0 ? "the session's start" : `seq ${goodCount}`;
  for (let j = i + 1; j < events.length; j++) {
    if (events[j]!.prevHash !== lastGood) continue;
    const range = j - i > 1 ? `seq ${e.seq}–${events[j - 1]!.seq} were` : `seq ${e.seq} was`;
    return { seq: e.seq, reason: "inserted", message: `${range} never in the chain${e.hash ? "" : " (no hash)"}: seq ${events[j]!.seq} was chained right after ${prevSeq}` };
  }
  if (sealed && sealed.finalHash === lastGood && sealed.count === goodCount) {
    return { seq: e.seq, reason: "inserted", message: `the session was sealed after ${prevSeq}; what follows was never in the chain${e.hash ? "" : " (no hash)"}` };
  }
  return undefined;
}

function explain(
  e: SessionEvent,
  i: number,
  events: readonly SessionEvent[],
  positionOf: Map<string, number>,
  genesis: string,
  selfOk: boolean,
  linkOk: boolean,
): Omit<VerifyFailure, "sessionId"> {
  const at = e.seq;
  if (linkOk) return { seq: at, reason: "edited", message: "the event's content does not match its hash" };
  const prev = e.prevHash!;
  if (prev === genesis) {
    // It was chained first but is not stored first.
    return { seq: at, reason: "reordered", message: "the event was chained as the session's first" };
  }
  const predecessor = positionOf.get(prev);
  if (predecessor !== undefined && predecessor > i) {
    return { seq: at, reason: "reordered", message: `the event was chained after seq ${events[predecessor]!.seq}, which is stored after it` };
  }
  if (predecessor !== undefined && predecessor < i - 1) {
    // It follows an earlier event directly: what is stored in between was not in the chain.
    return { seq: events[predecessor + 1]!.seq, reason: "inserted", message: `seq ${at} was chained right after seq ${events[predecessor]!.seq}` };
  }
  if (i === 0 && selfOk) {
    // The first event is intact but starts from another genesis: the session's row was changed.
    return { seq: null, reason: "edited", message: "the session's details (identity, connection, client, start) are not what its chain started from" };
  }
  if (predecessor === undefined) {
    // Its predecessor's hash is nowhere: that event is gone. Renumbering the rest to close the
    // gap changes their seq, so also try the seq it was hashed with.
    if (selfOk) return { seq: at, reason: "deleted", message: "the event this one was chained after is missing" };
    for (let gap = 1; gap <= RENUMBER_SEARCH; gap++) {
      if (eventHash(prev, { ...e, seq: at + gap }) === e.hash) {
        return { seq: at, reason: "deleted", message: `${gap} event${gap === 1 ? " is" : "s are"} missing before it and the later ones were renumbered` };
      }
    }
  }
  return { seq: at, reason: "edited", message: "the event's content or its link to the previous event was changed" };
}

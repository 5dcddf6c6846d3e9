import type { SessionEvent, SessionRecord, StreamChunk } from "@gatehouse/store";
import { genesisHash } from "./chain.js";
import { chunkHash, streamStart, streamSummaryOf, type StreamSummary } from "./stream-chain.js";
import type { VerifyFailure } from "./verify.js";

// Recomputes every byte stream's chain of a session from its stored chunks and holds it up to the
// summary the session's own (already verified) event chain carries for it in `details.stream`:
//   edited     a chunk's content (data, time, direction) is not what was hashed, or the chain
//              does not end in the summarized hash (the chunks were rewritten and re-hashed)
//   deleted    a chunk is missing (a gap, fewer chunks than summarized, a deletion hidden by
//              renumbering), or a summarized stream has no chunks at all
//   reordered  chunks are stored in another order than they were chained
//   inserted   a chunk that was never in the chain (a second one with a seq, one more than
//              summarized, one chained in between), or a stream no event of the session speaks of
// A stream of a session still open, not summarized yet, is checked as far as it goes.

/** The first failure among the session's streams, or undefined when every stream checks out. */
export function verifyStreams(session: SessionRecord, events: readonly SessionEvent[], chunks: readonly StreamChunk[]): VerifyFailure | undefined {
  const summaries = new Map<number, StreamSummary>();
  for (const e of events) {
    const summary = streamSummaryOf(e.details);
    if (summary) summaries.set(summary.streamId, summary);
  }
  const byStream = new Map<number, StreamChunk[]>();
  for (const c of chunks) {
    let list = byStream.get(c.streamId);
    if (!list) byStream.set(c.streamId, (list = []));
    list.push(c);
  }
  const genesis = genesisHash(session);
  const ids = [...new Set([...summaries.keys(), ...byStream.keys()])].sort((a, b) => a - b);
  for (const id of ids) {
    const failure = verifyStream(session, genesis, id, byStream.get(id) ?? [], summaries.get(id));
    if (failure) return failure;
  }
  return undefined;
}

function verifyStream(session: SessionRecord, genesis: string, streamId: number, chunks: readonly StreamChunk[], summary: StreamSummary | undefined): VerifyFailure | undefined {
  const fail = (chunk: number | null, reason: VerifyFailure["reason"], message: string): VerifyFailure => ({ sessionId: session.id, seq: null, stream: { id: streamId, chunk }, reason, message });
  if (!summary && session.endedUs !== null) {
    return fail(chunks[0]?.seq ?? null, "inserted", `no event of the session summarizes stream ${streamId}: its chunks were never in the session's record`);
  }
  const start = streamStart(genesis, streamId);
  const positionOf = new Map<string, number>();
  chunks.forEach((c, i) => positionOf.set(c.hash, i));
  let expectedPrev = start;
  let expectedSeq = 1;
  for (let i = 0; i < chunks.length; i++) {
    const c = chunks[i]!;
    if (c.seq < expectedSeq) return fail(c.seq, "inserted", `a second chunk with seq ${c.seq}`);
    if (c.seq > expectedSeq) {
      const range = c.seq - expectedSeq > 1 ? `chunks ${expectedSeq}–${c.seq - 1} are` : `chunk ${expectedSeq} is`;
      return fail(expectedSeq, "deleted", `${range} missing`);
    }
    const selfOk = chunkHash(c.prevHash, c) === c.hash;
    const linkOk = c.prevHash === expectedPrev;
    if (selfOk && linkOk) {
      expectedPrev = c.hash;
      expectedSeq++;
      continue;
    }
    // Put in by hand: nothing stored was chained after it, and a later chunk goes on from the
    // last good one (with or without the rest renumbered).
    const next = chunks.findIndex((x, j) => j > i && x.prevHash === expectedPrev);
    if (next > i && c.hash !== summary?.hash && !chunks.some((x, j) => j !== i && x.prevHash === c.hash)) {
      const range = next - i > 1 ? `chunks ${c.seq}–${chunks[next - 1]!.seq} were` : `chunk ${c.seq} was`;
      return fail(c.seq, "inserted", `${range} never in the chain: chunk ${chunks[next]!.seq} was chained right after ${expectedSeq === 1 ? "the stream's start" : `chunk ${expectedSeq - 1}`}`);
    }
    if (linkOk) return fail(c.seq, "edited", "the chunk's content does not match its hash");
    // Not chained after the last good one: stored out of order, or its predecessor deleted?
    const predecessor = positionOf.get(c.prevHash);
    if (c.prevHash === start || (predecessor !== undefined && predecessor > i)) {
      return fail(c.seq, "reordered", `the chunk was chained after ${c.prevHash === start ? "the stream's start" : `chunk ${chunks[predecessor!]!.seq}`}, which is stored after it`);
    }
    if (predecessor === undefined) {
      // Renumbering the rest to close a gap changes their seq: try the seq it was hashed with.
      for (let gap = 1; gap <= 64; gap++) {
        if (chunkHash(c.prevHash, { ...c, seq: c.seq + gap }) === c.hash) return fail(c.seq, "deleted", `${gap} chunk${gap === 1 ? " is" : "s are"} missing before it and the later ones were renumbered`);
      }
      if (selfOk) return fail(c.seq, "deleted", "the chunk this one was chained after is missing");
    }
    return fail(c.seq, "edited", "the chunk's content or its link to the previous chunk was changed");
  }
  const count = expectedSeq - 1;
  if (!summary) return undefined; // an open session's stream still running: checked as far as it goes
  if (count < summary.chunks) return fail(count + 1, "deleted", `the stream was summarized with ${summary.chunks} chunks, the store holds ${count}`);
  if (count > summary.chunks) {
    return fail(summary.chunks + 1, "inserted", `the stream was summarized with ${summary.chunks} chunks; what follows chunk ${summary.chunks} was never in the chain`);
  }
  if (expectedPrev !== summary.hash) return fail(null, "edited", "the chunks are consistent but do not end in the summarized hash: they were rewritten and re-hashed");
  return undefined;
}

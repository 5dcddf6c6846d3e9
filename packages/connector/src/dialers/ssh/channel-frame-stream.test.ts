import { EventEmitter } from "node:events";
import { PassThrough } from "node:stream";
import { ChannelFrame, ChannelFrameReader, decodeExitStatus } from "@gatehouse/protocols/ssh";
import type { ClientChannel } from "ssh2";
import { describe, expect, it } from "vitest";
import { ChannelFrameStream } from "./channel-frame-stream.js";

/** ssh2's client channel as far as ChannelFrameStream uses it: stdout (itself) and stderr as readables, its events. */
function fakeChannel(): ClientChannel & { stderr: PassThrough } {
  // emitClose: false, as ssh2's channels: their "close" is the SSH channel's, emitted by ssh2 itself.
  const channel = new PassThrough({ emitClose: false }) as unknown as ClientChannel & { stderr: PassThrough } & EventEmitter;
  (channel as unknown as { stderr: PassThrough }).stderr = new PassThrough();
  return channel;
}

async function framesOf(stream: ChannelFrameStream): Promise<Array<{ type: number; payload: Uint8Array }>> {
  const reader = new ChannelFrameReader();
  const frames: Array<{ type: number; payload: Uint8Array }> = [];
  for await (const chunk of stream) {
    reader.push(chunk as Buffer);
    for (let f = reader.next(); f; f = reader.next()) frames.push({ type: f.type, payload: f.payload });
  }
  return frames;
}

describe("ChannelFrameStream", () => {
  it("sends the exit status that ssh2 emitted before the stream listened, from the channel's close", async () => {
    // sshd's output, exit status, EOF and close in the read that answered the exec: ssh2 emitted
    // 'exit' at once, and repeats the code on 'close', which waits for the output to be read.
    const channel = fakeChannel();
    channel.write("out\n");
    channel.end();
    channel.stderr.end();
    const stream = new ChannelFrameStream(channel);
    const frames = framesOf(stream);
    await new Promise((resolve) => setImmediate(resolve));
    channel.emit("close", 3);
    const got = await frames;
    expect(got.map((f) => f.type)).toEqual([ChannelFrame.Data, ChannelFrame.Eof, ChannelFrame.ExitStatus]);
    expect(decodeExitStatus(got[2]!.payload)).toBe(3);
  });

  it("sends a signal's end from the channel's close the same way", async () => {
    const channel = fakeChannel();
    channel.end();
    channel.stderr.end();
    const stream = new ChannelFrameStream(channel);
    const frames = framesOf(stream);
    await new Promise((resolve) => setImmediate(resolve));
    channel.emit("close", null, "SIGKILL", false, "");
    const got = await frames;
    expect(got.map((f) => f.type)).toEqual([ChannelFrame.Eof, ChannelFrame.ExitSignal]);
    expect(JSON.parse(new TextDecoder().decode(got[1]!.payload))).toMatchObject({ signal: "KILL" });
  });
});

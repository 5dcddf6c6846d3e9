import { Terminal } from "@xterm/xterm";
import "@xterm/xterm/css/xterm.css";
import { h } from "./dom.js";

// Plays a recorded terminal stream (the gateway's asciicast v2 export) in xterm.js: play, pause and
// seek. The bytes go to the terminal emulator only, never into the page's DOM as markup; a stream's
// escape sequences can restyle the terminal's cells, not the page.

interface Frame {
  t: number;
  kind: "o" | "i" | "r";
  data: string;
}

export interface Cast {
  width: number;
  height: number;
  frames: Frame[];
  duration: number;
}

export function parseCast(text: string): Cast {
  const lines = text.split("\n").filter((l) => l.trim() !== "");
  const header = JSON.parse(lines[0] ?? "{}") as { width?: number; height?: number };
  const frames: Frame[] = [];
  for (const line of lines.slice(1)) {
    const parsed = JSON.parse(line) as unknown;
    if (!Array.isArray(parsed) || typeof parsed[0] !== "number" || typeof parsed[2] !== "string") continue;
    const kind = parsed[1] === "i" || parsed[1] === "r" ? parsed[1] : "o";
    frames.push({ t: parsed[0], kind, data: parsed[2] });
  }
  return { width: header.width ?? 80, height: header.height ?? 24, frames, duration: frames.at(-1)?.t ?? 0 };
}

/** A player element for one cast. */
export function player(cast: Cast): HTMLElement {
  const screen = h("div", { class: "terminal", "data-testid": "replay-terminal" });
  const term = new Terminal({ cols: clamp(cast.width, 20, 300), rows: clamp(cast.height, 5, 100), convertEol: false, disableStdin: true, cursorBlink: false, scrollback: 5000 });
  let opened = false;
  let position = 0; // seconds into the cast
  let next = 0; // index of the next frame to write
  let playing = false;
  let timer: number | undefined;
  let startedAt = 0; // performance.now() at position 0 of the current run
  const speed = { value: 1 };

  const button = h("button", { type: "button", "data-testid": "replay-play", onclick: () => (playing ? pause() : play()) }, "Play");
  const seek = h("input", { type: "range", min: "0", max: String(Math.max(cast.duration, 0.001)), step: "0.01", value: "0", "aria-label": "seek", "data-testid": "replay-seek", oninput: () => seekTo(Number(seek.value)) });
  const clock = h("span", { class: "muted", "data-testid": "replay-clock" }, label(0));
  const speeds = h("select", { "aria-label": "speed", onchange: () => { speed.value = Number(speeds.value); if (playing) { pause(); play(); } } },
    ...[0.5, 1, 2, 4, 8].map((s) => h("option", { value: String(s) }, `${s}×`)));
  speeds.value = "1";

  function ensureOpen() {
    if (!opened) {
      term.open(screen);
      opened = true;
    }
  }
  function write(frame: Frame) {
    if (frame.kind === "o") term.write(frame.data);
    else if (frame.kind === "r") {
      const m = /^(\d+)x(\d+)$/.exec(frame.data);
      if (m) term.resize(clamp(Number(m[1]), 20, 300), clamp(Number(m[2]), 5, 100));
    }
    // "i" (what was typed) is echoed by the remote side as output; not written twice.
  }
  function label(seconds: number) {
    return `${seconds.toFixed(1)} s / ${cast.duration.toFixed(1)} s`;
  }
  function show() {
    seek.value = String(position);
    clock.textContent = label(position);
  }
  function tick() {
    position = Math.min(cast.duration, ((performance.now() - startedAt) / 1000) * speed.value);
    while (next < cast.frames.length && cast.frames[next]!.t <= position) write(cast.frames[next++]!);
    show();
    if (next >= cast.frames.length) {
      pause();
      position = cast.duration;
      show();
      return;
    }
    timer = window.setTimeout(tick, 30);
  }
  function play() {
    ensureOpen();
    if (next >= cast.frames.length) seekTo(0);
    playing = true;
    button.textContent = "Pause";
    startedAt = performance.now() - (position / speed.value) * 1000;
    tick();
  }
  function pause() {
    playing = false;
    button.textContent = "Play";
    if (timer !== undefined) window.clearTimeout(timer);
    timer = undefined;
  }
  function seekTo(seconds: number) {
    ensureOpen();
    const wasPlaying = playing;
    if (wasPlaying) pause();
    term.reset();
    term.resize(clamp(cast.width, 20, 300), clamp(cast.height, 5, 100));
    position = Math.max(0, Math.min(seconds, cast.duration));
    next = 0;
    let text = "";
    while (next < cast.frames.length && cast.frames[next]!.t <= position) {
      const frame = cast.frames[next++]!;
      if (frame.kind === "o") text += frame.data;
      else {
        if (text) term.write(text);
        text = "";
        write(frame);
      }
    }
    if (text) term.write(text);
    show();
    if (wasPlaying) play();
  }

  const element = h("div", { class: "player" }, h("div", { class: "controls" }, button, seek, clock, speeds), screen);
  // Opened once it is in the document (xterm measures its container).
  queueMicrotask(() => ensureOpen());
  return element;
}

function clamp(n: number, lo: number, hi: number): number {
  return Math.max(lo, Math.min(hi, Math.round(n)));
}

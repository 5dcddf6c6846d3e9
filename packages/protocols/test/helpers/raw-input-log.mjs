#!/usr/bin/env node
// Runs inside a tmux pane: puts the pane's terminal in raw mode (as sshd's pty is for a shell that
// does its own line editing), asks for bracketed paste as bash 5.1+ does, and appends every input
// chunk to LOG exactly as the terminal sent it.
import { appendFileSync, writeFileSync } from "node:fs";

const log = process.argv[2];
process.stdin.setRawMode(true);
process.stdout.write("\x1b[?2004h");
process.stdin.on("data", (chunk) => appendFileSync(log, chunk));
writeFileSync(`${log}.ready`, "");

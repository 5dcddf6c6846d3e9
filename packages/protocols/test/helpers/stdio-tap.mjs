#!/usr/bin/env node
// `node stdio-tap.mjs LOG PROGRAM [ARGS...]`: runs PROGRAM, relays this process's stdio to it and
// appends every chunk, in the order this process saw them, to LOG as records: direction byte
// ("c" client→program, "s" program→client), uint32 BE length, bytes. Used as `sftp -D` (PROGRAM =
// sftp-server) and, via fake-ssh.sh, as the "remote" of `scp -O` (PROGRAM = sh -c "scp -t …").
import { spawn } from "node:child_process";
import { openSync, writeSync } from "node:fs";

const [log, program, ...args] = process.argv.slice(2);
const fd = openSync(log, "a");
const child = spawn(program, args, { stdio: ["pipe", "pipe", "inherit"] });

function record(direction, chunk) {
  const header = Buffer.alloc(5);
  header.write(direction, 0, "latin1");
  header.writeUInt32BE(chunk.length, 1);
  writeSync(fd, header);
  writeSync(fd, chunk);
}

process.stdin.on("data", (chunk) => {
  record("c", chunk);
  child.stdin.write(chunk);
});
process.stdin.on("end", () => child.stdin.end());
child.stdin.on("error", () => {});
child.stdout.on("data", (chunk) => {
  record("s", chunk);
  process.stdout.write(chunk);
});
child.on("exit", (code) => process.exit(code ?? 1));

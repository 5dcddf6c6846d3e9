#!/usr/bin/env node
// Run by `sftp -D "node sftp-tap.mjs LOG [server args]"`: relays sftp's stdio to a real
// /usr/lib/openssh/sftp-server and appends every chunk, in the order this process saw them, to LOG
// as records: direction byte ("c" client→server, "s" server→client), uint32 BE length, bytes.
import { spawn } from "node:child_process";
import { openSync, writeSync } from "node:fs";

const [log, ...args] = process.argv.slice(2);
const fd = openSync(log, "a");
const server = spawn(process.env.SFTP_SERVER ?? "/usr/lib/openssh/sftp-server", args, { stdio: ["pipe", "pipe", "inherit"] });

function record(direction, chunk) {
  const header = Buffer.alloc(5);
  header.write(direction, 0, "latin1");
  header.writeUInt32BE(chunk.length, 1);
  writeSync(fd, header);
  writeSync(fd, chunk);
}

process.stdin.on("data", (chunk) => {
  record("c", chunk);
  server.stdin.write(chunk);
});
process.stdin.on("end", () => server.stdin.end());
server.stdout.on("data", (chunk) => {
  record("s", chunk);
  process.stdout.write(chunk);
});
server.on("exit", (code) => process.exit(code ?? 1));

// Summarizes a V8 .cpuprofile (from `node --cpu-prof`, e.g. the gateway and
// connector run under a benchmark with GATEHOUSE_NODE_FLAGS="--cpu-prof
// --cpu-prof-dir=DIR"): self time per function, and self time per package or
// file, so "where does the time go" has a short answer.
//   node bench/cpuprofile-top.mjs FILE.cpuprofile [N] [--last SECONDS]
// --last keeps only the samples of the profile's last SECONDS (the measured
// phase, without the process's start).
import { readFileSync } from "node:fs";

const args = process.argv.slice(2);
const lastAt = args.indexOf("--last");
const lastUs = lastAt >= 0 ? Number(args.splice(lastAt, 2)[1]) * 1e6 : Infinity;
const [file, count = "25"] = args;
if (!file) {
  console.error("usage: node bench/cpuprofile-top.mjs FILE.cpuprofile [N]");
  process.exit(2);
}
const profile = JSON.parse(readFileSync(file, "utf8"));
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const self = new Map();
const deltas = profile.timeDeltas;
const times = [];
let t = profile.startTime;
for (const delta of deltas) times.push((t += delta));
const from = profile.endTime - lastUs;
profile.samples.forEach((id, i) => {
  if (times[i] >= from) self.set(id, (self.get(id) ?? 0) + (deltas[i] ?? 0));
});
const total = [...self.values()].reduce((a, b) => a + b, 0);

/** Where a function lives: a workspace package, a dependency, node's internals, or (program)/(idle)/(gc). */
function place(url) {
  if (!url) return "";
  const dep = /node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (dep) return dep[1];
  const ours = /\/packages\/([^/]+)\/dist\/(.*)$/.exec(url);
  if (ours) return `@gatehouse/${ours[1]} ${ours[2]}`;
  if (url.startsWith("node:")) return url;
  return url.replace(/^file:\/\//, "");
}

const fns = new Map();
const places = new Map();
for (const [id, us] of self) {
  const { callFrame: f } = byId.get(id);
  const where = place(f.url);
  const key = `${f.functionName || "(anonymous)"}  ${where}${f.url ? `:${f.lineNumber + 1}` : ""}`;
  fns.set(key, (fns.get(key) ?? 0) + us);
  const group = where.startsWith("@gatehouse/") ? where : where.startsWith("node:") ? "node internals" : where || f.functionName;
  places.set(group, (places.get(group) ?? 0) + us);
}
// Inclusive time: every function on a sampled stack, once per sample.
const parent = new Map();
for (const n of profile.nodes) for (const child of n.children ?? []) parent.set(child, n.id);
const inclusive = new Map();
for (const [id, us] of self) {
  const seen = new Set();
  for (let at = id; at !== undefined; at = parent.get(at)) {
    const { callFrame: f } = byId.get(at);
    if (f.functionName === "(root)") continue;
    const key = `${f.functionName || "(anonymous)"}  ${place(f.url)}${f.url ? `:${f.lineNumber + 1}` : ""}`;
    if (seen.has(key)) continue;
    seen.add(key);
    inclusive.set(key, (inclusive.get(key) ?? 0) + us);
  }
}
const pct = (us) => `${((100 * us) / total).toFixed(1).padStart(5)}%`;
console.log(`${file}: ${(total / 1e6).toFixed(1)} s sampled`);
console.log("\nself time by function");
for (const [k, us] of [...fns].sort((a, b) => b[1] - a[1]).slice(0, Number(count))) console.log(`${pct(us)}  ${k}`);
console.log("\nself time by package / file");
for (const [k, us] of [...places].sort((a, b) => b[1] - a[1]).slice(0, Number(count))) console.log(`${pct(us)}  ${k}`);
console.log("\ninclusive time by function");
for (const [k, us] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, Number(count) * 2)) console.log(`${pct(us)}  ${k}`);

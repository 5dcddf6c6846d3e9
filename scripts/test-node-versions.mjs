// Runs the pure unit suites (packages/proto, packages/protocols) on the other
// Node.js majors the README promises (>= 20.19: CI's own Node runs
// everything, this adds 22 and 24), so a difference between Node versions
// (Buffer's pool size, say) fails CI instead of a user.
//
// Each Node is the npm registry's `node-<platform>-<arch>` package (what the
// npm package `node` installs), fetched with `npm pack` into .cache/node-<major>
// under the checkout the first time and reused after. The suites run side by
// side (they mostly wait on timers), each writing a vitest JSON report,
// .vitest-report-node<major>.json, that scripts/run-tests.mjs adds to its total.
//
//   node scripts/test-node-versions.mjs            # 22 and 24
//   GATEHOUSE_NODE_VERSIONS="24" node scripts/...  # only these majors
//   GATEHOUSE_NODE_VERSIONS="" node scripts/...    # none (offline: nothing to fetch)
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const VERSIONS = (process.env.GATEHOUSE_NODE_VERSIONS ?? "22 24").split(/[\s,]+/).filter(Boolean);
const SUITES = ["packages/proto", "packages/protocols"];
export const reportName = (major) => `.vitest-report-node${major}.json`;

/** The cached Node binary for `major`, fetched first when missing. Throws with the reason when it cannot be. */
function ensureNode(major) {
  const dir = join(ROOT, ".cache", `node-${major}`);
  const bin = join(dir, "bin", "node");
  if (existsSync(bin)) return bin;
  const name = `node-${process.platform}-${process.arch}@${major}`;
  const work = mkdtempSync(join(tmpdir(), "gatehouse-node-"));
  try {
    const packed = spawnSync("npm", ["pack", "--silent", "--pack-destination", work, name], { encoding: "utf8" });
    if (packed.status !== 0) throw new Error(`npm pack ${name} failed: ${packed.stderr.trim() || packed.stdout.trim()}`);
    const tarball = join(work, packed.stdout.trim().split("\n").pop());
    const unpacked = join(work, "unpacked");
    mkdirSync(unpacked);
    const untar = spawnSync("tar", ["xzf", tarball, "-C", unpacked, "--strip-components=1"], { encoding: "utf8" });
    if (untar.status !== 0) throw new Error(`unpacking ${tarball} failed: ${untar.stderr.trim()}`);
    mkdirSync(dirname(dir), { recursive: true });
    rmSync(dir, { recursive: true, force: true });
    // Moved into place only when complete, so an interrupted fetch is not mistaken for a cached Node.
    renameSync(unpacked, dir);
    return bin;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** Runs one suite with `node`; resolves with its exit code and output (printed by the caller on failure). */
function runSuite(node, major, suite) {
  const cwd = join(ROOT, suite);
  const args = [join(cwd, "node_modules/vitest/vitest.mjs"), "run", "--reporter=dot", "--reporter=json", `--outputFile.json=${reportName(major)}`];
  return new Promise((res) => {
    const child = spawn(node, args, { cwd, env: { ...process.env, FORCE_COLOR: "0" }, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (t) => (output += t));
    child.stderr.on("data", (t) => (output += t));
    child.once("error", (err) => res({ code: 1, output: `${output}${err.message}\n` }));
    child.once("close", (code) => res({ code: code ?? 1, output }));
  });
}

async function main() {
  for (const suite of SUITES) {
    for (const file of readdirSync(join(ROOT, suite))) if (/^\.vitest-report-node\d+\.json$/.test(file)) rmSync(join(ROOT, suite, file));
  }
  if (VERSIONS.length === 0) {
    console.log("node versions: none asked for (GATEHOUSE_NODE_VERSIONS is empty)");
    return 0;
  }
  const started = Date.now();
  const runs = [];
  let failed = false;
  for (const major of VERSIONS) {
    let node;
    try {
      node = ensureNode(major);
    } catch (error) {
      console.log(`node ${major}: cannot install it: ${error.message}`);
      failed = true;
      continue;
    }
    const version = spawnSync(node, ["--version"], { encoding: "utf8" }).stdout.trim();
    for (const suite of SUITES) runs.push(runSuite(node, major, suite).then((r) => ({ ...r, major, version, suite })));
  }
  for (const run of await Promise.all(runs)) {
    const verdict = run.code === 0 ? "passed" : "FAILED";
    console.log(`node ${run.version}: ${run.suite} ${verdict}`);
    if (run.code !== 0) {
      console.log(run.output);
      failed = true;
    }
  }
  console.log(`node versions ${VERSIONS.join(", ")}: unit suites of ${SUITES.join(", ")} in ${((Date.now() - started) / 1000).toFixed(0)} s`);
  return failed ? 1 : 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) process.exitCode = await main();

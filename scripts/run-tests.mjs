// Runs the typecheck and every package's tests through turbo, then the pure
// unit suites on the other Node majors the README promises
// (scripts/test-node-versions.mjs), and prints one closing line summing them
// all ("N passed, N failed, N skipped") from each vitest JSON report, so CI
// and people read the same verdict.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";

const REPORT = ".vitest-report.json";
const packages = ["packages/proto", "packages/protocols", "packages/store", "packages/gateway", "packages/connector", "packages/cli", "packages/test-servers", "e2e", "deploy"];
for (const dir of packages) rmSync(join(dir, REPORT), { force: true });

const typecheck = spawnSync("pnpm", ["exec", "turbo", "run", "typecheck", "--output-logs=errors-only"], { stdio: "inherit" });
const tests = spawnSync(
  "pnpm",
  ["exec", "turbo", "run", "test", "--concurrency=2", "--continue", "--", "--reporter=default", "--reporter=json", `--outputFile.json=${REPORT}`, ...process.argv.slice(2)],
  { stdio: "inherit" },
);
const otherNodes = spawnSync(process.execPath, ["scripts/test-node-versions.mjs"], { stdio: "inherit" });

let passed = 0, failed = 0, skipped = 0;
const missing = [];
for (const dir of packages) {
  const file = join(dir, REPORT);
  if (!existsSync(file)) {
    missing.push(dir);
    continue;
  }
  const report = JSON.parse(readFileSync(file, "utf8"));
  passed += report.numPassedTests;
  failed += report.numFailedTests;
  skipped += report.numPendingTests + report.numTodoTests;
  // A suite that failed to load counts as a failure even with no test results.
  failed += report.testResults.filter((r) => r.status === "failed" && r.assertionResults.length === 0).length;
}
// The other Node versions' reports (.vitest-report-node22.json...): counted the same way.
for (const dir of packages) {
  for (const name of readdirSync(dir).filter((f) => /^\.vitest-report-node\d+\.json$/.test(f))) {
    const report = JSON.parse(readFileSync(join(dir, name), "utf8"));
    passed += report.numPassedTests;
    failed += report.numFailedTests + report.testResults.filter((r) => r.status === "failed" && r.assertionResults.length === 0).length;
    skipped += report.numPendingTests + report.numTodoTests;
  }
}
if (missing.length) console.log(`no test report from: ${missing.join(", ")}`);
if (typecheck.status !== 0) console.log("typecheck failed");
if (otherNodes.status !== 0) console.log("the unit suites failed (or could not run) on another Node version");
console.log(`${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(typecheck.status === 0 && tests.status === 0 && otherNodes.status === 0 && failed === 0 && missing.length === 0 ? 0 : 1);

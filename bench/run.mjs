// `pnpm bench NAME`: runs bench/NAME/run.ts with tsx. Benchmarks are not
// tests: they measure, print a table, and end with a one-line JSON summary.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const available = readdirSync(here, { withFileTypes: true })
  .filter((d) => d.isDirectory() && existsSync(join(here, d.name, "run.ts")))
  .map((d) => d.name);
const [name, ...rest] = process.argv.slice(2);
if (!name || !available.includes(name)) {
  console.error(`usage: pnpm bench ${available.join("|")} [options]`);
  process.exit(2);
}
const result = spawnSync(process.execPath, ["--import", "tsx", join(here, name, "run.ts"), ...rest], { stdio: "inherit", cwd: here });
process.exit(result.status ?? 1);

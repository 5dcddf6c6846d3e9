// tsc does not emit the generated JavaScript; copy it (and its types) next to the compiled code.
import { copyFileSync, mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";

const from = fileURLToPath(new URL("../src/gen/", import.meta.url));
const to = fileURLToPath(new URL("../dist/gen/", import.meta.url));
mkdirSync(to, { recursive: true });
for (const file of ["tunnel.js", "tunnel.d.ts"]) copyFileSync(from + file, to + file);

/** Captured relay traffic: the chunks of both directions in the order a gateway saw them. */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export interface Fixture {
  readonly description: string;
  readonly chunks: readonly { readonly from: "frontend" | "backend"; readonly bytes: Uint8Array }[];
}

const DIR = join(import.meta.dirname, "..", "fixtures");

export function saveFixture(name: string, fixture: Fixture): void {
  const json = {
    description: fixture.description,
    chunks: fixture.chunks.map((c) => ({ from: c.from, base64: Buffer.from(c.bytes).toString("base64") })),
  };
  writeFileSync(join(DIR, `${name}.json`), `${JSON.stringify(json, null, 1)}\n`);
}

export function loadFixture(name: string): Fixture {
  const json = JSON.parse(readFileSync(join(DIR, `${name}.json`), "utf8")) as {
    description: string;
    chunks: { from: "frontend" | "backend"; base64: string }[];
  };
  return {
    description: json.description,
    chunks: json.chunks.map((c) => ({ from: c.from, bytes: new Uint8Array(Buffer.from(c.base64, "base64")) })),
  };
}

export const FIXTURES = ["psql-simple", "psql-copy", "pgbench-extended", "pgbench-prepared"] as const;

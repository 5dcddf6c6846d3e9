import { describe, expect, it } from "vitest";
import { leadingKeyword, splitStatements } from "./sql-split.js";

const pieces = (sql: string, standardConformingStrings = true): string[] =>
  splitStatements(sql, { standardConformingStrings }).map((s) => sql.slice(s.start, s.end));

describe("splitStatements", () => {
  it("splits on top-level semicolons and trims", () => {
    expect(pieces("SELECT 1; SELECT 2 ;\n  SELECT 3")).toEqual(["SELECT 1", "SELECT 2", "SELECT 3"]);
    expect(pieces("SELECT 1")).toEqual(["SELECT 1"]);
  });

  it("drops empty statements and comment-only ones, as the server does", () => {
    expect(pieces(";;SELECT 1;;  ;SELECT 2;")).toEqual(["SELECT 1", "SELECT 2"]);
    expect(pieces("")).toEqual([]);
    expect(pieces("  -- nothing\n /* at all */ ;")).toEqual([]);
    expect(pieces("SELECT 1; -- trailing comment")).toEqual(["SELECT 1"]);
  });

  it("keeps leading comments with their statement", () => {
    expect(pieces("/* app=x */ SELECT 1; -- why\nSELECT 2")).toEqual(["/* app=x */ SELECT 1", "-- why\nSELECT 2"]);
  });

  it("ignores semicolons in strings, identifiers, dollar quotes and comments", () => {
    expect(pieces("SELECT 'a;b', \"c;d\" ; SELECT 2")).toEqual(["SELECT 'a;b', \"c;d\"", "SELECT 2"]);
    expect(pieces("SELECT 'it''s;'; SELECT 2")).toEqual(["SELECT 'it''s;'", "SELECT 2"]);
    expect(pieces("SELECT E'\\';'; SELECT 2")).toEqual(["SELECT E'\\';'", "SELECT 2"]);
    expect(pieces("DO $$ BEGIN PERFORM 1; END $$; SELECT 2")).toEqual(["DO $$ BEGIN PERFORM 1; END $$", "SELECT 2"]);
    expect(pieces("SELECT $fn$ a; $x$ b; $fn$; SELECT 2")).toEqual(["SELECT $fn$ a; $x$ b; $fn$", "SELECT 2"]);
    expect(pieces("SELECT 1 /* a; /* nested; */ b; */; SELECT 2")).toEqual(["SELECT 1 /* a; /* nested; */ b; */", "SELECT 2"]);
    expect(pieces("SELECT 1 -- a; b\n; SELECT 2")).toEqual(["SELECT 1 -- a; b", "SELECT 2"]);
  });

  it("does not take $1 or a$b for dollar quotes", () => {
    expect(pieces("SELECT $1; SELECT a$b$; SELECT 3")).toEqual(["SELECT $1", "SELECT a$b$", "SELECT 3"]);
  });

  it("treats backslash as an escape in plain strings only when standard_conforming_strings is off", () => {
    expect(pieces("SELECT 'a\\'; SELECT 2")).toEqual(["SELECT 'a\\'", "SELECT 2"]);
    expect(pieces("SELECT 'a\\'; SELECT 2'; SELECT 3", false)).toEqual(["SELECT 'a\\'; SELECT 2'", "SELECT 3"]);
  });

  it("keeps parenthesised rule actions and BEGIN ATOMIC bodies whole", () => {
    const rule = "CREATE RULE r AS ON INSERT TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2))";
    expect(pieces(`${rule}; SELECT 1`)).toEqual([rule, "SELECT 1"]);
    const fn =
      "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN true THEN 1 END; SELECT 2; END";
    expect(pieces(`${fn}; SELECT 3`)).toEqual([fn, "SELECT 3"]);
  });

  it("survives unterminated constructs (the rest is one statement)", () => {
    expect(pieces("SELECT 'oops; SELECT 2")).toEqual(["SELECT 'oops; SELECT 2"]);
    expect(pieces("SELECT $$ oops; SELECT 2")).toEqual(["SELECT $$ oops; SELECT 2"]);
    expect(pieces("SELECT 1 /* oops; SELECT 2")).toEqual(["SELECT 1 /* oops; SELECT 2"]);
  });
});

describe("leadingKeyword", () => {
  it("skips whitespace, comments and parentheses", () => {
    expect(leadingKeyword("  copy t from stdin")).toBe("COPY");
    expect(leadingKeyword("/* x */ -- y\n (SELECT 1)")).toBe("SELECT");
    expect(leadingKeyword("  ")).toBe("");
    expect(leadingKeyword("'str'")).toBe("");
  });
});

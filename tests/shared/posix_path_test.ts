/** The start-up-friendly path helpers agree with node:path (POSIX) on the shapes of path we meet. */
import assert from "node:assert/strict";
import * as node from "node:path";
import { fileURLToPath } from "node:url";
import { basename, dirname, fileUrlToPath, isAbsolute, join, resolve } from "../../src/shared/mod.ts";

const PATHS = [
  "",
  ".",
  "..",
  "/",
  "//",
  "a",
  "a/",
  "/a",
  "/a/",
  "a/b",
  "/a/b/c",
  "a//b",
  "/a/./b",
  "/a/../b",
  "../a",
  "a/../..",
  "/..",
  "./x/../y/",
  "/tmp/ojf-1/state.sqlite3",
];

Deno.test("join, resolve, dirname, basename and isAbsolute match node:path", () => {
  for (const a of PATHS) {
    assert.equal(dirname(a), node.dirname(a), `dirname(${a})`);
    assert.equal(basename(a), node.basename(a), `basename(${a})`);
    assert.equal(isAbsolute(a), node.isAbsolute(a), `isAbsolute(${a})`);
    assert.equal(resolve(a), node.resolve(a), `resolve(${a})`);
    for (const b of ["jobs", "locks/x.lock", "../up", "/abs", ""]) {
      if (!a.endsWith("/") && !b.endsWith("/")) assert.equal(join(a, b), node.join(a, b), `join(${a}, ${b})`);
      assert.equal(resolve(a, b), node.resolve(a, b), `resolve(${a}, ${b})`);
    }
  }
});

Deno.test("fileUrlToPath matches node:url", () => {
  for (const url of ["file:///tmp/a%20b/main.ts", "file:///work/x.ts", new URL("../deno.json", import.meta.url).href]) {
    assert.equal(fileUrlToPath(url), fileURLToPath(url));
  }
});

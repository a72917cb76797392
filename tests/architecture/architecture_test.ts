/** The layer rules hold for src/, and the checks that enforce them do catch what they name. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { importGraph, specifiers } from "./graph.ts";
import { findCycle, REPO } from "./layers.ts";
import plugin, { MAX_FUNCTION_LINES, YAML_LOADER } from "./lint_plugin.ts";

Deno.test("src/ follows the layer rules: no wrong-way import, no bypassed mod.ts, no cycle between layers", () => {
  const graph = importGraph();
  assert.ok(graph.edges.length > 100, "the scan found the imports");
  assert.deepEqual(graph.violations, []);
  assert.equal(graph.cycle, null);
  const imports = (layer: string) => [...graph.layers.get(layer as never) ?? []].sort();
  assert.deepEqual(imports("domain"), []);
  assert.deepEqual(imports("flow"), ["domain"]);
  assert.deepEqual(imports("store").filter((l) => l !== "shared"), ["domain"]);
  assert.ok(!imports("engine").includes("store") && !imports("engine").includes("cli"));
});

function lint(path: string, source: string): string[] {
  return Deno.lint.runPlugin(plugin, join(REPO, path), source).map((d) => d.message);
}

Deno.test("the lint rules report wrong-way imports, bypassed mod.ts files and unknown packages", () => {
  assert.deepEqual(lint("src/engine/x.ts", 'import { RunStore } from "../store/mod.ts";\n'), [
    "wrong-way import: engine may not import store (src/store/mod.ts)",
  ]);
  assert.deepEqual(lint("src/store/x.ts", 'export { decide } from "../engine/mod.ts";\n'), [
    "wrong-way import: store may not import engine (src/engine/mod.ts)",
  ]);
  assert.deepEqual(lint("src/cli/x.ts", 'import { decide } from "../engine/decide.ts";\n'), [
    "import src/engine/decide.ts through src/engine/mod.ts",
  ]);
  assert.deepEqual(lint("src/cli/x.ts", 'import { runJson } from "./render/run_json.ts";\n'), [
    "import src/cli/render/run_json.ts through src/cli/render/mod.ts",
  ]);
  assert.deepEqual(lint("src/engine/x.ts", 'import { parse } from "yaml";\n'), [
    'engine may not import the package "yaml"',
  ]);
  // Allowed: a layer below, through its mod.ts; a file of the same folder; node built-ins.
  assert.deepEqual(
    lint(
      "src/engine/x.ts",
      'import { x } from "../domain/mod.ts";\nimport { y } from "./decide.ts";\nimport "node:fs";\n',
    ),
    [],
  );
});

Deno.test('in src/, only the library loader takes values from "yaml"; types may come from anywhere in flow', () => {
  const message = `take the YAML library's values from ${YAML_LOADER} (import type from "yaml" is fine)`;
  for (
    const source of [
      'import { isMap } from "yaml";\n',
      'import * as Y from "yaml";\n',
      'import { type Node, isMap } from "yaml";\n',
      'import "yaml";\n',
      'export { parse } from "yaml";\n',
      'export * from "yaml";\n',
      'const y = await import("yaml");\n',
    ]
  ) assert.deepEqual(lint("src/flow/x.ts", source), [message], source);
  for (
    const source of [
      'import type { Node } from "yaml";\n',
      'import { type Node, type YAMLMap } from "yaml";\n',
      'import type * as Yaml from "yaml";\n',
      'export type { Node } from "yaml";\n',
    ]
  ) assert.deepEqual(lint("src/flow/x.ts", source), [], source);
  assert.deepEqual(lint(YAML_LOADER, 'const y = await import("yaml");\n'), []);
  assert.deepEqual(lint("tests/x_test.ts", 'import { parse } from "yaml";\n'), [], "tests may");
});

Deno.test(`the lint rules report a function longer than ${MAX_FUNCTION_LINES} lines in src/`, () => {
  const body = (lines: number) => `export function f() {\n${"  f();\n".repeat(lines - 2)}}\n`;
  assert.deepEqual(lint("src/flow/x.ts", body(MAX_FUNCTION_LINES)), []);
  assert.deepEqual(lint("src/flow/x.ts", body(MAX_FUNCTION_LINES + 1)), [
    `function of ${MAX_FUNCTION_LINES + 1} lines (at most ${MAX_FUNCTION_LINES}): split it`,
  ]);
  const method = `class C {\n  m() {\n${"    this.m();\n".repeat(70)}  }\n}\n`;
  assert.equal(lint("src/flow/x.ts", method).length, 1, "methods count too");
  assert.deepEqual(lint("tests/x_test.ts", body(100)), [], "tests are not held to it");
});

Deno.test("the import scan sees every form, and the cycle finder finds a cycle", () => {
  assert.deepEqual(
    specifiers(
      'import { a } from "./a.ts";\nimport type {\n  B,\n} from "./b.ts";\nexport * from "./c.ts";\nimport "./d.ts";\n',
    ),
    ["./a.ts", "./b.ts", "./c.ts", "./d.ts"],
  );
  const graph = new Map([["cli", new Set(["engine"])], ["engine", new Set(["store"])], ["store", new Set(["engine"])]]);
  assert.deepEqual(findCycle(graph), ["engine", "store", "engine"]);
  assert.equal(findCycle(new Map([["cli", new Set(["engine"])], ["engine", new Set<string>()]])), null);
});

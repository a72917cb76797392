import assert from "node:assert/strict";
import { importYamlLibrary, loadYamlLibrary, yamlModuleBuild } from "../../src/flow/yaml_library.ts";

Deno.test("the library is loaded from its ES-module build, in the same locked package as its own entry", async () => {
  const build = yamlModuleBuild();
  assert.ok(build !== null, "the package entry was not where the ES build is looked for");
  const entry = import.meta.resolve("yaml");
  assert.equal(build, entry.replace(/\/dist\/index\.js$/, "/browser/index.js"));
  const esm = await import(build);
  const loaded = await loadYamlLibrary();
  // The very module objects of the ES build: not the CommonJS one's, which are other functions.
  assert.equal(loaded.parseDocument, esm.parseDocument);
  assert.notEqual(loaded.parseDocument, (await import("yaml")).parseDocument);
  assert.deepEqual(loaded.parse("a: [1, {b: c}]"), { a: [1, { b: "c" }] });
});

Deno.test("without the ES-module build the package's own entry is used", async () => {
  const own = await import("yaml");
  for (const missing of [null, new URL("./no-such-build/index.js", import.meta.url).href]) {
    const loaded = await importYamlLibrary(missing);
    assert.equal(loaded.parseDocument, own.parseDocument);
  }
});

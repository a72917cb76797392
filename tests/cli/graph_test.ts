/** `graph` through the CLI against golden files, and the renderer's edge rules. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadFlow } from "../../src/flow/load.ts";
import { graphEdges } from "../../src/flow/graph.ts";
import { renderGraph } from "../../src/cli/render/graph.ts";
import { cli, errorLine, REPO } from "../helpers.ts";
import { loadYamlLibrary } from "../../src/flow/mod.ts";

await loadYamlLibrary();

const GOLDEN = join(REPO, "tests", "fixtures", "graph");
const EXTENSIONS = { mermaid: "mmd", dot: "dot", text: "txt" } as const;
const EXAMPLES = [
  "branching-hello-flow",
  "branching-hello-failure-flow",
  "branching-hello-parens-flow",
  "fan-out-limited-flow",
];

Deno.test("graph prints the golden picture of each branching example in every format", async () => {
  for (const example of EXAMPLES) {
    for (const [format, extension] of Object.entries(EXTENSIONS)) {
      const result = await cli(["graph", "--format", format, `examples/${example}.yaml`]);
      assert.equal(result.code, 0, result.stderr);
      const golden = Deno.readTextFileSync(join(GOLDEN, `${example}.${extension}`));
      assert.equal(result.stdout, golden, `${example} as ${format}`);
    }
  }
  // mermaid is the default format.
  const plain = await cli(["graph", "examples/branching-hello-flow.yaml"]);
  assert.equal(plain.stdout, Deno.readTextFileSync(join(GOLDEN, "branching-hello-flow.mmd")));
});

Deno.test("graph refuses a bad format and a bad file with one JSON error line", async () => {
  const format = await cli(["graph", "--format", "svg", "examples/branching-hello-flow.yaml"]);
  assert.equal(format.code, 2);
  assert.match(errorLine(format).error, /--format must be one of mermaid, dot, text/);
  const missing = await cli(["graph", "nope.yaml"]);
  assert.equal(missing.code, 2);
  assert.match(errorLine(missing).error, /cannot read flow file nope\.yaml/);
});

Deno.test("edges: labelled with the target's when; depends_on entries outside the when are wait-only", () => {
  const flow = loadFlow(
    `flow_id: g
steps:
  - {id: a.b, command: [x]}
  - {id: c-d, command: [x]}
  - {id: e, depends_on: [a.b], when: "!c-d", command: [x]}
  - {id: f, depends_on: [e], command: [x]}
`,
    "g.yaml",
  );
  assert.deepEqual(graphEdges(flow), [
    { from: "a.b", to: "e", when: null, waitOnly: true },
    { from: "c-d", to: "e", when: "!c-d", waitOnly: false },
    { from: "e", to: "f", when: "e", waitOnly: false },
  ]);
  // Ids that are not plain words get positional Mermaid ids; the label keeps the real id.
  assert.equal(
    renderGraph(flow, "mermaid", new Map([["a.b", "SUCCEEDED"], ["c-d", "FAILED"], ["e", "SKIPPED"]])),
    `flowchart TD
  s0["a.b · SUCCEEDED"]
  s1["c-d · FAILED"]
  s_e["e · SKIPPED"]
  s_f["f"]
  s0 -.-> s_e
  s1 -->|"!c-d"| s_e
  s_e -->|"e"| s_f
  classDef SUCCEEDED fill:#e8f5e9,stroke:#2e7d32
  classDef FAILED fill:#ffebee,stroke:#c62828
  classDef SKIPPED fill:#fafafa,stroke:#bdbdbd,stroke-dasharray:3 3
  class s0 SUCCEEDED
  class s1 FAILED
  class s_e SKIPPED
`,
  );
});

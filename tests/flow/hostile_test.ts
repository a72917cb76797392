/** Issue 10: YAML forms and hostile shapes the loader must read as written, or refuse cleanly. */
import assert from "node:assert/strict";
import { FlowError, loadFlow, loadFlowBytes } from "../../src/flow/load.ts";
import { conditionJson, evaluateWhen, formatWhen, parseWhen, referencedIds } from "../../src/flow/when.ts";
import { findCycle } from "../../src/flow/graph.ts";
import { allSucceeded } from "../../src/flow/when.ts";
import { LIMITS } from "../../src/flow/limits.ts";
import { thrown } from "../helpers.ts";
import { clipped, shown, SHOWN_CHARS } from "../../src/flow/fields.ts";
import { loadYamlLibrary } from "../../src/flow/mod.ts";

// loadFlow needs the YAML library, which the CLI imports only when it reads a flow file.
await loadYamlLibrary();

const HEAD = "flow_id: f\nsteps:\n  - id: a\n    command: [x]\n  - id: c\n    command: [x]\n";

function whenOfD(text: string): string {
  const d = loadFlow(text, "f.yaml").steps.find((s) => s.id === "d")!;
  return formatWhen(d.condition!);
}

function error(text: string, file = "f.yaml"): string {
  return thrown(() => loadFlow(text, file), FlowError).message;
}

Deno.test("an unquoted when starting with ! means the text written in every YAML form", () => {
  const forms: [string, string, string][] = [
    ["same line", "    when: !a && c\n", "!a && c"],
    ["next line", "    when:\n      !a && c\n", "!a && c"],
    ["explicit key", "    ? when\n    : !a && c\n", "!a && c"],
    ["explicit key, next line", "    ? when\n    :\n      !a && c\n", "!a && c"],
    ["continuation line", "    when: !a\n      && c\n", "!a && c"],
    ["|| continuation", "    when: !a ||\n      !c\n", "!a || !c"],
    ["three lines with a blank", "    when: !a\n\n      ||\n      !c\n", "!a || !c"],
    ["comment after", "    when: !a && c   # note\n", "!a && c"],
    ["quoted key", '    "when": !a && c\n', "!a && c"],
    ["CRLF", "    when: !a\r\n      && c\r\n", "!a && c"],
    ["tab after the colon", "    when:\t!a && c\n", "!a && c"],
    ["no blanks", "    when: !a&&c\n", "!a && c"],
    ["parenthesis", "    when: !(a || c)\n", "!(a || c)"],
    ["non-specific tag form", "    when: ! a && c\n", "!a && c"],
    ["double bang", "    when: !!a && c\n", "!!a && c"],
    ["space before the colon", "    when : !a && c\n", "!a && c"],
    ["comment between key and value", "    when: # note\n      !a && c\n", "!a && c"],
    ["next line, continued less indented", "    when:\n      !a\n     && c\n", "!a && c"],
    ["explicit key with a comment", "    ? when # k\n    : !a && c\n", "!a && c"],
    ["explicit key, continued", "    ? when\n    : !a\n      && c\n", "!a && c"],
    ["anchor before the value", "    when: &w !a && c\n", "!a && c"],
    ["anchor with a non-specific tag", "    when: &w ! a && c\n", "!a && c"],
    ["literal block scalar", "    when: |\n      !a && c\n", "!a && c"],
    ["folded block scalar", "    when: >\n      !a &&\n      c\n", "!a && c"],
  ];
  for (const [name, when, expected] of forms) {
    const text = `${HEAD}  - id: d\n    command: [x]\n${when}`;
    assert.equal(whenOfD(text), expected, name);
    // The same with `when` first in the step, so the value is followed by more fields.
    const first = `${HEAD}  - id: d\n${when}    command: [x]\n`;
    assert.equal(whenOfD(first), expected, `${name} (followed by a field)`);
  }
  assert.equal(whenOfD(`${HEAD}  - {id: d, when: !a && c, command: [x]}\n`), "!a && c");
  assert.equal(whenOfD(`${HEAD}  - {id: d, when: !a\n      || !c, command: [x]}\n`), "!a || !c");
  assert.equal(whenOfD(`${HEAD}  - {id: d, command: [x], when: !a || !c}\n`), "!a || !c");
  assert.equal(whenOfD(`${HEAD}  - id: d\n    command: [x]\n    when: "!a && c"\n`), "!a && c");
  assert.equal(whenOfD(`${HEAD}  - {id: d, command: [x], ? when : !a && c}\n`), "!a && c");
  assert.equal(whenOfD(`${HEAD}  - {id: d, command: [x], "when":!a && c}\n`), "!a && c");
  assert.equal(whenOfD(`${HEAD}  - {id: d, command: [x], when:\n     !a && c}\n`), "!a && c");
  assert.equal(whenOfD(`${HEAD}  - when: !a\n     && c\n    id: d\n    command: [x]\n`), "!a && c");
  assert.equal(whenOfD(`${HEAD}  - id: d\n    command: [x]\n    when: !a\n...\n`), "!a");
  assert.equal(
    whenOfD(
      `flow_id: f\nsteps: [{id: a, command: [x]}, {id: c, command: [x]}, {id: d, command: [x], when: !a && c}]\n`,
    ),
    "!a && c",
  );
  // An anchored `when: &w !a && c` is quoted with its anchor kept, so an alias repeats the text.
  const aliased =
    `${HEAD}  - id: e\n    command: [x]\n    when: &w !a && c\n  - id: d\n    command: [x]\n    when: *w\n`;
  assert.equal(whenOfD(aliased), "!a && c");
});

Deno.test("a when value YAML would read as a tag, anchor, number or null is the text written, or refused", () => {
  const step = (when: string) => `${HEAD}  - id: d\n    command: [x]\n    ${when}\n`;
  // `&&` and `||` at the start are the operators written, so the expression error names them.
  assert.equal(
    error(step("when: && c")),
    'f.yaml:9:11: step "d": invalid when expression "&& c": unexpected \'&&\' at column 1',
  );
  assert.equal(
    error(step("when: || c")),
    'f.yaml:9:11: step "d": invalid when expression "|| c": unexpected \'||\' at column 1',
  );
  assert.match(error(step("when: &&c")), /invalid when expression "&&c"/);
  // A real tag on a quoted, block or flow value is refused, never dropped.
  const tagged = /step "d": when carries the YAML tag (\S+); write the expression in quotes without a tag/;
  assert.equal(tagged.exec(error(step('when: !!str "!a && c"')))?.[1], "!!str");
  assert.equal(tagged.exec(error(step("when: !!str |\n      !a && c")))?.[1], "!!str");
  assert.equal(tagged.exec(error(step("when: ! 'a'")))?.[1], "!");
  assert.match(error(step("when: !a |\n      && c")), /f\.yaml:9:11: unknown YAML tag !a/);
  assert.match(error(step('when: !a "x"')), /unknown YAML tag !a/);
  assert.match(error(step("when: !a [c]")), /unknown YAML tag !a/);
  // A key YAML spells differently is not seen by the rewrite; what YAML then makes of the value is refused.
  assert.match(
    error(step('"wh\\x65n": !!str && c')),
    /f\.yaml:9:25: "&&" at the start of a value is read by YAML as an anchor/,
  );
  assert.match(error(step('"wh\\x65n": !!str a')), /when carries the YAML tag !!str/);
  assert.match(error(step('"wh\\x65n": ! a')), /when carries the YAML tag !;/);
  assert.match(error(step('"wh\\x65n": !a && c')), /unknown YAML tag !a/);
  assert.match(
    error(`flow_id: f\nsteps:\n  - id: a\n    command: && echo hi\n`),
    /read by YAML as an anchor; quote the value/,
  );
  // Plain values YAML reads as numbers or booleans name the step written, as ids do; a null is no
  // `when` at all (an optional field set to null is absent), even beside a step called "null".
  const named = (id: string, when: string) =>
    whenOfD(`flow_id: f\nsteps:\n  - id: "${id}"\n    command: [x]\n  - id: d\n    command: [x]\n    when: ${when}\n`);
  assert.equal(named("12", "12"), "12");
  assert.equal(named("true", "true"), "true");
  assert.equal(named("null", '"null"'), "null");
  assert.equal(named("12", "!12"), "!12");
  assert.match(error(step("when: 0x1F")), /when refers to unknown step "0x1F"/);
  for (const none of ["when: null", "when: ~", "when:", "when: NULL"]) {
    const d = loadFlow(
      `flow_id: f\nsteps:\n  - id: "null"\n    command: [x]\n  - id: d\n    command: [x]\n    ${none}\n`,
      "f",
    );
    assert.deepEqual([d.steps[1].condition, d.steps[1].waitsFor], [null, []], none);
  }
});

Deno.test("a broken multi-line when is blamed on its own line", () => {
  assert.equal(
    error(`${HEAD}  - id: d\n    command: [x]\n    when: !a\n      &&\n`),
    'f.yaml:9:11: step "d": invalid when expression "!a &&": unexpected end of expression at column 6',
  );
});

Deno.test("aliases resolve; an alias bomb stops at the expansion limit", () => {
  const flow = loadFlow("flow_id: f\nsteps:\n  - id: a\n    command: &c [echo, hi]\n  - id: b\n    command: *c\n", "f");
  assert.deepEqual(flow.steps[1].command, ["echo", "hi"]);
  const step = loadFlow("flow_id: f\nsteps:\n  - &s {id: a, command: [x]}\n  - id: b\n    command: [y]\n", "f");
  assert.equal(step.steps.length, 2);
  let levels = "    command: [&l0 [x, x, x, x, x, x, x, x, x, x]";
  for (let i = 1; i < 9; i++) levels += `, &l${i} [${Array(10).fill(`*l${i - 1}`).join(", ")}]`;
  const bomb = `flow_id: f\nsteps:\n  - id: a\n${levels}]\n`;
  assert.match(error(bomb), new RegExp(`aliases expand to more than ${LIMITS.aliasExpansion} values`));
  assert.match(error("flow_id: f\nsteps:\n  - id: a\n    command: [*nope]\n"), /f:4:|f\.yaml:4:|alias|anchor/);
});

Deno.test("merge keys share fields: the mapping's own win, then the first mapping listed; bombs stop", () => {
  const flow = loadFlow(
    `flow_id: f
steps:
  - &base {id: a, command: [x], retries: 2, timeout_sec: 5}
  - &other {id: o, command: [y], retries: 7, strict: false}
  - <<: *base
    id: b
    retries: 3
  - {<<: [*other, *base], id: c}
`,
    "f.yaml",
  );
  const [, , b, c] = flow.steps;
  assert.deepEqual([b.id, b.command, b.retries, b.timeoutSec, b.strict], ["b", ["x"], 3, 5, true]);
  assert.deepEqual([c.id, c.command, c.retries, c.timeoutSec, c.strict], ["c", ["y"], 7, 5, false]);
  assert.match(error(`${HEAD}  - {<<: 3, id: d, command: [x]}\n`), /f\.yaml:7:10: a merge key \(<<\) takes a mapping/);
  assert.match(error(`${HEAD}  - {<<: {colour: red}, id: d, command: [x]}\n`), /unknown field "colour" in step "d"/);
  // A quoted "<<" is a key like any other.
  assert.match(error(`${HEAD}  - {"<<": *x, id: d, command: [x]}\n`), /alias \*x names no anchor|unknown field "<<"/);
  const wide = [`flow_id: f`, `steps:`, `  - &m0 {id: a, command: [x]}`];
  for (let k = 1; k < 40; k++) {
    const previous = Array.from({ length: 10 }, (_, j) => `*m${Math.max(0, k - j - 1)}`).join(", ");
    wide.push(`  - &m${k} {<<: [${previous}], id: s${k}}`);
  }
  assert.match(
    error(wide.join("\n") + "\n"),
    new RegExp(`aliases expand to more than ${LIMITS.aliasExpansion} values`),
  );
  const deep = [`flow_id: f`, `steps:`, `  - &m0 {id: a, command: [x]}`];
  for (let k = 1; k < 100; k++) deep.push(`  - &m${k} {<<: *m${k - 1}, id: s${k}}`);
  assert.match(error(deep.join("\n") + "\n"), /merge keys \(<<\) nested deeper than 64 levels/);
});

Deno.test("unknown tags are errors naming the tag", () => {
  assert.match(error(`${HEAD}  - id: d\n    command: !shell echo\n`), /f\.yaml:8:14: unknown YAML tag !shell/);
  assert.match(error(`${HEAD}  - id: d\n    command: !!python/object x\n`), /unknown YAML tag !!python\/object/);
  assert.match(error(`flow_id: !x f\nsteps: []\n`), /f\.yaml:1:10: unknown YAML tag !x/);
  assert.equal(loadFlow(`flow_id: !!str 12\nsteps:\n  - id: a\n    command: [x]\n`, "f").flowId, "12");
});

Deno.test("step ids are the text written: numbers YAML would rewrite are refused with a hint", () => {
  assert.equal(
    error(`${HEAD}  - id: 0x1F\n    command: [x]\n`),
    'f.yaml:7:9: step id 0x1F is read by YAML as the number 31; write it in quotes: id: "0x1F"',
  );
  assert.match(error(`${HEAD}  - id: 007\n    command: [x]\n`), /step id 007 is read by YAML as the number 7/);
  assert.match(error(`${HEAD}  - id: 1e3\n    command: [x]\n`), /write it in quotes: id: "1e3"/);
  assert.match(error(`${HEAD}  - id: true\n    command: [x]\n`), /step id true is read by YAML as the boolean/);
  assert.equal(loadFlow(`${HEAD}  - id: 12\n    command: [x]\n`, "f").steps[2].id, "12");
  assert.equal(loadFlow(`${HEAD}  - id: "0x1F"\n    command: [x]\n`, "f").steps[2].id, "0x1F");
});

Deno.test("a flow_id is the text written too: a number that reads back as written is taken, others refused", () => {
  const steps = "steps:\n  - id: a\n    command: [x]\n";
  assert.equal(loadFlow(`flow_id: 2024\n${steps}`, "f").flowId, "2024");
  assert.equal(loadFlow(`flow_id: -5\n${steps}`, "f").flowId, "-5");
  assert.equal(loadFlow(`{"flow_id": 77, "steps": [{"id": "a", "command": ["x"]}]}`, "f").flowId, "77");
  assert.equal(
    error(`flow_id: 007\n${steps}`),
    'f.yaml:1:10: flow_id 007 is read by YAML as the number 7; write it in quotes: flow_id: "007"',
  );
  assert.match(error(`flow_id: 12.50\n${steps}`), /flow_id 12\.50 is read by YAML as the number 12\.5/);
  assert.match(error(`flow_id: true\n${steps}`), /flow_id true is read by YAML as the boolean true/);
  assert.match(error(`flow_id: [a]\n${steps}`), /flow_id must be a non-empty string/);
});

Deno.test("NUL bytes, invalid UTF-8 and a second document are errors with their position", () => {
  assert.equal(error(`${HEAD}  - id: d\0\n`), "f.yaml:7:10: NUL byte in the file");
  const bytes = new TextEncoder().encode(`${HEAD}  - id: dé\n`);
  const bad = Uint8Array.from([...bytes.subarray(0, bytes.length - 3), 0xff, 0x0a]);
  assert.equal(thrown(() => loadFlowBytes(bad, "f.yaml"), FlowError).message, "f.yaml:7:10: invalid UTF-8 (byte 0xff)");
  const overlong = Uint8Array.from([...new TextEncoder().encode("flow_id: "), 0xc0, 0xaf]);
  assert.match(thrown(() => loadFlowBytes(overlong, "f.yaml"), FlowError).message, /f\.yaml:1:10: invalid UTF-8/);
  const surrogate = Uint8Array.from([...new TextEncoder().encode("x: "), 0xed, 0xa0, 0x80]);
  assert.match(thrown(() => loadFlowBytes(surrogate, "f.yaml"), FlowError).message, /invalid UTF-8 \(byte 0xed\)/);
  assert.equal(loadFlowBytes(new TextEncoder().encode(`\ufeff${HEAD}`), "f.yaml").steps.length, 2);
  const utf16 = Uint8Array.from([0xff, 0xfe, ...[...new TextEncoder().encode(HEAD)].flatMap((byte) => [byte, 0])]);
  assert.equal(
    thrown(() => loadFlowBytes(utf16, "f.yaml"), FlowError).message,
    "f.yaml:1:1: the file is UTF-16 text; save it as UTF-8",
  );
  assert.equal(
    error(`${HEAD}---\nflow_id: g\n`),
    "f.yaml:7:1: a flow file holds one YAML document, but a second one starts at line 7",
  );
});

Deno.test("documented limits are checked up front with errors naming them", () => {
  // The count is checked before any step is read, so the cheapest list of that length will do.
  const steps = `[${"0,".repeat(LIMITS.steps)}0]`;
  assert.equal(
    error(`flow_id: f\nsteps: ${steps}\n`),
    `f.yaml:2:8: ${LIMITS.steps + 1} steps, over the limit of ${LIMITS.steps}`,
  );
  assert.equal(loadFlow(`flow_id: f\nsteps: [{id: a, command: [x]}]\n`, "f").steps.length, 1);
  const big = "x".repeat(LIMITS.argumentBytes + 1);
  assert.match(
    error(`${HEAD}  - id: d\n    command: [echo, ${big}]\n`),
    /command argument of \d+ bytes, over the limit/,
  );
  assert.match(error(`${HEAD}  - id: d\n    command: ["a\\0b"]\n`), /command\[0\] contains a NUL character/);
  assert.match(error(`${HEAD}  - id: d\n    command: [x]\n    retries: 1e9\n`), /retries must be at most 10000/);
  assert.match(error(`${HEAD}  - id: d\n    command: [x]\n    timeout_sec: 1e300\n`), /timeout_sec must be at most/);
  assert.match(
    error(`${HEAD}  - id: d\n    command: [x]\n    timeout_sec: .nan\n`),
    /timeout_sec must be a number > 0/,
  );
  // One long name: the length is refused before the expression is parsed.
  const longWhen = "a".repeat(LIMITS.whenChars + 1);
  assert.match(
    error(`${HEAD}  - id: d\n    command: [x]\n    when: "${longWhen}"\n`),
    new RegExp(
      `f\\.yaml:9:11: step "d": when expression of ${
        LIMITS.whenChars + 1
      } characters, over the limit of ${LIMITS.whenChars}`,
    ),
  );
  assert.match(error(`${HEAD}  - id: d\n    command: [x]\n    when: ${"!".repeat(70)}a\n`), /nesting deeper than 64/);
  assert.match(error(`${HEAD}  - id: d\n    command: [x]\n    when: ${"(".repeat(70)}a\n`), /nesting deeper than 64/);
  assert.match(error(`flow_id: "bad\\u202eid"\nsteps:\n  - {id: a, command: [x]}\n`), /invalid flow_id/);
  assert.match(error(`${HEAD}  - id: d\n    command: ${"[".repeat(100)}x${"]".repeat(100)}\n`), /nested/);
  // Deep enough to overflow the library's own recursion: one message, with no position that would
  // depend on how far the stack reached.
  for (const depth of [3000, 20000]) {
    assert.equal(
      error(`${HEAD}  - id: d\n    command: ${"[".repeat(depth)}x${"]".repeat(depth)}\n`),
      "f.yaml: collections nested too deeply to read (limit 64)",
    );
  }
});

Deno.test("long chains, fan-ins and reversed chains need no deep recursion", () => {
  const n = 20_000;
  const ids = Array.from({ length: n }, (_, i) => `s${i}`);
  const chain = allSucceeded(ids)!;
  assert.deepEqual(referencedIds(chain), ids);
  assert.equal(evaluateWhen(chain, new Set(ids)), true);
  assert.equal(evaluateWhen(chain, new Set(ids.slice(1))), false);
  const text = formatWhen(chain);
  assert.equal(text, ids.join(" && "));
  assert.equal(formatWhen(parseWhen(text)), text);
  const flat = conditionJson(chain);
  assert.equal(flat.kind === "and" && flat.operands.length, n);
  // 8k steps, each waiting for the next one written after it.
  const lines = ["flow_id: rev", "steps:"];
  for (let i = 0; i < 8000; i++) {
    lines.push(`  - {id: s${i}, command: [x]${i < 7999 ? `, depends_on: [s${i + 1}]` : ""}}`);
  }
  lines.push(`  - {id: sink, command: [x], depends_on: [${ids.slice(0, 8000).join(", ")}]}`);
  lines.push(`  - {id: w, command: [x], when: "${ids.slice(0, 8000).join(" || ")}"}`);
  const flow = loadFlow(lines.join("\n") + "\n", "rev.yaml");
  assert.equal(flow.steps.length, 8002);
  assert.equal(findCycle(flow), null);
  const cyclic = lines.slice(0, -2).join("\n").replace("command: [x]}", "command: [x], depends_on: [s0]}") + "\n";
  assert.equal(cyclic.split("\n").length, 8003);
  assert.match(
    thrown(() => loadFlow(cyclic, "c.yaml"), FlowError).message,
    /dependency cycle detected: s0 -> s1 -> s2 -> .* -> s7999 -> s0$/,
  );
});

Deno.test("a huge value in an error is cut to its first characters and its length: the line stays readable", () => {
  const big = "a".repeat(200_000);
  const cases: [string, RegExp][] = [
    [
      `flow_id: f\nsteps:\n  - id: "${big}"\n    command: [x]\n`,
      /invalid step id "a{120}"… \(200000 characters\): use/,
    ],
    [`flow_id: "${big}"\nsteps:\n  - {id: a, command: [x]}\n`, /invalid flow_id "a{120}"… \(200000 characters\): use/],
    [
      `flow_id: f\nsteps:\n  - {id: a, command: [x, {k: "${big}"}]}\n`,
      /command\[1\] must be a string, got \{"k":"a{114}… \(200008 characters\)$/,
    ],
    [
      `${HEAD}  - {id: d, command: [x], when: "a && (${"a || ".repeat(40_000)}"}\n`,
      /invalid when expression "a && \(a \|\| .{109}"… \(200006 characters\): unexpected end/,
    ],
    [
      `${HEAD}  - {id: d, command: [x], env: {X: [${big}]}}\n`,
      /env\.X must be a string, got \["a{118}… \(200004 characters\)$/,
    ],
  ];
  for (const [text, pattern] of cases) {
    const message = error(text);
    assert.match(message, pattern);
    assert.ok(message.length < 600, `${message.length} characters`);
  }
});

Deno.test("a value is cut between characters, never inside a surrogate pair", () => {
  const emoji = "\u{1F680}".repeat(100); // 200 UTF-16 units
  for (const text of [emoji, "x" + emoji]) {
    const cut = clipped(text);
    assert.ok(cut.length < text.length);
    assert.equal(cut.slice(0, cut.indexOf("…")).match(/[\uD800-\uDBFF](?![\uDC00-\uDFFF])/), null, cut);
  }
  assert.equal(shown("short"), '"short"');
  assert.equal(shown(Number.NaN), "NaN");
  assert.equal(clipped("x".repeat(SHOWN_CHARS)), "x".repeat(SHOWN_CHARS));
});

Deno.test("a file of more values than the limit is refused before the YAML library builds it", () => {
  const items = (n: number, item: string) => Array(n).fill(item).join(",");
  const over = LIMITS.values + 1;
  const limit = `f.yaml: flow file holds over ${LIMITS.values} values, the limit`;
  // Plain, quoted and alias values all count (the anchor's own value is the first).
  assert.equal(error(`flow_id: f\nsteps:\n  - {id: a, command: [${items(over, "x")}]}\n`), limit);
  assert.equal(error(`flow_id: f\nsteps:\n  - {id: a, command: [${items(over, "'x'")}]}\n`), limit);
  assert.equal(error(`flow_id: f\nsteps:\n  - {id: a, command: [&x y, ${items(over, "*x")}]}\n`), limit);
  // A file long enough to be counted but of few values is read as usual.
  const long = `# ${"c".repeat(2 * LIMITS.values + 10)}\nflow_id: f\nsteps:\n  - {id: a, command: [x]}\n`;
  assert.equal(loadFlow(long, "f.yaml").steps.length, 1);
});

Deno.test("a repeated key is refused at the repeat, in any mapping, however it is written", () => {
  const env = (entries: string) => `flow_id: f\nsteps:\n  - id: a\n    command: [x]\n    env: {${entries}}\n`;
  assert.equal(error(env('A: x, "A": y')), "f.yaml:5:17: invalid YAML: Map keys must be unique");
  assert.equal(error(env("B: x, A: x, 'A': y")), "f.yaml:5:23: invalid YAML: Map keys must be unique");
  // In a mapping inside a list, and in a mapping no field reads.
  assert.equal(
    error("flow_id: f\nsteps:\n  - {id: a, command: [x]}\n  - {id: b, command: [x], id: c}\n"),
    "f.yaml:4:27: invalid YAML: Map keys must be unique",
  );
  assert.match(
    error("flow_id: f\nx-notes: {a: 1, a: 2}\nsteps: [{id: a, command: [x]}]\n"),
    /2:17: invalid YAML: Map keys/,
  );
  // Keys of other types or values are different keys.
  assert.doesNotMatch(error(env("A: x, A1: y, 1: z")), /must be unique/);
});

Deno.test("a list of hundreds of thousands of items is walked without a call per item on the stack", () => {
  const items = Array(300_000).fill("1").join(",");
  assert.match(error(`flow_id: f\nsteps:\n  - {id: a, command: [x]}\nx-list: [${items}]\n`), /unknown field "x-list"/);
});

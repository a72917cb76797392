/** RunView: append mode prints a table only on change, and a heartbeat at most once a minute. Pure. */
import { stepState } from "../step_state.ts";
import assert from "node:assert/strict";
import type { RunRecord, StepState } from "../../src/domain/mod.ts";
import { loadFlow } from "../../src/flow/load.ts";
import { loadYamlLibrary } from "../../src/flow/mod.ts";
import { CLEAR_SCREEN, RunView } from "../../src/cli/render/run_view.ts";
import { listedRunJson, renderRunList } from "../../src/cli/render/run_list.ts";
import { renderRunTable } from "../../src/cli/render/run_table.ts";
import { localDateTime } from "../../src/shared/mod.ts";
import { visible } from "../../src/cli/render/visible.ts";

// loadFlow needs the YAML library, which the CLI imports only when it reads a flow file.
await loadYamlLibrary();

const FLOW = loadFlow("flow_id: f\nsteps:\n  - {id: a, command: [a]}\n  - {id: b, when: a, command: [b]}\n", "f.yaml");

function record(a: Partial<StepState>, startedAt = 1000): RunRecord {
  const step = stepState;
  return {
    state: {
      runKey: "r",
      flow: FLOW,
      status: "RUNNING",
      startedAt,
      notBefore: null,
      finishedAt: null,
      error: null,
      steps: [step("a", a), step("b")],
    },
    definitionHash: "sha256:x",
    flowFile: null,
    executor: { kind: "builtin" },
    rounds: [],
  };
}

Deno.test("append mode: a table on change only, a heartbeat after a minute of silence, never screen codes", () => {
  const out: string[] = [];
  const view = new RunView((text) => out.push(text), { mode: "append", color: false });
  const running = record({ status: "RUNNING", attemptNo: 1, startedAt: 1000 });
  view.show(running, 1000);
  view.show(running, 1030); // elapsed time changed, nothing else: silent
  view.show(running, 1059);
  assert.equal(out.length, 1);
  assert.match(out[0], /^Flow: f {2}Run: r\n/);
  view.show(running, 1060);
  assert.equal(out.length, 2);
  assert.match(
    out[1],
    /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d run r: RUNNING, 0\/2 done, 1 running, 0 failed \(no change\)\n$/,
  );
  view.show(running, 1100);
  assert.equal(out.length, 2, "at most one heartbeat a minute");
  view.show(record({ status: "SUCCEEDED", attemptNo: 1, startedAt: 1000, finishedAt: 1101 }), 1101);
  assert.equal(out.length, 3);
  assert.match(out[2], /a +OK SUCCEEDED/);
  view.show(record({ status: "SUCCEEDED", attemptNo: 1, startedAt: 1000, finishedAt: 1101 }), 1161);
  assert.match(out[3], /\(no change\)/);
  assert.ok(out.every((text) => !text.includes("\x1b")));
});

Deno.test("append mode paces its heartbeat by the monotonic time given, not by a wall clock that stepped back", () => {
  const out: string[] = [];
  const view = new RunView((text) => out.push(text), { mode: "append", color: false });
  const running = record({ status: "RUNNING", attemptNo: 1, startedAt: 1000 });
  view.show(running, 5000, 10);
  view.show(running, 5059 - 3600, 69); // the wall clock stepped an hour back meanwhile
  assert.equal(out.length, 1);
  view.show(running, 5060 - 3600, 70);
  assert.equal(out.length, 2, "a minute of silence by the monotonic time: a heartbeat");
  assert.match(out[1], /\(no change\)/);
});

Deno.test("screen mode: a full redraw, or in place (cursor up, clear down) with lines cut to the width", () => {
  const full: string[] = [];
  new RunView((text) => full.push(text), { mode: "screen", color: false }).show(record({}), 1000);
  assert.ok(full[0].startsWith(CLEAR_SCREEN));
  const inPlace: string[] = [];
  const view = new RunView((text) => inPlace.push(text), { mode: "screen", color: false, inPlace: true, columns: 30 });
  view.show(record({}), 1000);
  view.show(record({}), 1001);
  assert.ok(!inPlace[0].includes("\x1b"), "the first drawing moves nothing");
  const lines = inPlace[0].trimEnd().split("\n");
  assert.ok(lines.every((line) => line.length < 30), "no line wraps");
  assert.ok(inPlace[1].startsWith(`\x1b[${lines.length}A\r\x1b[J`), "the second goes back over the first");
});

Deno.test("list's table shows a SCHEDULED run with the time it begins; its JSON has not_before", () => {
  const base = record({});
  const scheduled: RunRecord = { ...base, state: { ...base.state, status: "SCHEDULED", notBefore: 5000 } };
  const table = renderRunList([{ record: scheduled, driver: null }, { record: base, driver: null }], 1000);
  const [, , , , first, second] = table.split("\n");
  assert.ok(first.includes(`SCHEDULED until ${localDateTime(5000)}`), first);
  // It has not begun: no start and no elapsed time (its started_at is when it was created).
  assert.ok(!first.includes(localDateTime(1000)), first);
  assert.match(first, /SCHEDULED until .+ {2}- +- +0\/2 /);
  assert.match(second, /^r +f +RUNNING +/);
  assert.ok(second.includes(localDateTime(1000)), second);
  assert.equal(listedRunJson({ record: scheduled, driver: null }, false).not_before, 5000);
  // status's table says when it was created, and when it begins.
  const status = renderRunTable(scheduled.state, 1000, false);
  assert.match(status, new RegExp(`\nCreated: ${localDateTime(1000)} {2}Times: `));
  assert.ok(status.includes(`Begins: ${localDateTime(5000)}`), status);
  assert.ok(!status.includes("Started:"), status);
});

Deno.test("visible: controls, separators and bidi controls become escapes; other text stays as it is", () => {
  assert.equal(visible("\x1b]0;t\x07\x1b[2J"), "\\x1b]0;t\\x07\\x1b[2J");
  assert.equal(visible("a\tb\nc\rd\x00\x7f\x80\x85\x9b"), "a\\tb\\nc\\rd\\x00\\x7f\\x80\\x85\\x9b");
  assert.equal(visible("\u2028\u2029\u202e\u2066\u200f\u061c"), "\\u2028\\u2029\\u202e\\u2066\\u200f\\u061c");
  const plain = "C:\\path \\x1b café 日本 👩‍💻 \u00a0";
  assert.equal(visible(plain), plain, "printable text, backslashes and joiners are kept");
});

Deno.test("append mode's heartbeat shows the run key's control characters as escapes", () => {
  const out: string[] = [];
  const view = new RunView((text) => out.push(text), { mode: "append", color: false });
  const running = record({ status: "RUNNING", attemptNo: 1, startedAt: 1000 });
  const hostile = { ...running, state: { ...running.state, runKey: "r\x1b[2J" } };
  view.show(hostile, 1000);
  view.show(hostile, 1100);
  assert.equal(out.length, 2);
  assert.match(out[1], / run r\\x1b\[2J: RUNNING, /);
  assert.ok(out.every((text) => !text.includes("\x1b")));
});

Deno.test("append mode: a run of more than 50 steps gets whole tables first and last, only the changed rows between", () => {
  const ids = Array.from({ length: 60 }, (_, i) => `s${String(i).padStart(2, "0")}`);
  const flow = loadFlow(
    `flow_id: big\nsteps:\n${ids.map((id) => `  - {id: ${id}, command: [x]}`).join("\n")}\n`,
    "b.yaml",
  );
  const big = (status: "RUNNING" | "SUCCEEDED", changed: Record<string, Partial<StepState>>): RunRecord => ({
    ...record({}),
    state: {
      ...record({}).state,
      flow,
      status,
      steps: ids.map((id) => stepState(id, changed[id] ?? { status: "RUNNING", attemptNo: 1, startedAt: 1000 })),
    },
  });
  const out: string[] = [];
  const view = new RunView((text) => out.push(text), { mode: "append", color: false });
  const rows = (table: string) => table.split("\n").filter((line) => /^s\d\d /.test(line)).map((l) => l.split(" ")[0]);
  view.show(big("RUNNING", {}), 1000);
  assert.equal(rows(out[0]).length, 60, "the first table is whole");
  const s07 = { status: "SUCCEEDED" as const, attemptNo: 1, startedAt: 1000, finishedAt: 1010 };
  view.show(big("RUNNING", { s07 }), 1010);
  assert.deepEqual(rows(out[1]), ["s07"], "only the step that changed");
  assert.match(out[1], /Steps: 1\/60 done, 59 running, 0 failed/);
  assert.match(out[1], /\n\(59 other steps: no change since the last table\)\n/);
  view.show(big("RUNNING", { s07, s08: s07, s09: s07 }), 1011);
  assert.deepEqual(rows(out[2]), ["s08", "s09"]);
  const done = Object.fromEntries(ids.map((id) => [id, s07]));
  view.show(big("SUCCEEDED", done), 1012);
  assert.equal(rows(out[3]).length, 60, "the last table is whole");
  assert.doesNotMatch(out[3], /other step/);
});

/** Terminal columns, worked out apart from the code under test: CJK and emoji take 2, combining marks 0. */
function columns(text: string): number {
  return [...text].reduce(
    (w, c) => w + (/\p{M}/u.test(c) ? 0 : /[\u3000-\u9fff\u{1F300}-\u{1FAFF}]/u.test(c) ? 2 : 1),
    0,
  );
}

/** A colour code (the only ESC a table has: visible() escapes the text's). */
const COLOUR = new RegExp(`${"\x1b"}\\[[0-9;]*m`, "g");

/** The column at which `marker` starts on `line`. */
function columnOf(line: string, marker: string): number {
  assert.ok(line.includes(marker), `${JSON.stringify(line)} lacks ${marker}`);
  return columns(line.slice(0, line.indexOf(marker)));
}

Deno.test("tables line up by terminal columns: wide characters take two, combining marks none", () => {
  const base = record({ status: "FAILED", attemptNo: 1, startedAt: 1000, finishedAt: 1001, error: "boom" });
  const keys = ["日次バッチ", "🚀launch", "cafe\u0301-e\u0301te\u0301", "plain"];
  const runs = keys.map((runKey) => ({ record: { ...base, state: { ...base.state, runKey } }, driver: null }));
  // list: the Flow column starts at one column on every line, whatever the run keys before it.
  const list = renderRunList(runs, 2000).split("\n").slice(2, 8);
  assert.equal(list.length, 6);
  const flowAt = columnOf(list[0], "Flow");
  for (const line of list.slice(2)) assert.equal(columnOf(line, " f "), flowAt - 1, line);
  // status: the Error column (after the Run key column, `KEY:STEP:ATTEMPT`) starts at one column too.
  for (const { record } of runs.slice(0, 3)) {
    const lines = renderRunTable(record.state, 2000, false).split("\n");
    const header = lines.find((line) => line.startsWith("Step "))!;
    const row = lines.find((line) => line.startsWith("a "))!;
    assert.ok(row.includes(record.state.runKey), row);
    assert.equal(columnOf(row, "boom"), columnOf(header, "Error"), `${header}\n${row}`);
  }
  // An in-place redraw cuts lines by columns too: a wide line would wrap and leave the redraw short.
  const inPlace: string[] = [];
  new RunView((text) => inPlace.push(text), { mode: "screen", color: true, inPlace: true, columns: 30 })
    .show({ ...base, state: { ...base.state, runKey: "日次バッチ日次バッチ日次" } }, 2000);
  for (const line of inPlace[0].trimEnd().split("\n")) {
    assert.ok(columns(line.replace(COLOUR, "")) < 30, `wraps: ${JSON.stringify(line)}`);
  }
  // A cut never splits a colour code, nor drops the reset after it (the colour would run on).
  const narrow: string[] = [];
  new RunView((text) => narrow.push(text), { mode: "screen", color: true, inPlace: true, columns: 20 })
    .show(record({ status: "RUNNING", attemptNo: 1, startedAt: 1000 }), 2000);
  const cut = narrow[0].trimEnd().split("\n");
  assert.ok(cut.some((line) => line.includes("\x1b[33m")), "a coloured cell was cut");
  for (const line of cut) {
    assert.equal(line.replace(COLOUR, "").includes("\x1b"), false, `a broken code: ${JSON.stringify(line)}`);
    assert.equal(line.includes("\x1b[33m"), line.includes("\x1b[0m"), `no reset: ${JSON.stringify(line)}`);
    assert.ok(line.replace(COLOUR, "").length < 20, `wraps: ${JSON.stringify(line)}`);
  }
});

Deno.test("tables of plain ASCII are padded as before (String.padEnd)", () => {
  const run = record({ status: "SUCCEEDED", attemptNo: 1, startedAt: 1000, finishedAt: 1001 });
  const lines = renderRunTable(run.state, 2000, false).split("\n");
  const header = lines.find((line) => line.startsWith("Step "))!;
  assert.equal(header, "Step  Status        Attempt  Elapsed   orchesjob  Run key  Error");
  assert.ok(lines.includes("a     OK SUCCEEDED  1/1      00:00:01  -          r:a:1"), lines.join("\n"));
});

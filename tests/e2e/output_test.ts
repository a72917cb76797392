/**
 * Output people follow: the live table of a foreground start on a terminal's stderr, watch's screen
 * and append modes, and the table only when something changed. Terminals are real ptys (util-linux
 * `script`), so these tests run where that exists.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { CLI, collectText, eventually, REPO } from "../helpers.ts";
import { type FlowEnv, flowTest, step } from "./flow_env.ts";
import { builtin, TWO_STEPS } from "./operator_env.ts";

const quote = (arg: string) => `'${arg.replaceAll("'", "'\\''")}'`;

function hasScript(): boolean {
  if (Deno.build.os !== "linux") return false;
  try {
    return new Deno.Command("script", { args: ["--version"], stdout: "null", stderr: "null" }).outputSync().success;
  } catch {
    return false;
  }
}
const ptyModes = hasScript() ? builtin : [];

/**
 * Runs `orchesjob-flow ARGS…` with a terminal (a pty) as stdin, stdout and stderr, except that stdout
 * goes to `stdoutFile` when given. Returns what the terminal showed and the exit code.
 */
async function inTerminal(env: FlowEnv, args: string[], stdoutFile?: string, terminal: Record<string, string> = {}) {
  const command = [...CLI, ...env.globals(), ...args].map(quote).join(" ") +
    (stdoutFile ? ` > ${quote(stdoutFile)}` : "");
  const output = await new Deno.Command("script", {
    args: ["-q", "-e", "-c", command, "/dev/null"],
    cwd: REPO,
    env: { ...env.env(), NO_COLOR: "1", TERM: "xterm", ...terminal },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: output.code, screen: new TextDecoder().decode(output.stdout) };
}

flowTest(
  ptyModes,
  "a foreground start keeps a live table on a terminal's stderr; --quiet turns it off",
  async (env) => {
    const file = env.flow("two.yaml", TWO_STEPS);
    const out = join(env.home, "out.json");
    const shown = await inTerminal(env, ["start", "--run-key", "t1", file], out);
    assert.equal(shown.code, 0, shown.screen);
    assert.match(shown.screen, /Flow: two {2}Run: t1/);
    assert.match(shown.screen, /Status: OK SUCCEEDED/, "the last drawing shows the end");
    const escape = String.fromCharCode(27);
    assert.match(shown.screen, new RegExp(`${escape}\\[\\d+A\r${escape}\\[J`), "redrawn in place: up, clear down");
    assert.equal(JSON.parse(Deno.readTextFileSync(out)).status, "SUCCEEDED", "stdout still gets the JSON state");

    const quiet = await inTerminal(env, ["start", "--run-key", "t2", "--quiet", file], out);
    assert.equal(quiet.code, 0, quiet.screen);
    assert.ok(!quiet.screen.includes("Flow:"), quiet.screen);
    assert.equal(JSON.parse(Deno.readTextFileSync(out)).status, "SUCCEEDED");

    // Both streams on one terminal: the table is finished before the JSON, which nothing moves back over.
    const together = await inTerminal(env, ["start", "--run-key", "t4", file]);
    assert.equal(together.code, 0, together.screen);
    const jsonAt = together.screen.indexOf('"run_key": "t4"');
    assert.ok(jsonAt > 0 && together.screen.lastIndexOf(escape) < jsonAt, together.screen);
    assert.equal(JSON.parse(together.screen.slice(together.screen.lastIndexOf("{\r\n", jsonAt))).status, "SUCCEEDED");

    // retry drives as start does, with the same table.
    const retried = await inTerminal(env, ["retry", "--run-key", "t1", "--step", "b"], out);
    assert.equal(retried.code, 0, retried.screen);
    assert.match(retried.screen, /Retried: 1 time/);
    const quietRetry = await inTerminal(env, ["retry", "--run-key", "t1", "--step", "b", "-q"], out);
    assert.equal(quietRetry.code, 0, quietRetry.screen);
    assert.ok(!quietRetry.screen.includes("Flow:"));
    assert.equal(JSON.parse(Deno.readTextFileSync(out)).steps[1].run_key, "t1:b:3");

    // Not a terminal: nothing on stderr at all.
    const piped = await env.run(["start", "--run-key", "t3", file]);
    assert.equal(piped.code, 0);
    assert.equal(piped.stderr, "");
  },
);

flowTest(ptyModes, "watch on a terminal redraws the screen; told --mode screen into a pipe it appends", async (env) => {
  await env.json(["start", "--run-key", "w", env.flow("two.yaml", TWO_STEPS)]);
  const shown = await inTerminal(env, ["watch", "--run-key", "w"]);
  assert.equal(shown.code, 0, shown.screen);
  assert.ok(shown.screen.includes("\x1b[H\x1b[2J"), "screen mode on a terminal");
  const piped = await env.run(["watch", "--run-key", "w", "--mode", "screen"]);
  assert.equal(piped.code, 0);
  assert.ok(!piped.stdout.includes("\x1b"), "never screen codes into a pipe");
  assert.match(piped.stdout, /Status: OK SUCCEEDED/);
});

flowTest(
  ptyModes,
  "a terminal that says TERM=dumb gets no escape codes: tables are appended, without colours",
  async (env) => {
    const file = env.flow("two.yaml", TWO_STEPS);
    const escape = String.fromCharCode(27);
    const colours = { NO_COLOR: "" };
    // The same terminal with a TERM that acts on them gets colours and screen codes.
    await env.json(["start", "--run-key", "d", file]);
    const xterm = await inTerminal(env, ["status", "--run-key", "d", "--format", "table"], undefined, colours);
    assert.ok(xterm.screen.includes(`${escape}[`), xterm.screen);
    const dumb = { ...colours, TERM: "dumb" };
    for (const args of [["status", "--run-key", "d", "--format", "table"], ["watch", "--run-key", "d"]]) {
      const shown = await inTerminal(env, args, undefined, dumb);
      assert.equal(shown.code, 0, shown.screen);
      assert.match(shown.screen, /Status: OK SUCCEEDED/);
      assert.ok(!shown.screen.includes(escape), `${args[0]}: ${JSON.stringify(shown.screen)}`);
    }
    // A foreground start's live table on stderr: appended when something changed, not redrawn in place.
    const out = join(env.home, "out.json");
    const started = await inTerminal(env, ["start", "--run-key", "d2", file], out, dumb);
    assert.equal(started.code, 0, started.screen);
    assert.match(started.screen, /Flow: two {2}Run: d2/);
    assert.match(started.screen, /Status: OK SUCCEEDED/, "the last table shows the end");
    assert.ok(!started.screen.includes(escape), JSON.stringify(started.screen));
    assert.equal(JSON.parse(Deno.readTextFileSync(out)).status, "SUCCEEDED");
  },
);

flowTest(builtin, "watch into a pipe prints a table only when something changed", async (env) => {
  const go = join(env.home, "go");
  const file = env.flow(
    "gated.yaml",
    `flow_id: gated
steps:
  - {id: hold, command: ${JSON.stringify(`while [ ! -f '${go}' ]; do sleep 0.05; done`)}}
  - {id: after, when: hold, command: ["true"]}
`,
  );
  await env.json(["start", "--run-key", "g", "-d", file]);
  await env.waitFor("g", "hold's job running", (run) => step(run, "hold").orchesjob_status?.status === "RUNNING");
  const watcher = env.spawn(["watch", "--run-key", "g", "--interval", "0.05"]);
  const stdout = collectText(watcher.stdout);
  const stderr = collectText(watcher.stderr);
  // Nothing can change before `go` exists. Once watch has shown the held run, give it two seconds of
  // polling every 0.05 s (a window to look through, not a wait for something): one table, not forty.
  await eventually("watch shows the held run", () => /\nafter +/.test(stdout.text), 60);
  await new Promise((resolve) => setTimeout(resolve, 2000));
  Deno.writeTextFileSync(go, "");
  const code = (await watcher.status).code;
  const text = await stdout.done;
  assert.equal(code, 0, await stderr.done);
  const tables = text.split("Flow: gated").slice(1);
  const held = tables.filter((table) => /^hold +\S+ RUNNING +\S+ +\S+ +RUNNING /m.test(table));
  assert.equal(held.length, 1, `tables of the unchanged held run: ${held.length}\n${text}`);
  assert.ok(tables.length >= 2, `tables printed: ${tables.length}\n${text}`);
  // Each later table shows a change, and not merely in its times.
  const timeless = tables.map((table) => table.replace(/\d{4}-\d\d-\d\d |\d\d:\d\d:\d\d/g, ""));
  for (let i = 1; i < timeless.length; i++) assert.notEqual(timeless[i], timeless[i - 1], `table ${i + 1}\n${text}`);
  assert.match(tables.at(-1)!, /Status: OK SUCCEEDED/);
  assert.ok(!text.includes("\x1b"));
});

/** Characters a terminal may act on: C0 but the newline, DEL, C1, line separators, bidi controls. */
const RAW_CONTROL = /(?!\n)[\p{Cc}\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/u;

/** Renames the stored run's flow and its one step, as a damaged or hostile state file might. */
function tamper(env: FlowEnv, runKey: string, flowId: string, stepId: string): void {
  const db = new DatabaseSync(join(env.home, "orchesjob-flow.sqlite3"));
  try {
    db.prepare(
      "UPDATE flow_runs SET flow_id = ?, definition = json_set(definition, '$.flow_id', ?, '$.steps[0].id', ?) " +
        "WHERE run_key = ?",
    ).run(flowId, flowId, stepId, runKey);
    db.prepare("UPDATE flow_steps SET step_id = ? WHERE run_key = ?").run(stepId, runKey);
  } finally {
    db.close();
  }
}

flowTest(
  builtin,
  "tables and pictures show control characters from the state as escapes; the JSON keeps them exact",
  async (env) => {
    // A window title, a clear screen, C1's CSI, a tab and a right-to-left override, on the step's stderr.
    const noise = "x\x1b]0;pwned\x07 \x1b[2J \u009b31m tab\there \u202eevil";
    const shown = "x\\x1b]0;pwned\\x07 \\x1b[2J \\x9b31m tab\\there \\u202eevil";
    const printf = "printf 'x\\033]0;pwned\\007 \\033[2J \\302\\23331m tab\\there \\342\\200\\256evil\\n' >&2; exit 3";
    const file = env.flow("evil.yaml", `flow_id: evil\nsteps:\n  - {id: a, command: ${JSON.stringify(printf)}}\n`);
    assert.equal((await env.run(["start", "--run-key", "k", file])).code, 1);
    assert.ok(step(await env.status("k"), "a").error.endsWith(`: ${noise}`), "JSON: the exact text");
    // $USER goes into the table's Retried line.
    assert.equal((await env.run(["retry", "--run-key", "k"], { USER: "mallory\x1b[2J" })).code, 1);
    const views = [
      ["status", "--run-key", "k", "--format", "table"],
      ["watch", "--run-key", "k", "--mode", "append"],
    ];
    for (const args of views) {
      const { code, stdout } = await env.run(args);
      assert.equal(code, args[0] === "watch" ? 1 : 0);
      assert.doesNotMatch(stdout, RAW_CONTROL, `${args[0]}: ${JSON.stringify(stdout)}`);
      assert.ok(stdout.includes(`: ${shown}\n`), `${args[0]}: the error as escapes on one line\n${stdout}`);
      assert.match(stdout, /Retried: 1 time, last .* by mallory\\x1b\[2J: a\n/);
    }
    tamper(env, "k", "evil\x1b]0;pwned\x07", "a\u009b2J");
    const pictures = [
      ["status", "--run-key", "k", "--format", "table"],
      ["status", "--run-key", "k", "--format", "mermaid"],
      ["list", "--format", "table"],
    ];
    for (const args of pictures) {
      const { code, stdout } = await env.run(args);
      assert.equal(code, 0);
      assert.doesNotMatch(stdout, RAW_CONTROL, `${args.join(" ")}: ${JSON.stringify(stdout)}`);
      assert.ok(stdout.includes(args.includes("mermaid") ? "a\\x9b2J" : "evil\\x1b]0;pwned\\x07"), stdout);
    }
    const run = await env.status("k");
    assert.equal(run.flow_id, "evil\x1b]0;pwned\x07", "JSON: the exact text");
    assert.equal(run.steps[0].id, "a\u009b2J");
  },
);

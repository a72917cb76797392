/** Issue 10: the run-key rule, bounded file names, and `start -d` really starting with every accepted key. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { runKeyProblem } from "../../src/flow/mod.ts";
import { safeFileName } from "../../src/store/paths.ts";
import { CLI, cli, errorLine, tempDir, writeFile } from "../helpers.ts";

/** One accepted key per category of odd characters, plus the longest keys of 1-, 3- and 4-byte characters. */
const ACCEPTED: [string, string][] = [
  ["one character", "k"],
  ["256 ASCII", "a".repeat(256)],
  ["240 ASCII (230-243 once made start -d report a driver that could not open its log)", "b".repeat(240)],
  ["256 three-byte characters", "日".repeat(256)],
  ["256 four-byte characters (emoji)", "😀".repeat(256)],
  ["slashes and dots", "../../etc/passwd"],
  ["leading dot", ".hidden"],
  ["spaces and quotes", `nightly run "a" 'b'`],
  ["shell metacharacters", "$(touch x); `y` | & > <"],
  ["percent and tilde", "%41~x"],
  ["colons", "a:b:1"],
  ["combining accent", "e\u0301"],
];

const REFUSED: [string, string][] = [
  ["empty", ""],
  ["only spaces", "   "],
  ["257 characters", "a".repeat(257)],
  ["leading dash", "-rf"],
  ["NUL", "a\0b"],
  ["C0 control", "a\x01b"],
  ["newline", "a\nb"],
  ["DEL", "a\x7fb"],
  ["NEL (C1)", "a\u0085b"],
  ["bidi override", "a\u202eb"],
  ["bidi isolate", "a\u2066b"],
  ["left-to-right mark", "a\u200eb"],
  ["zero-width space", "a\u200bb"],
  ["zero-width joiner", "a\u200db"],
  ["BOM", "\ufeffa"],
  ["line separator", "a\u2028b"],
  ["lone surrogate", "a\ud800b"],
  ["replacement character (invalid UTF-8)", "a\ufffdb"],
  ["tab", "a\tb"],
  ["no-break space", "a\u00a0b"],
  ["ideographic space", "a\u3000b"],
  ["leading space", " a"],
  ["trailing space", "a "],
  ["Hangul filler (invisible, not a format character)", "a\u3164b"],
  ["combining grapheme joiner", "a\u034fb"],
  ["variation selector", "\u2764\ufe0f"],
  ["noncharacter", "a\uffffb"],
];

Deno.test("the run-key rule: lengths 1 to 256 are accepted, 257 and odd characters are refused", () => {
  for (let length = 1; length <= 300; length++) {
    const key = "k".repeat(length);
    if (length <= 256) assert.equal(runKeyProblem(key), null);
    else assert.match(runKeyProblem(key)!, /^invalid run key .*: it has \d+ characters/);
  }
  for (const [name, key] of ACCEPTED) assert.equal(runKeyProblem(key), null, name);
  for (const [name, key] of REFUSED) {
    const problem = runKeyProblem(key);
    assert.match(problem ?? "", /^invalid run key /, name);
    // The error names an odd character by its code point, never as itself.
    assert.doesNotMatch(problem!, /[\p{C}\p{Default_Ignorable_Code_Point}\uFFFD]|(?! )\p{White_Space}/u, name);
  }
  assert.match(runKeyProblem("a\u0085b")!, /contains U\+0085 \(a control character\)/);
  assert.equal(
    runKeyProblem("nightly\u200b"),
    'invalid run key "nightly<U+200B>": it contains U+200B (an invisible format character); ' +
      'use 1-256 printable characters, not starting with "-"',
  );
  assert.match(runKeyProblem("a\u202eb")!, /^invalid run key "a<U\+202E>b": it contains U\+202E \(an invisible format/);
  assert.match(runKeyProblem("a\u2028b")!, /U\+2028 \(a line or paragraph separator\)/);
  assert.match(runKeyProblem("a\u00a0b")!, /U\+00A0 \(a space other than U\+0020\)/);
  assert.match(runKeyProblem("a\u3164b")!, /U\+3164 \(an invisible character\)/);
  assert.match(runKeyProblem("k ")!, /it starts or ends with a space/);
  assert.match(runKeyProblem("\ufffd")!, /U\+FFFD \(the replacement character, what invalid UTF-8 decodes to\)/);
});

Deno.test("file names from run keys are bounded, escape UTF-8 bytes, and stay distinct", () => {
  assert.equal(safeFileName("日本"), "%e6%97%a5%e6%9c%ac");
  assert.equal(safeFileName("a/b"), "a%2fb");
  assert.equal(safeFileName(".."), "%2e%2e");
  const names = new Set<string>();
  const keys: string[] = [];
  for (let length = 1; length <= 300; length++) {
    for (const unit of ["a", "é", "日", "😀", "%", "~"]) keys.push(unit.repeat(length));
  }
  for (const [, key] of ACCEPTED) keys.push(key);
  // Keys that differ only after the kept prefix.
  keys.push("x".repeat(200) + "1", "x".repeat(200) + "2");
  for (const key of keys) {
    const name = safeFileName(key);
    assert.ok(new TextEncoder().encode(name).length <= 140, `${key.length}: ${name}`);
    assert.match(name, /^[A-Za-z0-9_%~-]+$/);
    assert.ok(!/%.?$/.test(name.split("~")[0]) || !name.includes("~"), `cut inside an escape: ${name}`);
    names.add(name);
  }
  assert.equal(names.size, new Set(keys).size, "two keys share a file name");
});

Deno.test("start -d with each accepted key really starts and finishes the run; files stay in the state home", async () => {
  using dir = tempDir();
  const home = join(dir.path, "home");
  const flow = writeFile(dir.path, "one.yaml", "flow_id: one\nsteps:\n  - id: s\n    command: [sh, -c, 'exit 0']\n");
  const env = { ORCHESJOB_FLOW_HOME: home, ORCHESJOB_BIN: "", ORCHESJOB_HOME: "" };
  const base = ["--executor", "builtin", "--poll-interval", "0.1"];
  const cwd = join(dir.path, "cwd");
  Deno.mkdirSync(cwd);
  // Four at a time: each start -d waits a bounded time for its driver to take the run, and a burst of
  // a dozen Deno start-ups on a loaded machine could outlast it.
  for (let i = 0; i < ACCEPTED.length; i += 4) {
    await Promise.all(
      ACCEPTED.slice(i, i + 4).map(async ([name, key]) => {
        const started = await cli([...base, "start", "-d", "--run-key", key, flow], { env, cwd });
        assert.equal(started.code, 0, `${name}: ${started.stderr}`);
        const out = JSON.parse(started.stdout);
        assert.equal(out.detached, true, name);
        assert.equal(out.run_key, key, name);
        const watched = await cli([...base, "watch", "--run-key", key, "--interval", "0.2", "--mode", "append"], {
          env,
          cwd,
        });
        assert.equal(watched.code, 0, `${name}: ${watched.stderr}`);
        const status = await cli([...base, "status", "--run-key", key], { env, cwd });
        assert.equal(JSON.parse(status.stdout).status, "SUCCEEDED", name);
        assert.equal(JSON.parse(status.stdout).steps[0].status, "SUCCEEDED", name);
      }),
    );
  }
  assert.deepEqual([...Deno.readDirSync(cwd)], [], "files written in the working directory");
  const logs = [...Deno.readDirSync(join(home, "logs"))].map((entry) => entry.name);
  assert.equal(logs.length, ACCEPTED.length * 2);
  for (const name of logs) assert.ok(name.length < 200, name);
});

Deno.test("refused keys exit 2 before any run exists, including invalid UTF-8 in argv", async () => {
  using dir = tempDir();
  const home = join(dir.path, "home");
  const flow = writeFile(dir.path, "one.yaml", "flow_id: one\nsteps:\n  - id: s\n    command: [x]\n");
  const env = { ORCHESJOB_FLOW_HOME: home };
  for (const key of ["a\u202eb", "a".repeat(257), "日".repeat(300)]) {
    const result = await cli(["start", "-d", "--run-key", key, flow], { env });
    assert.equal(result.code, 2, result.stderr);
    assert.match(errorLine(result).error, /^start: invalid run key/);
  }
  // Invisible characters are named by their code points; the error line never holds them raw.
  const invisible: [string, string][] = [
    ["a\u200bb", 'invalid run key "a<U+200B>b": it contains U+200B (an invisible format character)'],
    ["\ufeffnightly", 'invalid run key "<U+FEFF>nightly": it contains U+FEFF'],
    ["a\u2028b", "it contains U+2028 (a line or paragraph separator)"],
    ["a\u00a0b", 'invalid run key "a<U+00A0>b": it contains U+00A0 (a space other than U+0020)'],
    ["nightly\u3164", "it contains U+3164 (an invisible character)"],
    ["nightly ", 'invalid run key "nightly ": it starts or ends with a space'],
  ];
  for (const [key, message] of invisible) {
    const result = await cli(["start", "--run-key", key, flow], { env });
    assert.equal(result.code, 2, result.stderr);
    const error = errorLine(result).error;
    assert.ok(error.startsWith("start: invalid run key ") && error.includes(message), result.stderr);
    assert.doesNotMatch(result.stderr, /[\u200b\ufeff\u2028\u00a0\u3164]/, "raw in the error line");
  }
  // argv bytes that are not UTF-8 can only be passed through a shell.
  const script = `exec "$@" start -d --run-key "$(printf 'a\\377b')" ${flow}`;
  const child = await new Deno.Command("/bin/sh", {
    args: ["-c", script, "sh", ...CLI],
    env: { ...env, NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(child.stderr);
  assert.equal(child.code, 2, stderr);
  assert.match(JSON.parse(stderr).error, /contains U\+FFFD/);
  const listed = await cli(["status", "--run-key", "a".repeat(256)], { env });
  assert.equal(listed.code, 3, "no run was created");
});

Deno.test("the longest keys (256 four-byte characters) can be ticked and cancelled while their run is live", async () => {
  using dir = tempDir();
  const home = join(dir.path, "home");
  const flow = writeFile(dir.path, "slow.yaml", "flow_id: slow\nsteps:\n  - id: s\n    command: [sleep, '60']\n");
  const env = { ORCHESJOB_FLOW_HOME: home, ORCHESJOB_BIN: "", ORCHESJOB_HOME: "" };
  const base = ["--executor", "builtin", "--poll-interval", "0.1"];
  const key = "😀".repeat(256);
  const started = await cli([...base, "start", "-d", "--run-key", key, flow], { env });
  assert.equal(started.code, 0, started.stderr);
  assert.equal(JSON.parse(started.stdout).detached, true);
  const ticked = await cli([...base, "tick", "--run-key", key], { env });
  assert.equal(ticked.code, 0, ticked.stderr);
  assert.equal(JSON.parse(ticked.stdout).run_key, key);
  const cancelled = await cli([...base, "cancel", "--run-key", key, "--grace-seconds", "1"], { env });
  assert.equal(cancelled.code, 0, cancelled.stderr);
  assert.equal(JSON.parse(cancelled.stdout).status, "CANCELLED");
  const waited = await cli([...base, "wait", "--run-key", key, "--timeout", "60"], { env });
  assert.equal(waited.code, 4, waited.stderr);
  const locks = [...Deno.readDirSync(join(home, "locks"))].map((entry) => entry.name);
  assert.ok(locks.length > 0 && locks.every((name) => new TextEncoder().encode(name).length < 200), locks.join());
});

Deno.test("a run stored under a key the rule now refuses stays readable; no new run gets such a key", async () => {
  using dir = tempDir();
  const db = join(dir.path, "state.sqlite3");
  const flow = writeFile(dir.path, "one.yaml", "flow_id: one\nsteps:\n  - id: s\n    command: [sh, -c, 'echo hi']\n");
  const base = ["--db", db, "--executor", "builtin", "--poll-interval", "0.1"];
  const started = await cli([...base, "start", "-q", "--run-key", "old", flow]);
  assert.equal(started.code, 0, started.stderr);
  // As an older build stored it: a key with a no-break space, a zero-width space and a trailing space.
  const legacy = "old\u00a0key\u200b ";
  {
    using sqlite = new DatabaseSync(db);
    sqlite.exec("PRAGMA foreign_keys = OFF");
    for (const table of ["flow_runs", "flow_steps", "flow_rounds"]) {
      sqlite.prepare(`UPDATE ${table} SET run_key = ? WHERE run_key = 'old'`).run(legacy);
    }
  }
  const status = await cli([...base, "status", "--run-key", legacy]);
  assert.equal(status.code, 0, status.stderr);
  assert.equal(JSON.parse(status.stdout).run_key, legacy);
  assert.equal(JSON.parse(status.stdout).status, "SUCCEEDED");
  const table = await cli([...base, "status", "--run-key", legacy, "--format", "table"]);
  assert.equal(table.code, 0, table.stderr);
  // start of the stored run reports it (it has finished) rather than refusing its key.
  const again = await cli([...base, "start", "--run-key", legacy, flow]);
  assert.equal(again.code, 0, again.stderr);
  assert.equal(JSON.parse(again.stdout).run_key, legacy);
  const waited = await cli([...base, "wait", "--run-key", legacy]);
  assert.equal(waited.code, 0, waited.stderr);
  // A key like it that is not stored is refused, for a new run and for a look-up, and nothing is created.
  for (const argv of [["start", "--run-key", "new\u00a0key", flow], ["status", "--run-key", "old\u00a0key\u200b"]]) {
    const result = await cli([...base, ...argv]);
    assert.equal(result.code, 2, result.stderr);
    assert.match(errorLine(result).error, /invalid run key "(new|old)<U\+00A0>key.*": it contains U\+00A0/);
  }
  const list = await cli([...base, "list"]);
  assert.deepEqual(JSON.parse(list.stdout).map((run: { run_key: string }) => run.run_key), [legacy]);
});

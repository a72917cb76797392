/**
 * orchesjob's CLI contract, run against `orchesjob-flow job` through a two-line wrapper script, and
 * against a real orchesjob when ORCHESJOB_FLOW_TEST_ORCHESJOB names one (otherwise those cases are
 * reported skipped). A variable of its own, not ORCHESJOB_BIN: an operator's ORCHESJOB_BIN must not
 * change what the suite runs. Real processes, real state directories, no stubs.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { eventually, processAlive, tempDir, TEST_ENV, writeJobWrapper } from "../helpers.ts";
import { VERSION } from "../../src/cli/version.ts";

const JOB_KEYS = [
  "job_id",
  "run_key",
  "command",
  "pid",
  "pid_kind",
  "worker_pid",
  "target_pid",
  "status",
  "exit_code",
  "stdout_file",
  "stderr_file",
  "attempt_no",
  "rerun_of_job_id",
  "rerun_reason",
  "abort_reason",
  "started_at",
  "started_at_iso",
  "finished_at",
  "finished_at_iso",
  "updated_at",
  "updated_at_iso",
  "aborted_at",
  "aborted_at_iso",
];
const START_KEYS = [...JOB_KEYS, "accepted", "existing", "mode", "strict", "strict_override_used"];
const ABORT_KEYS = [
  ...JOB_KEYS,
  "aborted",
  "sent_term_target",
  "sent_term_worker",
  "sent_kill_target",
  "sent_kill_worker",
];

// deno-lint-ignore no-explicit-any
type Json = any;

interface Target {
  name: string;
  /** Whether this is our built-in runner (some checks go beyond what real orchesjob does). */
  builtin: boolean;
  bin?: string;
}

const wrapperDir = Deno.makeTempDirSync({ prefix: "ojf-wrapper-" });
globalThis.addEventListener("unload", () => Deno.removeSync(wrapperDir, { recursive: true }));
const REAL = Deno.env.get("ORCHESJOB_FLOW_TEST_ORCHESJOB") || undefined;
const TARGETS: Target[] = [
  { name: "orchesjob-flow job (wrapper)", builtin: true, bin: writeJobWrapper(wrapperDir) },
  REAL
    ? { name: "real orchesjob ($ORCHESJOB_FLOW_TEST_ORCHESJOB)", builtin: false, bin: REAL }
    : { name: "real orchesjob (skipped: ORCHESJOB_FLOW_TEST_ORCHESJOB is not set)", builtin: false },
];

/** One orchesjob "installation": a binary and its own ORCHESJOB_HOME. */
class Orchesjob {
  constructor(readonly bin: string, readonly home: string) {}

  async run(...args: string[]): Promise<{ code: number; json: Json; stdout: string; stderr: string }> {
    const output = await new Deno.Command(this.bin, {
      args,
      env: { ...TEST_ENV, ORCHESJOB_HOME: this.home, ORCHESJOB_FLOW_HOME: "" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(output.stdout);
    const stderr = new TextDecoder().decode(output.stderr);
    let json: Json = null;
    try {
      json = JSON.parse(stdout);
    } catch { /* logs, or an error */ }
    return { code: output.code, json, stdout, stderr };
  }

  /** Runs and requires exit 0 and JSON output. */
  async ok(...args: string[]): Promise<Json> {
    const result = await this.run(...args);
    assert.equal(result.code, 0, `${args.join(" ")}: ${result.stderr}`);
    return result.json;
  }

  async waitForStatus(runKey: string, statuses: string[]): Promise<Json> {
    let job: Json = null;
    await eventually(`${runKey} to reach ${statuses}`, async () => {
      job = await this.ok("status", "--run-key", runKey);
      return statuses.includes(job.status);
    }, 30);
    return job;
  }
}

function contract(name: string, fn: (oj: Orchesjob, target: Target) => Promise<void>): void {
  for (const target of TARGETS) {
    Deno.test({
      name: `${target.name}: ${name}`,
      ignore: target.bin === undefined,
      sanitizeResources: false,
      sanitizeOps: false,
      async fn() {
        using home = tempDir();
        await fn(new Orchesjob(target.bin!, join(home.path, "oj")), target);
      },
    });
  }
}

contract("--version prints `orchesjob <version>` and exits 0, creating nothing", async (oj, target) => {
  const result = await oj.run("--version");
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /^orchesjob \S+\n$/);
  if (!target.builtin) return;
  assert.equal(result.stdout, `orchesjob ${VERSION}\n`);
  assert.equal(result.stderr, "");
  assert.throws(() => Deno.statSync(oj.home), Deno.errors.NotFound);
});

contract("start returns the job with orchesjob's fields in order, and status returns the same job", async (oj) => {
  using dir = tempDir();
  // The job ends only once `go` exists, so it is still RUNNING when start answers, however slowly.
  const go = join(dir.path, "go");
  const started = await oj.ok(
    "start",
    "--run-key",
    "k",
    "--",
    "sh",
    "-c",
    `echo out; echo err >&2; while [ ! -f '${go}' ]; do sleep 0.05; done; exit 3`,
  );
  assert.deepEqual(Object.keys(started), START_KEYS);
  assert.equal(started.status, "RUNNING");
  assert.equal(started.pid_kind, "target");
  assert.equal(typeof started.target_pid, "number");
  assert.equal(started.accepted, true);
  assert.equal(started.existing, false);
  assert.equal(started.mode, "async");
  assert.equal(started.attempt_no, 1);
  assert.equal(typeof started.started_at, "number");
  assert.match(started.started_at_iso, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$/);
  Deno.writeTextFileSync(go, "");
  const done = await oj.waitForStatus("k", ["FAILED"]);
  assert.deepEqual(Object.keys(done), JOB_KEYS);
  assert.equal(done.job_id, started.job_id);
  assert.equal(done.exit_code, 3);
  assert.equal(typeof done.finished_at, "number");
  assert.equal((await oj.run("logs", "--run-key", "k")).stdout, "out\n");
  assert.equal((await oj.run("logs", "--run-key", "k", "--stream", "stderr")).stdout, "err\n");
});

contract(
  "an empty run key: start accepts it, status refuses it with exit 2 (orchesjob's own asymmetry)",
  async (oj) => {
    // The contract, as measured: start takes "" as a key; status reads "" as no key given.
    const started = await oj.ok("start", "--run-key", "", "--", "true");
    assert.equal(started.run_key, "");
    const status = await oj.run("status", "--run-key", "");
    assert.equal(status.code, 2, status.stderr);
    assert.match(status.stderr, /Either --run-key or --job-id is required/);
    // The job is there all the same, by its id.
    assert.equal((await oj.ok("status", "--job-id", started.job_id)).run_key, "");
  },
);

contract("a second start of an active run key returns the same job", async (oj) => {
  const first = await oj.ok("start", "--run-key", "k", "--", "sleep", "30");
  const second = await oj.ok("start", "--run-key", "k", "--", "echo", "ignored");
  assert.equal(second.job_id, first.job_id);
  assert.equal(second.existing, true);
  assert.equal(second.accepted, false);
  assert.deepEqual(second.command, ["sleep", "30"]);
  const running = await oj.ok("status", "--running");
  assert.deepEqual(running.map((job: Json) => job.job_id), [first.job_id]);
  await oj.ok("abort", "--run-key", "k", "--grace-seconds", "1");
});

contract("strict after completion returns the completed job; a plain start makes attempt 2", async (oj) => {
  const first = await oj.ok("start", "--run-key", "k", "--strict", "--sync", "--", "true");
  assert.equal(first.status, "SUCCEEDED");
  assert.equal(first.mode, "sync");
  const again = await oj.ok("start", "--run-key", "k", "--strict", "--", "true");
  assert.equal(again.job_id, first.job_id);
  assert.equal(again.accepted, false);
  assert.equal(again.existing, true);
  const plain = await oj.ok("start", "--run-key", "k", "--sync", "--", "true");
  assert.notEqual(plain.job_id, first.job_id);
  assert.equal(plain.attempt_no, 2);
  assert.equal(plain.rerun_of_job_id, first.job_id);
  const history = await oj.ok("status", "--run-key", "k", "--all");
  assert.deepEqual(history.map((job: Json) => job.attempt_no), [2, 1]);
});

contract("unlock, then start --strict, runs exactly once more", async (oj) => {
  const first = await oj.ok("start", "--run-key", "k", "--strict", "--sync", "--", "true");
  const unlocked = await oj.ok("unlock", "--run-key", "k", "--reason", "data fix", "--ttl", "30m");
  assert.equal(unlocked.unlocked, true);
  assert.equal(unlocked.expires_at - unlocked.allowed_at, 1800);
  const second = await oj.ok("start", "--run-key", "k", "--strict", "--sync", "--", "true");
  assert.equal(second.accepted, true);
  assert.equal(second.strict_override_used, true);
  assert.equal(second.rerun_reason, "data fix");
  assert.equal(second.attempt_no, 2);
  assert.equal(second.rerun_of_job_id, first.job_id);
  const third = await oj.ok("start", "--run-key", "k", "--strict", "--", "true");
  assert.equal(third.job_id, second.job_id);
  assert.equal(third.existing, true);
});

contract("rerun records rerun_of_job_id and the reason", async (oj) => {
  const first = await oj.ok("start", "--run-key", "k", "--strict", "--sync", "--", "sh", "-c", "exit 2");
  assert.equal(first.status, "FAILED");
  const rerun = await oj.ok("rerun", "--run-key", "k", "--sync", "--reason", "retry");
  assert.equal(rerun.rerun, true);
  assert.equal(rerun.rerun_of_job_id, first.job_id);
  assert.equal(rerun.rerun_reason, "retry");
  assert.equal(rerun.attempt_no, 2);
  assert.deepEqual(rerun.command, ["sh", "-c", "exit 2"]);
  assert.equal((await oj.ok("status", "--run-key", "k")).job_id, rerun.job_id);
});

contract("a job that ignores SIGTERM is killed after the grace period", async (oj) => {
  const started = await oj.ok(
    "start",
    "--run-key",
    "k",
    "--",
    "sh",
    "-c",
    "trap '' TERM; echo ready; while :; do sleep 0.1; done",
  );
  await eventually("the trap to be set", async () => (await oj.run("logs", "--run-key", "k")).stdout === "ready\n");
  const aborted = await oj.ok("abort", "--run-key", "k", "--grace-seconds", "0.5", "--reason", "test");
  assert.deepEqual(Object.keys(aborted), ABORT_KEYS);
  assert.equal(aborted.status, "ABORTED");
  assert.equal(aborted.abort_reason, "test");
  assert.equal(aborted.exit_code, null);
  assert.equal(aborted.sent_term_target, true);
  assert.equal(aborted.sent_kill_target, true);
  await eventually("the target to be gone", () => !processAlive(started.target_pid));
  assert.equal((await oj.ok("status", "--run-key", "k")).status, "ABORTED");
});

contract("after abort the whole process group, grandchildren included, is gone", async (oj, target) => {
  using dir = tempDir();
  const pids = join(dir.path, "pids");
  await oj.ok(
    "start",
    "--run-key",
    "k",
    "--",
    "sh",
    "-c",
    `sleep 300 & echo $! >> ${pids}; (sleep 300 & echo $! >> ${pids}; wait) & wait`,
  );
  await eventually("two grandchildren", () => {
    try {
      return Deno.readTextFileSync(pids).trim().split("\n").length === 2;
    } catch {
      return false;
    }
  });
  const grandchildren = Deno.readTextFileSync(pids).trim().split("\n").map(Number);
  assert.ok(grandchildren.every(processAlive));
  // A long grace costs nothing when SIGTERM works (abort returns once the group is gone), and on a
  // loaded machine the group may need more than a second or two to exit.
  const aborted = await oj.ok("abort", "--run-key", "k", "--grace-seconds", "60");
  assert.equal(aborted.sent_kill_target, false, "SIGTERM should have been enough");
  await eventually("every grandchild to be gone", () => !grandchildren.some(processAlive));
  if (target.builtin) await eventually("the supervisor is gone too", () => !processAlive(aborted.worker_pid));
});

contract("SIGKILL of the supervisor makes the job LOST", async (oj, target) => {
  const started = await oj.ok("start", "--run-key", "k", "--", "sleep", "30");
  Deno.kill(started.worker_pid, "SIGKILL");
  if (target.builtin) {
    // Beyond orchesjob: while the command lives on in the job's process group, the job stays active
    // (so no retry can run beside it); it is LOST once the group is empty.
    await eventually("the supervisor is dead", () => !processAlive(started.worker_pid));
    assert.equal((await oj.ok("status", "--run-key", "k")).status, "RUNNING");
    assert.equal((await oj.ok("status", "--running")).length, 1);
    Deno.kill(started.target_pid, "SIGKILL");
  }
  const lost = await oj.waitForStatus("k", ["LOST"]);
  assert.equal(lost.exit_code, null);
  assert.equal(typeof lost.finished_at, "number");
  assert.deepEqual(await oj.ok("status", "--running"), []);
  if (processAlive(started.target_pid)) Deno.kill(started.target_pid, "SIGKILL"); // orphaned, as with orchesjob
});

contract("a command that does not exist is FAILED with exit code -1", async (oj, target) => {
  const started = await oj.ok("start", "--run-key", "k", "--", "/nonexistent/program", "arg");
  const job = started.status === "FAILED" ? started : await oj.waitForStatus("k", ["FAILED"]);
  assert.equal(job.exit_code, -1);
  assert.equal(job.target_pid, null);
  if (target.builtin) {
    // Beyond orchesjob (whose stderr file stays empty): the reason is in the job's stderr file.
    assert.match(Deno.readTextFileSync(job.stderr_file), /cannot execute '\/nonexistent\/program'/);
  }
});

contract("a signal death is a negative exit code; start --sync of a failing command exits 0", async (oj) => {
  const job = await oj.ok("start", "--run-key", "k", "--sync", "--", "sh", "-c", "kill -9 $$");
  assert.equal(job.status, "FAILED");
  assert.equal(job.exit_code, -9);
});

contract("errors use orchesjob's exit codes", async (oj) => {
  assert.equal((await oj.run("status", "--run-key", "nope")).code, 3);
  assert.equal((await oj.run("status", "--job-id", "a/b")).code, 2);
  assert.equal((await oj.run("status", "--job-id", "no-such-id")).code, 3);
  assert.equal((await oj.run("start", "--run-key", "k")).code, 2);
  assert.equal((await oj.run("start", "--run-key", "k", "--")).code, 2);
  assert.equal((await oj.run("abort", "--run-key", "nope")).code, 3);
  await oj.ok("start", "--run-key", "done", "--sync", "--", "true");
  assert.equal((await oj.run("abort", "--run-key", "done")).code, 4);
  assert.equal((await oj.run("unlock", "--run-key", "done", "--ttl", "10x")).code, 2);
  assert.equal((await oj.run("unlock", "--run-key", "done", "--ttl", "0")).code, 2);
  assert.equal((await oj.run("unlock", "--run-key", "nope")).code, 3);
  assert.equal((await oj.run("clean")).code, 2);
  assert.equal((await oj.run("clean", "--all", "--before", "2026-01-01")).code, 2);
  assert.equal((await oj.run("clean", "--before", "yesterday")).code, 2);
  await oj.ok("start", "--run-key", "busy", "--", "sleep", "30");
  assert.equal((await oj.run("unlock", "--run-key", "busy")).code, 4);
  assert.equal((await oj.run("rerun", "--run-key", "busy")).code, 4);
  await oj.ok("abort", "--run-key", "busy", "--grace-seconds", "1");
});

contract("clean --before and --after read times as Python 3.11's datetime.fromisoformat does", async (oj) => {
  const job = await oj.ok("start", "--run-key", "k", "--sync", "--", "true");
  const at: number = job.finished_at;
  const count = async (...args: string[]) => (await oj.ok("clean", ...args, "--dry-run")).deleted;
  const pad = (n: number, width = 2) => String(n).padStart(width, "0");
  // Basic format, UTC: the second the job finished is not before itself; the next second is.
  const utc = (s: number) => {
    const d = new Date(s * 1000);
    return `${d.getUTCFullYear()}${pad(d.getUTCMonth() + 1)}${pad(d.getUTCDate())}` +
      `T${pad(d.getUTCHours())}${pad(d.getUTCMinutes())}${pad(d.getUTCSeconds())}`;
  };
  assert.equal(await count("--before", `${utc(at)}Z`), 0);
  assert.equal(await count("--before", `${utc(at + 1)}Z`), 1);
  assert.equal(await count("--before", `${utc(at + 1)},5+00`), 1);
  assert.equal(await count("--after", `${utc(at + 1)}-0000`), 0);
  // Without an offset, basic format is local time, as with the extended one.
  const d = new Date((at + 1) * 1000);
  const local = `${d.getFullYear()}${pad(d.getMonth() + 1)}${pad(d.getDate())}` +
    `T${pad(d.getHours())}${pad(d.getMinutes())}${pad(d.getSeconds())}`;
  assert.equal(await count("--before", local), 1);
  // A week date (Monday of the job's ISO week, UTC) and its hour-only time: the week started before the job.
  const finished = new Date(at * 1000);
  const day = new Date(Date.UTC(finished.getUTCFullYear(), finished.getUTCMonth(), finished.getUTCDate()));
  day.setUTCDate(day.getUTCDate() + 3 - ((day.getUTCDay() + 6) % 7)); // the Thursday names the ISO year
  const isoYear = day.getUTCFullYear();
  const week = 1 + Math.floor((day.getTime() - Date.UTC(isoYear, 0, 1)) / (7 * 86_400_000));
  assert.equal(await count("--after", `${isoYear}-W${pad(week)}-1T00Z`), 1);
  assert.equal(await count("--before", `${isoYear}W${pad(week)}1T00+00:00`), 0);
  // What Python refuses is exit 2 with orchesjob's message, one line.
  for (const text of ["2026-001", "2026-01-01T12:00z", " 2026-01-01", "2026-W01-8"]) {
    const refused = await oj.run("clean", "--before", text);
    assert.equal(refused.code, 2, text);
    assert.match(refused.stderr, /^.*Invalid --before: '.*'\. Use ISO 8601 format.*\n$/, text);
  }
  assert.equal((await oj.run("clean", "--after", "2026-01-01T24:00")).code, 2);
});

contract("clean deletes finished jobs and their logs; a dry run changes nothing", async (oj) => {
  const job = await oj.ok("start", "--run-key", "k", "--sync", "--", "echo", "hi");
  const dry = await oj.ok("clean", "--all", "--run-key", "k", "--dry-run");
  assert.equal(dry.deleted, 1);
  assert.equal(dry.dry_run, true);
  assert.equal((await oj.ok("status", "--run-key", "k")).job_id, job.job_id);
  const cleaned = await oj.ok("clean", "--all");
  assert.equal(cleaned.deleted, 1);
  assert.deepEqual(cleaned.items.map((item: Json) => item.job_id), [job.job_id]);
  assert.equal((await oj.run("status", "--run-key", "k")).code, 3);
  assert.equal((await oj.run("logs", "--job-id", job.job_id)).code, 3);
  assert.deepEqual(await oj.ok("clean", "--all"), { deleted: 0, errors: 0 });
});

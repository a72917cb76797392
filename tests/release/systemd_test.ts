/**
 * examples/systemd/: the unit files pass `systemd-analyze verify` where it is installed, their keys are
 * checked everywhere, and the commands they (and the crontab line) run are run here for real, with the
 * unit and cron escapes undone, against a temporary state directory: a second start of the same day
 * reports the run instead of starting the flow again.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { CLI, eventually, processAlive, REPO, tempDir, writeFile } from "../helpers.ts";

const DIR = join(REPO, "examples", "systemd");
const SERVICE = Deno.readTextFileSync(join(DIR, "orchesjob-flow@.service"));
const TIMER = Deno.readTextFileSync(join(DIR, "orchesjob-flow@.timer"));
const CRONTAB = Deno.readTextFileSync(join(DIR, "orchesjob-flow.crontab"));
const BINARY = "/usr/local/bin/orchesjob-flow";

/** `Key=value` pairs of one section (comments and blank lines skipped). */
function section(unit: string, name: string): Map<string, string[]> {
  const keys = new Map<string, string[]>();
  let current = "";
  for (const line of unit.split("\n")) {
    if (/^\s*(#|;|$)/.test(line)) continue;
    const header = line.match(/^\[(.+)\]$/);
    if (header) {
      current = header[1];
      continue;
    }
    if (current !== name) continue;
    const [key, ...value] = line.split("=");
    keys.set(key, [...(keys.get(key) ?? []), value.join("=")]);
  }
  return keys;
}

function today(): string {
  const now = new Date();
  const pad = (n: number) => String(n).padStart(2, "0");
  return `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}`;
}

/**
 * A stand-in for the installed binary: this checkout under deno run, on the built-in runner. It names
 * Deno's cache itself, so that it runs in cron's environment too, which has no DENO_DIR.
 */
function fakeBinary(dir: string): string {
  const path = writeFile(
    dir,
    "orchesjob-flow",
    `#!/bin/sh\nDENO_DIR='${denoDir()}'; export DENO_DIR\n` +
      `exec ${CLI.map((a) => `'${a}'`).join(" ")} --executor builtin --poll-interval 0.1 "$@"\n`,
  );
  Deno.chmodSync(path, 0o755);
  return path;
}

function env(home: string): Record<string, string> {
  const inherited = Object.entries(Deno.env.toObject()).filter(([name]) => !name.startsWith("ORCHESJOB"));
  return { ...Object.fromEntries(inherited), HOME: home, TMPDIR: home, DENO_DIR: denoDir() };
}

/** What cron gives a job (crontab(5)): SHELL, PATH, HOME and LOGNAME, nothing else. */
function cronEnv(home: string): Record<string, string> {
  return { SHELL: "/bin/sh", PATH: "/usr/bin:/bin", HOME: home, LOGNAME: Deno.env.get("LOGNAME") ?? "root" };
}

/** Deno's cache stays where it is when HOME changes (its default location depends on HOME). */
function denoDir(): string {
  const output = new Deno.Command(Deno.execPath(), { args: ["info", "--json"], stdout: "piped" }).outputSync();
  return JSON.parse(new TextDecoder().decode(output.stdout)).denoDir;
}

async function sh(command: string, environment: Record<string, string>) {
  const output = await new Deno.Command("/bin/sh", {
    args: ["-c", command],
    clearEnv: true,
    env: environment,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return { code: output.code, stdout: decoder.decode(output.stdout), stderr: decoder.decode(output.stderr) };
}

const FLOW = `flow_id: daily-import
steps:
  - id: only
    command: "sleep 2; echo done"
`;

Deno.test({
  name: "systemd-analyze verify accepts the service and the timer, with no warning",
  ignore: !["/usr/bin/systemd-analyze", "/bin/systemd-analyze"].some((p) => {
    try {
      return Deno.statSync(p).isFile;
    } catch {
      return false;
    }
  }),
  async fn() {
    using dir = tempDir();
    // Templates are verified as an instance, the pair the timer activates.
    writeFile(dir.path, "orchesjob-flow@daily-import.service", SERVICE);
    writeFile(dir.path, "orchesjob-flow@daily-import.timer", TIMER);
    const output = await new Deno.Command("systemd-analyze", {
      args: ["verify", "orchesjob-flow@daily-import.service", "orchesjob-flow@daily-import.timer"],
      cwd: dir.path,
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(output.stdout) + new TextDecoder().decode(output.stderr);
    assert.equal(output.code, 0, text);
    // verify exits 0 on an unknown key or a bad value and only warns; any line naming our units fails.
    assert.ok(!text.includes("orchesjob-flow@"), text);
    // The check can fail: a misspelt key is reported.
    writeFile(dir.path, "orchesjob-flow@broken.service", SERVICE.replace("SuccessExitStatus", "SucessExitStatus"));
    const broken = await new Deno.Command("systemd-analyze", {
      args: ["verify", "orchesjob-flow@broken.service"],
      cwd: dir.path,
      stdout: "piped",
      stderr: "piped",
    }).output();
    assert.match(new TextDecoder().decode(broken.stderr), /Unknown key 'SucessExitStatus'/);
  },
});

Deno.test("the service and timer have the keys the README describes", () => {
  const service = section(SERVICE, "Service");
  assert.deepEqual(service.get("Type"), ["oneshot"]);
  assert.deepEqual(service.get("StateDirectory"), ["orchesjob-flow"]);
  assert.deepEqual(service.get("SuccessExitStatus"), ["4"]);
  const [execStart, ...more] = service.get("ExecStart")!;
  assert.equal(more.length, 0);
  assert.ok(execStart.includes(`${BINARY} --db "%S/orchesjob-flow/orchesjob-flow.sqlite3" start --run-key`));
  assert.ok(!/ start -d /.test(execStart), "a unit must run the foreground start");
  // Every % is a specifier systemd knows (%i instance, %S state root) or an escaped %%.
  for (const match of execStart.matchAll(/%(.)/g)) assert.ok(["i", "S", "%"].includes(match[1]), match[0]);
  assert.ok(!/(^|[^%])%[YmdHM]/.test(execStart), "date formats need %%");
  assert.ok(!/[^$]\$\(/.test(execStart), "a shell $ is written $$");

  const timer = section(TIMER, "Timer");
  assert.ok(timer.get("OnCalendar")?.length === 1);
  assert.deepEqual(timer.get("Persistent"), ["true"]);
  assert.deepEqual(section(TIMER, "Install").get("WantedBy"), ["timers.target"]);
  assert.equal(timer.get("Unit"), undefined, "the timer activates the service instance of the same name");
});

/**
 * The unit's ExecStart as systemd runs it for the instance daily-import, its escapes undone, with `flow`
 * as /etc/orchesjob-flow/daily-import.yaml; the state directory made as StateDirectory= makes it.
 */
function unitCommand(dir: string, flow: string): { command: string; state: string } {
  const binary = fakeBinary(dir);
  const etc = join(dir, "etc");
  Deno.mkdirSync(etc);
  writeFile(etc, "daily-import.yaml", flow);
  const state = join(dir, "state");
  Deno.mkdirSync(join(state, "orchesjob-flow"), { recursive: true, mode: 0o700 }); // what StateDirectory= does
  const execStart = section(SERVICE, "Service").get("ExecStart")![0]
    .replaceAll("%i", "daily-import")
    .replaceAll("%S", state)
    .replaceAll("%%", "%")
    .replaceAll("$$", "$")
    .replace(BINARY, binary)
    .replace("/etc/orchesjob-flow/", `${etc}/`);
  return { command: execStart.match(/^\/bin\/sh -c '(.*)'$/)![1], state };
}

Deno.test("the service's ExecStart, escapes undone, runs the flow once per day's run key", async () => {
  using dir = tempDir();
  const { command, state } = unitCommand(dir.path, FLOW);

  const day = today();
  const first = await sh(command, env(dir.path));
  assert.equal(first.code, 0, first.stderr);
  const run = JSON.parse(first.stdout);
  assert.ok([`daily-import-${day}`, `daily-import-${today()}`].includes(run.run_key), run.run_key);
  assert.equal(run.status, "SUCCEEDED");
  assert.ok(Deno.statSync(join(state, "orchesjob-flow", "orchesjob-flow.sqlite3")).isFile);

  // A second activation the same day reports the finished run (same key) instead of running it again.
  const second = await sh(command, env(dir.path));
  assert.equal(second.code, 0, second.stderr);
  const again = JSON.parse(second.stdout);
  assert.equal(again.run_key, run.run_key);
  // The same job, not a new one: the step ran once.
  assert.equal(again.steps[0].attempt_no, 1);
  assert.equal(again.steps[0].orchesjob_status.job_id, run.steps[0].orchesjob_status.job_id);
});

Deno.test({
  name: "stopping the unit (SIGTERM to its whole cgroup): exit 130, and the next activation retries the killed step",
  // The cgroup is stood in for by what its processes share: a variable in their environment (/proc).
  ignore: Deno.build.os !== "linux",
  async fn() {
    using dir = tempDir();
    const ran = join(dir.path, "ran");
    // The first attempt runs until it is killed; the retry ends at once.
    const once = join(dir.path, "started-once");
    const long = `echo started >> '${ran}'; [ -f '${once}' ] || { touch '${once}'; sleep 600; }`;
    const flow = `flow_id: daily-import
steps:
  - id: long
    retries: 1
    command: ${JSON.stringify(long)}
  - id: after
    depends_on: [long]
    command: "true"
`;
    const { command } = unitCommand(dir.path, flow);
    const mark = `ORCHESJOB_FLOW_TEST_CGROUP=${crypto.randomUUID()}`;
    const unitEnv = { ...env(dir.path), [mark.split("=")[0]]: mark.split("=")[1] };
    const service = new Deno.Command("/bin/sh", {
      args: ["-c", command],
      clearEnv: true,
      env: unitEnv,
      cwd: dir.path,
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    await eventually("the step runs", () => {
      try {
        return Deno.readTextFileSync(ran) !== "";
      } catch {
        return false;
      }
    });
    // systemctl stop: KillMode=control-group signals every process of the unit at once, the driver, the
    // job supervisors (each in a session of its own, still in the cgroup) and the commands.
    const inUnit = () =>
      [...Deno.readDirSync("/proc")].filter((entry) => /^\d+$/.test(entry.name)).map((entry) => Number(entry.name))
        .filter((pid) => {
          try {
            return Deno.readTextFileSync(`/proc/${pid}/environ`).split("\0").includes(mark);
          } catch {
            return false;
          }
        });
    // As systemd does, the sweep is made again until it finds no process it has not signalled (one
    // forked meanwhile by a process it had not reached yet).
    const signalled = new Set<number>();
    for (let fresh = inUnit(); fresh.length > 0; fresh = inUnit().filter((pid) => !signalled.has(pid))) {
      for (const pid of fresh) {
        signalled.add(pid);
        try {
          Deno.kill(pid, "SIGTERM");
        } catch { /* gone meanwhile */ }
      }
    }
    assert.ok(signalled.size >= 3, `driver, supervisor and command: ${[...signalled]}`);
    const stopped = await service.output();
    assert.equal(stopped.code, 130, new TextDecoder().decode(stopped.stderr));
    await eventually("the unit's processes are gone (within TimeoutStopSec)", () => inUnit().length === 0);

    // The same day's next activation (systemctl start) carries the run on: the killed attempt failed, and
    // the step's retry runs it again.
    const again = await sh(command, env(dir.path));
    assert.equal(again.code, 0, again.stderr);
    const run = JSON.parse(again.stdout);
    assert.equal(run.status, "SUCCEEDED");
    const step = run.steps.find((step: { id: string }) => step.id === "long");
    assert.equal(step.attempt_no, 2, "the attempt the stop killed failed and was retried");
    assert.match(step.retry_history[0].error, /exit code -15/);
    assert.equal(Deno.readTextFileSync(ran), "started\nstarted\n");
  },
});

Deno.test("the crontab line, as cron runs it (its environment only), starts the day's run once; overlapping starts report it, a killed driver is replaced", async () => {
  using dir = tempDir();
  const binary = fakeBinary(dir.path);
  Deno.mkdirSync(join(dir.path, "flows"));
  // The step runs until `go` exists, so the second line surely overlaps the first one's run.
  const go = join(dir.path, "go");
  writeFile(
    join(dir.path, "flows"),
    "daily-import.yaml",
    FLOW.replace(
      '"sleep 2; echo done"',
      JSON.stringify(`while [ -d '${dir.path}' ] && [ ! -f '${go}' ]; do sleep 0.05; done; echo done`),
    ),
  );
  const line = CRONTAB.split("\n").find((l) => l !== "" && !l.startsWith("#"))!;
  const fields = line.split(/\s+/);
  assert.deepEqual(fields.slice(0, 5), ["*/10", "2-3", "*", "*", "*"]);
  const rawCommand = line.replace(/^(\S+\s+){5}/, "");
  // cron turns an unescaped % into a newline: every % must be written \%.
  assert.ok(!/(^|[^\\])%/.test(rawCommand), "unescaped % in the crontab line");
  const command = rawCommand.replaceAll("\\%", "%").replace(BINARY, binary);
  const log = join(dir.path, "orchesjob-flow-cron.log");

  const day = today();
  const first = await sh(command, cronEnv(dir.path));
  assert.equal(first.code, 0, Deno.readTextFileSync(log));
  assert.match(Deno.readTextFileSync(log), /"detached": true/);
  // The driver is still working on the step: the next line of the schedule only reports.
  const overlap = await sh(command, cronEnv(dir.path));
  assert.equal(overlap.code, 0, Deno.readTextFileSync(log));
  const reports = Deno.readTextFileSync(log).split(/^(?=\{)/m).map((text) => JSON.parse(text));
  assert.equal(reports.length, 2, Deno.readTextFileSync(log));
  assert.equal(reports[0].detached, true);
  assert.equal(reports[1].detached, false);
  assert.equal(reports[1].status, "RUNNING");
  assert.equal(reports[1].run_key, reports[0].run_key);
  // A driver killed (SIGKILL, as the OOM killer would) is replaced by the next line, and the step's job,
  // which runs on without it, is not started again.
  Deno.kill(reports[0].pid, "SIGKILL");
  await eventually("the killed driver is gone", () => !processAlive(reports[0].pid));
  const next = await sh(command, cronEnv(dir.path));
  assert.equal(next.code, 0, Deno.readTextFileSync(log));
  const resumed = JSON.parse(Deno.readTextFileSync(log).split(/^(?=\{)/m)[2]);
  assert.equal(resumed.detached, true, "the next line drives the run again");
  assert.notEqual(resumed.pid, reports[0].pid);
  Deno.writeTextFileSync(go, "");

  const db = join(dir.path, ".local", "state", "orchesjob-flow", "orchesjob-flow.sqlite3");
  // The day the shell's `date` saw (the test may have run across midnight).
  const key = reports[0].run_key;
  assert.ok([`daily-import-${day}`, `daily-import-${today()}`].includes(key), key);
  const watched = await sh(
    `'${binary}' --db '${db}' watch --run-key '${key}' --mode append --interval 0.2`,
    env(dir.path),
  );
  assert.equal(watched.code, 0, watched.stderr);
  const status = await sh(`'${binary}' --db '${db}' status --run-key '${key}'`, env(dir.path));
  const run = JSON.parse(status.stdout);
  assert.equal(run.status, "SUCCEEDED");
  assert.equal(run.steps[0].attempt_no, 1, "the step ran once");
});

Deno.test("the README shows the same ExecStart and crontab line as the files, and a foreground systemd-run", () => {
  const readme = Deno.readTextFileSync(join(REPO, "README.md"));
  const execStart = SERVICE.split("\n").find((l) => l.startsWith("ExecStart="))!;
  assert.ok(readme.includes(`\n${execStart}\n`), "README ExecStart differs from the unit file");
  const cronLine = CRONTAB.split("\n").find((l) => l !== "" && !l.startsWith("#"))!;
  assert.ok(readme.includes(`\n${cronLine}\n`), "README crontab line differs from the file");
  const run = readme.match(/sudo systemd-run --unit (\S+) -p StateDirectory=orchesjob-flow --collect \\\n(.*)\n/);
  assert.ok(run, "README has the systemd-run one-liner");
  assert.match(
    run[2],
    /^ {2}\/usr\/local\/bin\/orchesjob-flow --db \/var\/lib\/orchesjob-flow\/orchesjob-flow\.sqlite3 start --run-key /,
  );
  assert.ok(!run[2].includes(" -d "), "systemd-run must run the foreground start");
  // The commands it gives for the unit's runs name the unit's state file: without --db they read the
  // caller's own one, which has no such run (exit 3).
  const unitDb = "--db /var/lib/orchesjob-flow/orchesjob-flow.sqlite3";
  for (const text of [readme, SERVICE]) {
    assert.ok(
      text.includes(`orchesjob-flow ${unitDb} resume --run-key NAME-DATE`),
      "resume of a unit's run names its --db",
    );
    assert.doesNotMatch(text, /orchesjob-flow (resume|retry|status|cancel|wait|watch) --run-key NAME-DATE/);
  }
  for (
    const words of ["loginctl enable-linger", "KillUserProcesses=yes", "KillMode=control-group", "SuccessExitStatus=4"]
  ) {
    assert.ok(readme.includes(words), words);
  }
});

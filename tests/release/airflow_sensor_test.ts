/**
 * README "Waiting from another machine": the Airflow sensor's Python, as the README gives it, run by
 * python3 against stand-ins for the three Airflow modules it imports (the SSH hook runs its command
 * with `sh -c` here) and this checkout as the installed `orchesjob-flow`. Its `poke` must answer True
 * for SUCCEEDED, False while the run goes on (124; the README's 30 s wait is shortened to 1 s), and
 * fail the task for FAILED (1), CANCELLED (4) and a run key the host never started (3); `db` must
 * reach the state file of a run started with `--db` (the systemd unit's and the crontab line's are),
 * and a run key with a space must arrive as one word. Skipped without python3.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { CLI, cli, REPO, tempDir, TEST_ENV, writeFile } from "../helpers.ts";

const PYTHON = (Deno.env.get("PATH") ?? "/usr/bin:/bin").split(":").map((dir) => join(dir, "python3")).find((path) => {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
});

/** The README's sensor: the first ```python block. */
function readmeSensor(): string {
  const block = Deno.readTextFileSync(join(REPO, "README.md")).match(/```python\n([\s\S]*?)```/);
  assert.ok(block, "README has the sensor");
  return block[1];
}

const STUBS: Record<string, string> = {
  "airflow/__init__.py": "",
  "airflow/exceptions.py": "class AirflowFailException(Exception):\n    pass\n",
  "airflow/sensors/__init__.py": "",
  "airflow/sensors/base.py": [
    "class BaseSensorOperator:",
    "    def __init__(self, *, task_id, poke_interval=60, mode='poke', **kwargs):",
    "        self.task_id, self.poke_interval, self.mode = task_id, poke_interval, mode",
    "",
  ].join("\n"),
  "airflow/providers/__init__.py": "",
  "airflow/providers/ssh/__init__.py": "",
  "airflow/providers/ssh/hooks/__init__.py": "",
  // exec_command runs the command as sshd would hand it to the login shell; stdout/stderr are left to
  // the test's pipes.
  "airflow/providers/ssh/hooks/ssh.py": [
    "import subprocess",
    "",
    "class _Channel:",
    "    def __init__(self, process):",
    "        self.process = process",
    "    def recv_exit_status(self):",
    "        return self.process.wait()",
    "",
    "class _Stdout:",
    "    def __init__(self, process):",
    "        self.channel = _Channel(process)",
    "",
    "class _Client:",
    "    def __enter__(self):",
    "        return self",
    "    def __exit__(self, *exc):",
    "        return False",
    "    def exec_command(self, command):",
    "        process = subprocess.Popen(['sh', '-c', command], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)",
    "        return None, _Stdout(process), None",
    "",
    "class SSHHook:",
    "    def __init__(self, ssh_conn_id):",
    "        self.ssh_conn_id = ssh_conn_id",
    "    def get_conn(self):",
    "        return _Client()",
    "",
  ].join("\n"),
};

/** Pokes once per (run key, db) and prints one JSON line each: the answer, or the exception. */
const DRIVER = `
import json, sys
sys.path.insert(0, sys.argv[1])
source = open(sys.argv[2]).read().replace('"--timeout", "30"', '"--timeout", "1"')
namespace = {}
exec(source, namespace)
for key, db in json.loads(sys.argv[3]):
    sensor = namespace["FlowRunSensor"](task_id="t", ssh_conn_id="edge-01", run_key=key, db=db)
    try:
        print(json.dumps({"key": key, "poke": sensor.poke({})}))
    except Exception as error:
        print(json.dumps({"key": key, "raised": type(error).__name__, "message": str(error)}))
`;

Deno.test({
  name: "the README's Airflow sensor: True, False, or a failed task for each way a run ends",
  ignore: PYTHON === undefined,
  async fn() {
    using dir = tempDir();
    for (const [path, text] of Object.entries(STUBS)) {
      Deno.mkdirSync(join(dir.path, "stubs", path, ".."), { recursive: true });
      writeFile(join(dir.path, "stubs"), path, text);
    }
    const source = readmeSensor();
    assert.match(source, /"--timeout", "30"/, "the test shortens the sensor's wait");
    const sensor = writeFile(dir.path, "sensor.py", source);
    const driver = writeFile(dir.path, "drive.py", DRIVER);
    const bin = join(dir.path, "bin");
    Deno.mkdirSync(bin);
    const program = writeFile(
      bin,
      "orchesjob-flow",
      `#!/bin/sh\nexec ${CLI.map((a) => `'${a}'`).join(" ")} --executor builtin --poll-interval 0.1 "$@"\n`,
    );
    Deno.chmodSync(program, 0o755);
    // The SSH user's default state file, and another one given with --db (as the systemd unit does).
    const env = { ...TEST_ENV, PATH: `${bin}:${TEST_ENV.PATH}`, ORCHESJOB_FLOW_HOME: join(dir.path, "home") };
    const unitDb = join(dir.path, "unit state", "orchesjob-flow.sqlite3");
    const flow = (name: string, command: string) =>
      writeFile(
        dir.path,
        `${name}.yaml`,
        `flow_id: ${name}\nsteps:\n  - id: a\n    command: ${JSON.stringify(command)}\n`,
      );
    const start = async (args: string[], code = 0) => {
      const result = await cli(args, { env });
      assert.equal(result.code, code, result.stderr);
    };
    await start(["start", "--run-key", "import-ok", flow("ok", "true")]);
    await start(["start", "--run-key", "import-failed", flow("failed", "exit 3")], 1);
    // Also ends once the test's directory is gone: a step left behind must not poll for ever.
    const long = flow(
      "long",
      `while [ -d '${dir.path}' ] && [ ! -f '${join(dir.path, "go")}' ]; do sleep 0.05; done`,
    );
    await start(["start", "-d", "--run-key", "import-running", long]);
    await start(["start", "-d", "--run-key", "import-cancelled", long]);
    await start(["cancel", "--run-key", "import-cancelled", "--grace-seconds", "1"]);
    await start(["--db", unitDb, "start", "--run-key", "import 2026-11-23", flow("unit", "true")]);

    const output = await new Deno.Command(PYTHON!, {
      args: [
        driver,
        join(dir.path, "stubs"),
        sensor,
        JSON.stringify([
          ["import-ok", null],
          ["import-running", null],
          ["import-failed", null],
          ["import-cancelled", null],
          ["import-never", null],
          ["import 2026-11-23", unitDb],
          ["import 2026-11-23", null],
        ]),
      ],
      env,
      stdout: "piped",
      stderr: "piped",
    }).output();
    Deno.writeTextFileSync(join(dir.path, "go"), "");
    // The running one's detached driver ends it before the directory goes.
    await start(["wait", "--run-key", "import-running", "--timeout", "60"]);
    const stderr = new TextDecoder().decode(output.stderr);
    assert.equal(output.code, 0, stderr);
    const pokes = new TextDecoder().decode(output.stdout).trim().split("\n").map((line) => JSON.parse(line));
    const failed = (code: number) => ({ raised: "AirflowFailException", code });
    const seen = pokes.map((poke) =>
      "poke" in poke ? poke.poke : { raised: poke.raised, code: Number(poke.message.match(/exit code (\d+)$/)?.[1]) }
    );
    assert.deepEqual(seen, [
      true, // SUCCEEDED
      false, // still running: 124
      failed(1),
      failed(4),
      failed(3), // never started on that host
      true, // found in the state file given as db, its key one word with its space
      failed(3), // the same key in the SSH user's own state file: not there
    ], stderr);
  },
});

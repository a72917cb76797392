/**
 * README "Waiting from another machine": the shell loop is run here as written, with `ssh edge-01 CMD`
 * standing for a local `sh -c CMD` and this checkout for the installed binary, under `sh` and under
 * `sh -e` (CI runners run job scripts with `-e`: GitHub Actions' `bash -e`, GitLab CI). Only the waits
 * are shortened (`--timeout 300` to 1 s, the 60 s pause after an ssh failure to 0.1 s), so that every
 * branch of its `case` is taken: a run that ends SUCCEEDED after a "still running" line, one that ends
 * FAILED and one an operator cancels, a run key that was never started, and an ssh failure (255).
 */
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { CLI, cli, collectText, eventually, REPO, tempDir, TEST_ENV, writeFile } from "../helpers.ts";

const README = Deno.readTextFileSync(join(REPO, "README.md"));

/** The shell block after "The same from a shell", as the README gives it. */
function readmeLoop(): string {
  const after = README.slice(README.indexOf("The same from a shell"));
  const block = after.match(/```sh\n([\s\S]*?)```/);
  assert.ok(block, "README has the shell loop");
  return block[1];
}

interface Host {
  dir: string;
  env: Record<string, string>;
  /** The loop with this host's flow file and shortened waits. */
  script: string;
}

/**
 * A host in a temporary directory: an `orchesjob-flow` on PATH (this checkout on the built-in runner),
 * an `ssh` that runs its command here (its first `failures` calls of `wait` fail with 255 instead), and the
 * flow file.
 */
function host(dir: string, flow: string | null, failures = 0): Host {
  const bin = join(dir, "bin");
  Deno.mkdirSync(bin);
  const program = writeFile(
    bin,
    "orchesjob-flow",
    `#!/bin/sh\nexec ${CLI.map((a) => `'${a}'`).join(" ")} --executor builtin --poll-interval 0.1 "$@"\n`,
  );
  const ssh = writeFile(
    bin,
    "ssh",
    [
      "#!/bin/sh",
      `count='${join(dir, "ssh-failures")}'`,
      `n=$(cat "$count" 2>/dev/null || echo 0)`,
      `case $2 in *" wait "*) ;; *) n=${failures} ;; esac`,
      `if [ "$n" -lt ${failures} ]; then echo $((n + 1)) > "$count"; echo "ssh: connect to host $1: Connection refused" >&2; exit 255; fi`,
      'shift; exec sh -c "$1"',
      "",
    ].join("\n"),
  );
  for (const path of [program, ssh]) Deno.chmodSync(path, 0o755);
  if (flow !== null) writeFile(dir, "import.yaml", flow);
  const script = readmeLoop()
    .replace("/srv/flows/import.yaml", join(dir, "import.yaml"))
    .replace("--timeout 300", "--timeout 1")
    .replace("sleep 60", "sleep 0.1");
  return {
    dir,
    env: { ...TEST_ENV, PATH: `${bin}:${TEST_ENV.PATH}`, ORCHESJOB_FLOW_HOME: join(dir, "state") },
    script,
  };
}

/** Runs the loop; `during` is given what it has printed so far, and the loop is awaited once it returns. */
async function runLoop(h: Host, shellOptions: string[], during?: (printed: () => string) => Promise<void>) {
  const child = new Deno.Command("/bin/sh", {
    args: [...shellOptions, "-c", h.script],
    env: h.env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stdout = collectText(child.stdout);
  const stderr = collectText(child.stderr);
  await during?.(() => stdout.text + stderr.text);
  const { code } = await child.status;
  return { code, stdout: await stdout.done, stderr: await stderr.done };
}

/** Resolves once `printed` shows the loop's "still running" line: a wait has timed out (124). */
const stillRunning = (printed: () => string) =>
  eventually("the loop says the run is still running", () => /still running/.test(printed()));

/**
 * A step that runs until `go` exists, so the first waits surely time out (or until the test's directory
 * is gone: a step left behind must not poll for ever).
 */
const gatedFlow = (go: string, exit: number) =>
  `flow_id: import\nsteps:\n  - id: load\n    command: ${
    JSON.stringify(`while [ -d '${dirname(go)}' ] && [ ! -f '${go}' ]; do sleep 0.05; done; exit ${exit}`)
  }\n`;

for (const shellOptions of [[], ["-e"]]) {
  const shell = ["sh", ...shellOptions].join(" ");

  Deno.test(`${shell}: the README's wait loop reports "still running", then exits 0 once the run SUCCEEDED`, async () => {
    using dir = tempDir();
    const go = join(dir.path, "go");
    const h = host(dir.path, gatedFlow(go, 0), 1);
    // Released only once the loop has said that the run is still going (after the failed ssh).
    const result = await runLoop(h, shellOptions, async (printed) => {
      await stillRunning(printed);
      Deno.writeTextFileSync(go, "");
    });
    assert.equal(result.code, 0, result.stdout + result.stderr);
    assert.match(result.stdout, /import-2026-11-23 still running/);
    assert.match(result.stderr, /ssh failed; trying again in a minute/);
    assert.match(result.stdout, /"status":"SUCCEEDED"/);
  });

  Deno.test(`${shell}: the README's wait loop exits 1 for a FAILED run and shows its table`, async () => {
    using dir = tempDir();
    const go = join(dir.path, "go");
    Deno.writeTextFileSync(go, "");
    const h = host(dir.path, gatedFlow(go, 3));
    const result = await runLoop(h, shellOptions);
    assert.equal(result.code, 1, result.stdout + result.stderr);
    assert.match(result.stdout, /Status: X FAILED/);
  });

  Deno.test(`${shell}: the README's wait loop exits 4 for a run cancelled while it waits`, async () => {
    using dir = tempDir();
    const h = host(dir.path, gatedFlow(join(dir.path, "never"), 0));
    const result = await runLoop(h, shellOptions, async (printed) => {
      await stillRunning(printed);
      const cancel = await cli(["cancel", "--run-key", "import-2026-11-23", "--grace-seconds", "1"], { env: h.env });
      assert.equal(cancel.code, 0, cancel.stderr);
    });
    assert.equal(result.code, 4, result.stdout + result.stderr);
    assert.match(result.stdout, /still running/);
    assert.match(result.stdout, /Status: ! CANCELLED/);
  });

  Deno.test(`${shell}: the README's wait loop ends with an error for a run key the host never started`, async () => {
    using dir = tempDir();
    // No flow file: the start fails (2), so the host has no run of that key.
    const h = host(dir.path, null);
    const result = await runLoop(h, shellOptions);
    // `sh -e` stops at the failed start; plain `sh` goes on to wait, which finds no such run (3).
    assert.equal(result.code, shellOptions.length > 0 ? 2 : 3, result.stdout + result.stderr);
    assert.doesNotMatch(result.stdout, /still running/);
  });
}

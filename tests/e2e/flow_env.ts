/**
 * An isolated place to run flows through the real CLI: a temporary state home, an executor mode
 * (built-in, or the external adapter pointed at the `orchesjob-flow job` wrapper script), and
 * helpers to read state back.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  CLI,
  type CliResult,
  eventually,
  killProcessesMentioning,
  REPO,
  TEST_ENV,
  writeJobWrapper,
} from "../helpers.ts";

export type ExecutorMode = "builtin" | "external";

// deno-lint-ignore no-explicit-any
export type Json = any;

export class FlowEnv implements Disposable {
  readonly home: string;
  readonly wrapper: string;

  constructor(readonly mode: ExecutorMode) {
    this.home = Deno.makeTempDirSync({ prefix: `ojf-e2e-${mode}-` });
    this.wrapper = writeJobWrapper(this.home);
  }

  [Symbol.dispose](): void {
    killProcessesMentioning(this.home);
    Deno.removeSync(this.home, { recursive: true });
  }

  /** Global options: fast polling, and in external mode the wrapper as orchesjob. */
  globals(): string[] {
    const globals = ["--poll-interval", "0.1"];
    if (this.mode === "external") globals.push("--orchesjob-bin", this.wrapper);
    return globals;
  }

  env(extra: Record<string, string> = {}): Record<string, string> {
    return {
      ...TEST_ENV,
      ORCHESJOB_FLOW_HOME: this.home,
      ORCHESJOB_HOME: "",
      HELLO_DURATION: "0.2",
      HELLO_INTERVAL: "0.1",
      // The examples' scripts read these; the caller's values must not make steps fail.
      HELLO_FAIL: "",
      HELLO_FAIL_STEPS: "",
      ...extra,
    };
  }

  /** Spawns `orchesjob-flow GLOBALS ARGS…` without waiting. */
  spawn(args: string[], extraEnv: Record<string, string> = {}): Deno.ChildProcess {
    return new Deno.Command(CLI[0], {
      args: [...CLI.slice(1), ...this.globals(), ...args],
      cwd: REPO,
      env: this.env(extraEnv),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
  }

  async run(args: string[], extraEnv: Record<string, string> = {}): Promise<CliResult> {
    const output = await this.spawn(args, extraEnv).output();
    const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
    return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) };
  }

  /** Runs and parses stdout as JSON, requiring the given exit code. */
  async json(args: string[], code = 0, extraEnv: Record<string, string> = {}): Promise<Json> {
    const result = await this.run(args, extraEnv);
    assert.equal(result.code, code, `${args.join(" ")} exited ${result.code}: ${result.stderr}`);
    return JSON.parse(result.stdout);
  }

  status(runKey: string): Promise<Json> {
    return this.json(["status", "--run-key", runKey]);
  }

  /** Writes a flow file into the home and returns its path. */
  flow(name: string, text: string): string {
    const path = join(this.home, name);
    Deno.writeTextFileSync(path, text);
    return path;
  }

  /** The built-in runner's job history of one step run key (oldest first), read through `job status --all`. */
  async jobs(stepRunKey: string): Promise<Json[]> {
    const result = await this.run(["job", "status", "--run-key", stepRunKey, "--all"]);
    if (result.code === 3) return [];
    assert.equal(result.code, 0, result.stderr);
    return JSON.parse(result.stdout).reverse();
  }

  async waitFor(runKey: string, what: string, check: (run: Json) => boolean, seconds = 120): Promise<Json> {
    let last: Json = null;
    await eventually(`${runKey}: ${what}`, async () => {
      const result = await this.run(["status", "--run-key", runKey]);
      if (result.code === 3) return false; // not created yet
      assert.equal(result.code, 0, result.stderr);
      last = JSON.parse(result.stdout);
      return check(last);
    }, seconds);
    return last;
  }

  /** Holds the run's driver lock, as a running driver would; released on dispose. */
  async holdDriverLock(runKey: string): Promise<Disposable> {
    Deno.mkdirSync(join(this.home, "locks"), { recursive: true });
    const file = await Deno.open(join(this.home, "locks", `${runKey}.driver.lock`), { create: true, write: true });
    assert.ok(await file.tryLock(true), "driver lock should be free");
    return { [Symbol.dispose]: () => file.close() };
  }
}

export function step(run: Json, id: string): Json {
  const found = run.steps.find((s: Json) => s.id === id);
  assert.ok(found, `no step ${id}`);
  return found;
}

export function statuses(run: Json): Record<string, string> {
  return Object.fromEntries(run.steps.map((s: Json) => [s.id, s.status]));
}

/** Registers `name` as a test for each executor mode that `modes` lists. */
export function flowTest(
  modes: readonly ExecutorMode[],
  name: string,
  fn: (env: FlowEnv) => Promise<void>,
  options: { ignore?: boolean } = {},
): void {
  for (const mode of modes) {
    Deno.test({
      name: `[${mode}] ${name}`,
      ignore: options.ignore ?? false,
      sanitizeOps: false,
      sanitizeResources: false,
      async fn() {
        using env = new FlowEnv(mode);
        await fn(env);
      },
    });
  }
}

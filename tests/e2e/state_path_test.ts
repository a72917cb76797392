/** One state file reached by two spellings (a symbolic link to it, or to its directory) is one state. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { eventually, hasOpen, processAlive } from "../helpers.ts";
import { flowTest, type Json, step } from "./flow_env.ts";
import { builtin, lines, logged } from "./operator_env.ts";
import { waitForFile } from "./fault_helpers.ts";

for (const linked of ["file", "directory"] as const) {
  flowTest(
    builtin,
    `a state file reached through a link to its ${linked}: one driver lock and one jobs directory, the step runs once`,
    async (env) => {
      const real = join(env.home, "real");
      const alias = join(env.home, "alias");
      Deno.mkdirSync(real);
      const [viaReal, viaAlias] = [["--db", join(real, "state.sqlite3")], ["--db", join(alias, "state.sqlite3")]];
      const log = join(env.home, "ran");
      const go = join(env.home, "go");
      const file = env.flow(
        "f.yaml",
        `flow_id: f\nsteps:\n  - {id: a, command: ${
          logged(log, "a", waitForFile(go))
        }}\n  - {id: b, when: a, command: ${logged(log, "b")}}\n`,
      );
      const detached = await env.json([...viaReal, "start", "-d", "--run-key", "k", file]);
      await eventually("a runs", () => lines(log).length === 1);
      if (linked === "file") {
        Deno.mkdirSync(alias);
        Deno.symlinkSync(join(real, "state.sqlite3"), join(alias, "state.sqlite3"));
      } else {
        Deno.symlinkSync(real, alias);
      }
      // Through the other spelling: the run is seen as driven (the same lock), so this start waits
      // for the driver instead of driving the run beside it and launching a again from its own jobs
      // directory; a reader through it finds a's job files.
      const status = async (args: string[]): Promise<Json> =>
        JSON.parse((await env.run([...args, "status", "--run-key", "k"])).stdout);
      assert.equal((await status(viaAlias)).driver?.pid, detached.pid, "the alias sees the same driver");
      const job = await env.run([...viaAlias, "job", "status", "--run-key", "k:a:1"]);
      assert.equal(JSON.parse(job.stdout).status, "RUNNING", job.stderr);
      const second = env.spawn([...viaAlias, "start", "-q", "--run-key", "k", file]);
      await eventually("the second start has opened the state", () => hasOpen(second.pid, join(real, "state.sqlite3")));
      await new Promise((resolve) => setTimeout(resolve, 1500));
      assert.deepEqual(lines(log), ["a"], "a ran once");
      Deno.writeTextFileSync(go, "");
      const waited = await second.output();
      assert.equal(waited.code, 0, new TextDecoder().decode(waited.stderr));
      await eventually("the driver exits", () => !processAlive(detached.pid), 30);
      assert.deepEqual(lines(log), ["a", "b"], "every step ran once");
      assert.equal(step(await status(viaReal), "a").attempt_no, 1);
    },
  );
}

/** Asking Linux about processes (src/executor/builtin/processes.ts). */
import assert from "node:assert/strict";
import {
  isOurProcessAlive,
  liveGroups,
  processStartTicks,
  processStartTime,
  settledCmdline,
} from "../../src/executor/builtin/processes.ts";

/**
 * A zombie that stays one: a child exits under a parent (`sleep 60` after exec) that never waits. The
 * child exits only once its parent is `sleep`, so the shell cannot reap it before the exec.
 */
async function withZombie(fn: (zombie: number, parent: number) => void | Promise<void>): Promise<void> {
  const child = 'while read -r c < "/proc/$p/comm"; [ "$c" != sleep ]; do :; done';
  const parent = new Deno.Command("sh", {
    args: ["-c", `p=$$; (${child}) & echo $!; exec sleep 60`],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).spawn();
  try {
    const reader = parent.stdout.getReader();
    const { value } = await reader.read();
    reader.releaseLock();
    const zombie = Number(new TextDecoder().decode(value).trim());
    const deadline = performance.now() + 30_000;
    const state = () => /\) (\S)/.exec(Deno.readTextFileSync(`/proc/${zombie}/stat`))?.[1];
    while (state() !== "Z") {
      assert.ok(performance.now() < deadline, "the child never became a zombie");
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await fn(zombie, parent.pid);
  } finally {
    parent.kill("SIGKILL");
    await parent.status;
  }
}

Deno.test({
  name: "a process that exits while its command line is read again counts as gone, not as mid-exec",
  ignore: Deno.build.os !== "linux",
  async fn() {
    await withZombie((zombie, parent) => {
      // A zombie's command line reads empty, as an exiting process's does before it is a zombie.
      assert.equal(Deno.readTextFileSync(`/proc/${zombie}/cmdline`), "");
      // Gone (null), where waiting for two agreeing reads ran into its deadline and answered "".
      assert.equal(settledCmdline(zombie, ""), null);
      assert.equal(isOurProcessAlive(zombie, "sleep"), false);
      assert.equal(isOurProcessAlive(parent, "sleep"), true);
      assert.equal(isOurProcessAlive(parent, "not-this-job"), false);
    });
  },
});

Deno.test({
  name: "one pass over /proc tells which of several process groups live, each with its leader's start",
  ignore: Deno.build.os !== "linux",
  async fn() {
    // Two groups: one led by a live sleep, and one whose leader exited, leaving its child.
    const spawn = (script: string) =>
      new Deno.Command("setsid", { args: ["sh", "-c", script], stdin: "null", stdout: "piped", stderr: "null" })
        .spawn();
    const led = spawn("echo $$; exec sleep 60");
    const orphaned = spawn("sleep 60 & echo $$ $!");
    const read = async (child: Deno.ChildProcess) => {
      const reader = child.stdout.getReader();
      const words = new TextDecoder().decode((await reader.read()).value).trim().split(" ").map(Number);
      reader.releaseLock();
      return words;
    };
    const [leader] = await read(led);
    const [group, member] = await read(orphaned);
    try {
      await orphaned.status;
      const live = liveGroups([leader, group, 0x7ffffff0]);
      assert.deepEqual([...live.keys()].sort(), [leader, group].sort());
      const leaderTicks = processStartTicks(leader);
      assert.deepEqual(live.get(leader), { leaderStarted: processStartTime(leader), leaderTicks });
      assert.deepEqual(live.get(group), { leaderStarted: null, leaderTicks: null });
    } finally {
      Deno.kill(member, "SIGKILL");
      led.kill("SIGKILL");
      await led.status;
    }
  },
});

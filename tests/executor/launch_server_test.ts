/** The launch server on its own: it launches what it is sent, and a server that does not read is given up. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { LaunchServer } from "../../src/executor/builtin/launch_server.ts";
import { pathExists } from "../../src/shared/mod.ts";
import { eventually, processAlive, tempDir } from "../helpers.ts";

Deno.test("a launch server launches the jobs it is sent, and leaves when its input ends", async () => {
  using dir = tempDir();
  const server = new LaunchServer(dir.path, "");
  const jobs = ["a", "b", "c"].map((id) => ({
    jobId: id,
    command: ["sh", "-c", `printf '%s' "$1"`, "x", `out ${id}`],
  }));
  // Each job's launch file, as the runner writes it before the job's row: without it, a job is a cleaned one.
  for (const { jobId } of jobs) Deno.writeTextFileSync(join(dir.path, `${jobId}.launch`), "{}");
  assert.equal(await server.send(jobs), true);
  await eventually("three jobs ended", () => jobs.every(({ jobId }) => pathExists(join(dir.path, `${jobId}.exit`))));
  for (const { jobId } of jobs) {
    assert.equal(Deno.readTextFileSync(join(dir.path, `${jobId}.stdout`)), `out ${jobId}`);
    // On Linux the claim also holds the supervisor's start, in clock ticks after boot.
    const start = Deno.build.os === "linux" ? " @\\d+" : "";
    assert.match(
      Deno.readTextFileSync(join(dir.path, `${jobId}.claim`)),
      new RegExp(`^\\d+ ${server.mark}${start}\\n$`),
    );
  }
  server[Symbol.dispose]();
  await eventually("the server left", () => !processAlive(server.pid));
});

Deno.test("a launch server that does not read (stopped) is given up after a while, not waited for", async () => {
  using dir = tempDir();
  const server = new LaunchServer(dir.path, "");
  try {
    Deno.kill(server.pid, "SIGSTOP");
    if (Deno.build.os === "linux") {
      await eventually("the server is stopped", () => {
        const stat = Deno.readTextFileSync(`/proc/${server.pid}/stat`);
        return stat.slice(stat.lastIndexOf(")") + 2).startsWith("T");
      });
    }
    // More than a pipe holds (64 KiB): the write cannot complete while the server is stopped.
    const jobs = Array.from({ length: 400 }, (_, i) => ({ jobId: `j${i}`, command: ["true", "x".repeat(400)] }));
    const sent = await server.send(jobs);
    assert.equal(sent, false);
    assert.equal(server.alive, false);
    assert.equal(await server.send(jobs.slice(0, 1)), false, "a server given up takes nothing more");
  } finally {
    Deno.kill(server.pid, "SIGKILL");
    Deno.kill(server.pid, "SIGCONT");
  }
  await eventually("the server is gone", () => !processAlive(server.pid));
});

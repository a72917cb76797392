/**
 * Test helper run as a subprocess: runs the CLI in-process once per argv given as JSON lines on
 * stdin, so a corpus of hundreds of inputs costs one Deno start-up. Around each run it writes
 * `@@ start <index>` and `@@ end <index> <exit code> <milliseconds> <CPU milliseconds>` lines to
 * stderr, between which is what that run wrote to stderr. The same lines on stdout frame what it
 * printed there. CPU time (user + system, every thread of this process) counts the work a run did,
 * which a loaded machine does not inflate as it does the wall-clock time.
 */
import process from "node:process";
import { runCli } from "../../src/cli/app.ts";

const encoder = new TextEncoder();
const input = new TextDecoder().decode(await new Response(Deno.stdin.readable).arrayBuffer());
const runs: string[][] = input.split("\n").filter((line) => line !== "").map((line) => JSON.parse(line));
for (const [index, argv] of runs.entries()) {
  Deno.stdout.writeSync(encoder.encode(`\n@@ start ${index}\n`));
  Deno.stderr.writeSync(encoder.encode(`\n@@ start ${index}\n`));
  const started = performance.now();
  const cpu = process.cpuUsage();
  const code = await runCli(argv);
  const { user, system } = process.cpuUsage(cpu);
  const wall = Math.round(performance.now() - started);
  const end = encoder.encode(`\n@@ end ${index} ${code} ${wall} ${Math.round((user + system) / 1000)}\n`);
  Deno.stdout.writeSync(end);
  Deno.stderr.writeSync(end);
}

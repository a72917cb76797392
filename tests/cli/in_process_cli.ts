/**
 * Test helper run as a subprocess: runs the CLI in-process once per argv given as JSON lines on
 * stdin, so a corpus of hundreds of inputs costs one Deno start-up. Around each run it writes
 * `@@ start <index>` and `@@ end <index> <exit code> <milliseconds>` lines to stderr, between which
 * is what that run wrote to stderr. The same lines on stdout frame what it printed there.
 */
import { runCli } from "../../src/cli/app.ts";

const encoder = new TextEncoder();
const input = new TextDecoder().decode(await new Response(Deno.stdin.readable).arrayBuffer());
const runs: string[][] = input.split("\n").filter((line) => line !== "").map((line) => JSON.parse(line));
for (const [index, argv] of runs.entries()) {
  Deno.stdout.writeSync(encoder.encode(`\n@@ start ${index}\n`));
  Deno.stderr.writeSync(encoder.encode(`\n@@ start ${index}\n`));
  const started = performance.now();
  const code = await runCli(argv);
  const end = encoder.encode(`\n@@ end ${index} ${code} ${Math.round(performance.now() - started)}\n`);
  Deno.stdout.writeSync(end);
  Deno.stderr.writeSync(end);
}

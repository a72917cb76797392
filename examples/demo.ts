// deno-lint-ignore-file no-console -- a script whose job is to print
/**
 * `deno task demo`: runs examples/daily-import.yaml to the end with the built-in executor, in a
 * fresh temporary state directory, then shows the run as a table and where each step's output went.
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const repo = fileURLToPath(new URL("..", import.meta.url));
const home = Deno.makeTempDirSync({ prefix: "orchesjob-flow-demo-" });
const cli = [Deno.execPath(), "run", "--allow-all", "--config", join(repo, "deno.json"), join(repo, "main.ts")];
const globals = ["--db", join(home, "orchesjob-flow.sqlite3"), "--executor", "builtin", "--poll-interval", "0.5"];

async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const output = await new Deno.Command(cli[0], { args: [...cli.slice(1), ...globals, ...args], cwd: repo }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) };
}

const runKey = `demo-${new Date().toISOString().slice(0, 19).replace(/[-:T]/g, "")}`;
console.log(`$ orchesjob-flow start --run-key ${runKey} examples/daily-import.yaml   (state in ${home})`);
const started = await run(["start", "--run-key", runKey, "examples/daily-import.yaml"]);
if (started.stderr) console.log(started.stderr.trim());
const final = JSON.parse(started.stdout);
console.log(`finished: ${final.status} (exit code ${started.code})\n`);

console.log(`$ orchesjob-flow status --run-key ${runKey} --format table`);
console.log((await run(["status", "--run-key", runKey, "--format", "table"])).stdout);

console.log("Step output (orchesjob stdout files):");
for (const step of final.steps) {
  const file = step.orchesjob_status?.stdout_file;
  const text = file ? Deno.readTextFileSync(file).trim().replaceAll("\n", " | ") : "(did not run)";
  console.log(`  ${step.id.padEnd(14)} ${text || "(no output)"}`);
}
Deno.removeSync(home, { recursive: true });
Deno.exit(started.code);

/**
 * `deno task test` runs the test files in parallel, as threads of one process, then the files in
 * tests/serial/ one at a time. Files that run together share that process's environment, working
 * directory and umask, and the host's next PID: a file that changes one of them, or steers PIDs
 * through /proc/sys/kernel/ns_last_pid, or pins a busy loop to a CPU, belongs in tests/serial/.
 */
import assert from "node:assert/strict";
import { join, relative } from "node:path";
import { REPO } from "./layers.ts";

/** What a test file may do only when it runs alone. */
const ALONE_ONLY: [RegExp, string][] = [
  [/Deno\.env\.(set|delete)\(/, "changes the process's environment"],
  [/Deno\.chdir\(/, "changes the working directory"],
  [/Deno\.umask\(/, "changes the umask"],
  [/ns_last_pid|canSteerPids\(\)/, "steers the next PID"],
  // A busy loop pinned to a CPU starves every test running beside it, and their load spoils its own count.
  [/"taskset"/, "pins processes to a CPU"],
];

/** The TypeScript files under `dir`, recursively (fixtures are data, not tests). */
function sources(dir: string): string[] {
  const found: string[] = [];
  for (const entry of Deno.readDirSync(dir)) {
    const path = join(dir, entry.name);
    if (entry.isDirectory && entry.name !== "fixtures") found.push(...sources(path));
    else if (entry.isFile && entry.name.endsWith(".ts")) found.push(path);
  }
  return found;
}

/** `file`'s uses of what only a file running alone may do. */
function aloneOnlyUses(file: string): string[] {
  const text = Deno.readTextFileSync(file);
  return ALONE_ONLY.filter(([pattern]) => pattern.test(text)).map(([, what]) => what);
}

Deno.test("the test task runs tests/ in parallel without tests/serial/, then tests/serial/ alone", () => {
  const tasks = JSON.parse(Deno.readTextFileSync(join(REPO, "deno.json"))).tasks;
  const [together, alone, ...rest] = String(tasks.test).split(" && ");
  assert.deepEqual(rest, []);
  assert.match(together, /^deno test .*--parallel .*--ignore=tests\/serial\/ tests\/$/);
  assert.match(alone, /^deno test (?!.*--parallel).* tests\/serial\/$/);
});

Deno.test("only tests/serial/ changes the process's environment, directory or umask, or steers PIDs", () => {
  const tests = join(REPO, "tests");
  const serial = join(tests, "serial");
  const offenders = sources(tests)
    .filter((file) => !file.startsWith(serial + "/") && file !== join(tests, "helpers.ts"))
    .filter((file) => file !== join(tests, "architecture", "parallel_safety_test.ts"))
    .flatMap((file) => aloneOnlyUses(file).map((what) => `${relative(REPO, file)} ${what}`));
  assert.deepEqual(offenders, []);
  // The scan sees what it looks for, and tests/serial/ holds only files that must run alone.
  const alone = sources(serial);
  assert.ok(alone.length > 0);
  for (const file of alone) assert.notDeepEqual(aloneOnlyUses(file), [], `${file} could run in parallel`);
});

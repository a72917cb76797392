/**
 * State files with long paths: SQLite opens a path of up to 504 bytes (absolute, links resolved), and
 * such a state file works from its first `start`; a longer one is refused with one JSON line naming the
 * limit, before any directory or file is made.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { cli, type CliResult, errorLine, tempDir, writeFile } from "../helpers.ts";
import { SQLITE_MAX_PATH_BYTES } from "../../src/store/db.ts";

const FLOW = "flow_id: f\nsteps:\n  - {id: a, command: 'echo hi'}\n";

/** A directory under `root` (not created) such that it, a slash and `leaf` make `total` bytes. */
function deepDir(root: string, total: number, leaf: string): string {
  let dir = root;
  for (let left = total - root.length - 1 - leaf.length; left > 0;) {
    // Each step adds "/" and a name of at most 200 bytes; it never leaves exactly one byte to fill.
    const name = Math.min(200, left - 1 === 1 ? left - 3 : left - 1);
    dir = join(dir, "d".repeat(name));
    left -= name + 1;
  }
  assert.equal(dir.length + 1 + leaf.length, total);
  return dir;
}

function refusedAsTooLong(result: CliResult, bytes: number): void {
  assert.equal(result.code, 2, result.stderr);
  assert.match(
    errorLine(result).error,
    new RegExp(`state database path too long for SQLite: ${bytes} bytes .* at most ${SQLITE_MAX_PATH_BYTES};`),
  );
}

Deno.test("a state file path of SQLite's full 504 bytes works from the first start; 505 is refused first", async () => {
  using root = tempDir();
  const flow = writeFile(root.path, "f.yaml", FLOW);
  const longest = join(deepDir(root.path, SQLITE_MAX_PATH_BYTES, "s.sqlite3"), "s.sqlite3");
  const start = await cli(["--db", longest, "--executor", "builtin", "start", "-q", "--run-key", "k", flow]);
  assert.equal(start.code, 0, start.stderr);
  assert.equal(JSON.parse(start.stdout).status, "SUCCEEDED");
  const job = await cli(["--db", longest, "job", "logs", "--run-key", "k:a:1"]);
  assert.deepEqual([job.code, job.stdout], [0, "hi\n"], job.stderr);
  const file = Deno.readFileSync(longest);
  assert.deepEqual([file[18], file[19]], [2, 2], "made in WAL mode");
  const beside = Array.from(Deno.readDirSync(join(longest, "..")), (entry) => entry.name);
  assert.deepEqual(beside.filter((name) => !/^(jobs|locks|s\.sqlite3(-wal|-shm)?)$/.test(name)), [], "no leftovers");

  const dir = deepDir(root.path, SQLITE_MAX_PATH_BYTES + 1, "s.sqlite3");
  const over = await cli(["--db", join(dir, "s.sqlite3"), "--executor", "builtin", "start", "--run-key", "k", flow]);
  refusedAsTooLong(over, SQLITE_MAX_PATH_BYTES + 1);
  assert.throws(() => Deno.statSync(dir), Deno.errors.NotFound, "nothing was created");
});

Deno.test("a relative --db counts from the working directory, and a link counts as what it leads to", async () => {
  using root = tempDir();
  const flow = writeFile(root.path, "f.yaml", FLOW);
  const deep = deepDir(root.path, SQLITE_MAX_PATH_BYTES, "s.sqlite3");
  Deno.mkdirSync(deep, { recursive: true });
  const start = await cli(["--db", "s.sqlite3", "--executor", "builtin", "start", "-q", "--run-key", "k", flow], {
    cwd: deep,
  });
  assert.equal(start.code, 0, start.stderr);
  const status = await cli(["--db", join(deep, "s.sqlite3"), "status", "--run-key", "k"]);
  assert.equal(JSON.parse(status.stdout).status, "SUCCEEDED", status.stderr);

  const under = await cli(["--db", "x/s.sqlite3", "start", "--run-key", "k", flow], { cwd: deep });
  refusedAsTooLong(under, SQLITE_MAX_PATH_BYTES + 2);
  assert.throws(() => Deno.statSync(join(deep, "x")), Deno.errors.NotFound, "nothing was created");
  // SQLite resolves links, so a short link to the deep directory does not make the path shorter.
  Deno.symlinkSync(deep, join(root.path, "short"));
  const linked = await cli(["--db", join(root.path, "short", "s2.sqlite3"), "start", "--run-key", "k", flow]);
  refusedAsTooLong(linked, SQLITE_MAX_PATH_BYTES + 1);
});

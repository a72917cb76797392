/** The workflows' shell scripts, run here: the tag check, the commit stamp, and the smoke test itself. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { CLI, REPO, tempDir, writeFile } from "../helpers.ts";

const SCRIPTS = join(REPO, ".github", "scripts");

/** The caller's environment (Deno's cache and certificates live there) without ORCHESJOB* settings. */
function cleanEnv(): Record<string, string> {
  return Object.fromEntries(Object.entries(Deno.env.toObject()).filter(([name]) => !name.startsWith("ORCHESJOB")));
}

async function sh(args: string[], env: Record<string, string> = {}) {
  const output = await new Deno.Command("/bin/sh", {
    args,
    cwd: REPO,
    clearEnv: true,
    env: { ...cleanEnv(), ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return { code: output.code, stdout: decoder.decode(output.stdout), stderr: decoder.decode(output.stderr) };
}

Deno.test("check-tag.sh accepts only v + deno.json's version", async () => {
  const version = JSON.parse(Deno.readTextFileSync(join(REPO, "deno.json"))).version;
  const ok = await sh([join(SCRIPTS, "check-tag.sh"), `v${version}`]);
  assert.equal(ok.code, 0, ok.stderr);
  for (const tag of [version, `v${version}.1`, `v${version}-rc1`, "v0.0.0"]) {
    const bad = await sh([join(SCRIPTS, "check-tag.sh"), tag]);
    assert.equal(bad.code, 1, tag);
    assert.match(bad.stderr, new RegExp(`tag ${tag.replaceAll(".", "\\.")} does not match .*expected v${version}`));
  }
  // It reads the top-level version, not another "version" key.
  using dir = tempDir();
  const config = writeFile(dir.path, "deno.json", '{\n  "lock": { "version": "9" },\n  "version": "1.2.3"\n}\n');
  assert.equal((await sh([join(SCRIPTS, "check-tag.sh"), "v1.2.3", config])).code, 0);
});

Deno.test("stamp-build-info.sh writes the commit the compiled --version prints, and refuses anything else", async () => {
  using dir = tempDir();
  for (const name of ["main.ts", "deno.json", "deno.lock", "src"]) {
    await new Deno.Command("cp", { args: ["-R", join(REPO, name), dir.path] }).output();
  }
  const bad = await sh([join(SCRIPTS, "stamp-build-info.sh"), "abc; rm -rf /", dir.path]);
  assert.equal(bad.code, 1);
  const stamped = await sh([join(SCRIPTS, "stamp-build-info.sh"), "abc1234", dir.path]);
  assert.equal(stamped.code, 0, stamped.stderr);
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-prompt", "--config", join(dir.path, "deno.json"), join(dir.path, "main.ts"), "--version"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(output.code, 0, new TextDecoder().decode(output.stderr));
  assert.match(new TextDecoder().decode(output.stdout), /\(deno [^,]+, [^,]+, not compiled, abc1234\)\n$/);
  // The checkout's own file stays unstamped, so `deno run` from a clone reports no commit.
  assert.deepEqual(JSON.parse(Deno.readTextFileSync(join(REPO, "src", "cli", "build_info.json"))), { commit: null });
});

Deno.test("smoke-test.sh (the workflows' binary check) passes against deno run main.ts", async () => {
  using dir = tempDir();
  const program = writeFile(
    dir.path,
    "orchesjob-flow",
    `#!/bin/sh\nexec ${CLI.map((a) => `'${a}'`).join(" ")} "$@"\n`,
  );
  Deno.chmodSync(program, 0o755);
  const result = await sh([join(SCRIPTS, "smoke-test.sh"), program], { TMPDIR: dir.path });
  assert.equal(result.code, 0, result.stdout + result.stderr);
  // Each part really ran: the foreground run, the watched detached run, and the cancelled one.
  assert.match(result.stdout, /Run: smoke-detached\nStatus: OK SUCCEEDED/);
  assert.match(result.stdout, /wait +! CANCELLED .* ABORTED/);
  assert.match(result.stdout, /smoke test passed\n$/);
  // Asking for a compiled binary fails under deno run: the check can fail.
  const notCompiled = await sh([join(SCRIPTS, "smoke-test.sh"), program, "compiled"], { TMPDIR: dir.path });
  assert.equal(notCompiled.code, 1);
  assert.match(notCompiled.stderr, /does not report a compiled binary/);
});

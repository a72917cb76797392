import assert from "node:assert/strict";
import { ENV_BIN, envSupportsChdir, SH_PROLOGUE, wrapCommand } from "../../src/executor/wrap.ts";
import { tempDir } from "../helpers.ts";

Deno.test("wrapCommand: env form, with -C only where env supports it", () => {
  assert.deepEqual(wrapCommand(["ls", "-l"], {}, null, true), ["ls", "-l"]);
  assert.deepEqual(wrapCommand(["ls"], { A: "1", B: "x y" }, null, false), [ENV_BIN, "A=1", "B=x y", "ls"]);
  assert.deepEqual(wrapCommand(["ls"], { A: "1" }, "/d", true), [ENV_BIN, "-C", "/d", "A=1", "ls"]);
  const prologue = ["/bin/sh", "-c", SH_PROLOGUE, "orchesjob-flow-step"];
  assert.deepEqual(wrapCommand(["ls"], { A: "1" }, "/d", false), [...prologue, "/d", "A=1", "--", "ls"]);
  // A program env would read as an assignment or an option goes through sh.
  assert.deepEqual(wrapCommand(["X=1"], { A: "1" }, null, true), [...prologue, "", "A=1", "--", "X=1"]);
  assert.deepEqual(wrapCommand(["-x"], {}, "/d", true), [...prologue, "/d", "--", "-x"]);
});

Deno.test("both wrapper forms really set the directory and the environment", () => {
  using dir = tempDir();
  const env = { A: "a value with spaces", B: "x=y;$(echo no)", ORCHESJOB_FLOW_ATTEMPT: "2" };
  const probe = ["/bin/sh", "-c", 'printf "%s|%s|%s|%s" "$(pwd)" "$A" "$B" "$ORCHESJOB_FLOW_ATTEMPT"'];
  const forms = [false, ...(envSupportsChdir() ? [true] : [])];
  for (const chdir of forms) {
    const [program, ...args] = wrapCommand(probe, env, dir.path, chdir);
    const out = new Deno.Command(program, { args, cwd: "/" }).outputSync();
    assert.ok(out.success, new TextDecoder().decode(out.stderr));
    const real = Deno.realPathSync(dir.path);
    assert.equal(
      new TextDecoder().decode(out.stdout),
      `${real}|a value with spaces|x=y;$(echo no)|2`,
      `chdir ${chdir}`,
    );
  }
  // A directory that does not exist fails the command (exit 126 from sh, 125 from env), never runs it elsewhere.
  const [program, ...args] = wrapCommand(["/bin/sh", "-c", "echo ran"], {}, `${dir.path}/missing`, false);
  const out = new Deno.Command(program, { args, stderr: "null" }).outputSync();
  assert.equal(out.code, 126);
  assert.equal(new TextDecoder().decode(out.stdout), "");
});

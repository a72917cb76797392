/** The supervisor and launch server scripts, written out as files: they parse (sh -n, bash -n), and shellcheck finds nothing. */
import assert from "node:assert/strict";
import { join } from "node:path";
import { SERVER_SCRIPT, SUPERVISOR_SCRIPT } from "../../src/executor/builtin/supervisor.ts";
import { tempDir } from "../helpers.ts";

function syntaxCheck(shell: string, path: string): { code: number; stderr: string } {
  const out = new Deno.Command(shell, { args: ["-n", path], stdout: "null", stderr: "piped" }).outputSync();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

Deno.test("the supervisor script parses under sh -n (and bash -n), and a broken copy does not", () => {
  using dir = tempDir();
  const path = join(dir.path, "supervisor.sh");
  Deno.writeTextFileSync(path, SUPERVISOR_SCRIPT);
  const shells = ["/bin/sh", "/bin/bash"].filter((shell) => {
    try {
      return Deno.statSync(shell).isFile;
    } catch {
      return false;
    }
  });
  assert.ok(shells.includes("/bin/sh"));
  for (const shell of shells) assert.deepEqual(syntaxCheck(shell, path), { code: 0, stderr: "" }, shell);
  // The launch server is bash's only.
  if (shells.includes("/bin/bash")) {
    const server = join(dir.path, "server.sh");
    Deno.writeTextFileSync(server, SERVER_SCRIPT);
    assert.deepEqual(syntaxCheck("/bin/bash", server), { code: 0, stderr: "" });
  }
  // The check itself can fail: the same script without its first function's closing brace is refused.
  const broken = join(dir.path, "broken.sh");
  Deno.writeTextFileSync(broken, SUPERVISOR_SCRIPT.replace(/^}$/m, ""));
  assert.notEqual(syntaxCheck("/bin/sh", broken).code, 0);
});

Deno.test("shellcheck (when installed) finds nothing in the supervisor script", {
  ignore: (() => {
    try {
      return !new Deno.Command("shellcheck", { args: ["--version"], stdout: "null" }).outputSync().success;
    } catch {
      return true;
    }
  })(),
}, () => {
  using dir = tempDir();
  for (
    const [name, script, shell] of [["supervisor.sh", SUPERVISOR_SCRIPT, "sh"], ["server.sh", SERVER_SCRIPT, "bash"]]
  ) {
    const path = join(dir.path, name);
    Deno.writeTextFileSync(path, script);
    const out = new Deno.Command("shellcheck", { args: ["-s", shell, path], stdout: "piped" }).outputSync();
    assert.equal(out.code, 0, `${name}: ${new TextDecoder().decode(out.stdout)}`);
  }
});

/**
 * A compiled binary runs itself again for `start -d`'s driver. An upgrade renames a new binary over the
 * running one: the file it was started from must still be what it runs, not the `<path> (deleted)`
 * that Linux then reports, which cannot be run.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { executableToRerun } from "../../src/cli/self.ts";
import { eventually, REPO, tempDir } from "../helpers.ts";

const linux = Deno.build.os === "linux";

Deno.test("executableToRerun keeps a path that exists, and names /proc/PID/exe for a replaced one on Linux", () => {
  assert.equal(executableToRerun("/usr/local/bin/orchesjob-flow", 42), "/usr/local/bin/orchesjob-flow");
  assert.equal(
    executableToRerun("/usr/local/bin/orchesjob-flow (deleted)", 42),
    linux ? "/proc/42/exe" : "/usr/local/bin/orchesjob-flow (deleted)",
  );
});

Deno.test({
  name: "a process whose executable was renamed over (an upgrade) still runs itself again",
  ignore: !linux,
  async fn() {
    using dir = tempDir();
    // A copy of deno stands in for the compiled binary: Deno.execPath() reports it as the kernel does.
    const binary = join(dir.path, "orchesjob-flow");
    Deno.copyFileSync(Deno.execPath(), binary);
    const go = join(dir.path, "go");
    const script = `
      import { executableToRerun } from ${JSON.stringify(join(REPO, "src/cli/self.ts"))};
      while (true) { try { Deno.statSync(${
      JSON.stringify(go)
    }); break; } catch { await new Promise((r) => setTimeout(r, 20)); } }
      const reported = Deno.execPath();
      const again = await new Deno.Command(executableToRerun(reported, Deno.pid), { args: ["--version"] }).output();
      console.log(JSON.stringify({ reported, code: again.code, out: new TextDecoder().decode(again.stdout) }));
    `;
    const child = new Deno.Command(binary, {
      args: ["eval", "--no-config", script],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    // The child runs its copy; the upgrade renames another file over that copy's path.
    await eventually("the copy is running", () => {
      try {
        return Deno.readLinkSync(`/proc/${child.pid}/exe`) === binary;
      } catch {
        return false;
      }
    });
    const replacement = join(dir.path, "orchesjob-flow.new");
    Deno.writeTextFileSync(replacement, "#!/bin/sh\necho newer\n", { mode: 0o755 });
    Deno.renameSync(replacement, binary);
    Deno.writeTextFileSync(go, "");
    const output = await child.output();
    const stderr = new TextDecoder().decode(output.stderr);
    assert.equal(output.code, 0, stderr);
    const result = JSON.parse(new TextDecoder().decode(output.stdout));
    assert.equal(result.reported, `${binary} (deleted)`, "the rename happened while the process ran");
    assert.equal(result.code, 0);
    assert.match(result.out, /^deno \d/, "the process ran its own file again, not the newer one");
  },
});

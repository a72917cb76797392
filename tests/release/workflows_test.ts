/**
 * The release and CI workflows, read as data: least-privilege permissions, one Deno version (.dvmrc)
 * everywhere, the four release targets with versionless asset names that install.sh knows, and the
 * steps the first tagged release depends on. The action validator in .ci/run checks the syntax.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { parse } from "yaml";
import { REPO } from "../helpers.ts";
import { V8_FLAGS } from "../../src/cli/self.ts";

// deno-lint-ignore no-explicit-any
type Yaml = any;

const read = (path: string) => Deno.readTextFileSync(join(REPO, path));
const workflow = (name: string): Yaml => parse(read(`.github/workflows/${name}`));
const DENO_VERSION = read(".dvmrc").trim();

function steps(job: Yaml): Yaml[] {
  return job.steps as Yaml[];
}

Deno.test(".dvmrc is the one Deno version: README commands, .ci/run and the workflows agree with it", () => {
  assert.match(DENO_VERSION, /^\d+\.\d+\.\d+$/);
  assert.equal(DENO_VERSION, Deno.version.deno, "the suite runs under the pinned Deno");
  const readme = read("README.md");
  const pinned = [...readme.matchAll(/deno@(\d+\.\d+\.\d+)/g), ...readme.matchAll(/Deno (\d+\.\d+\.\d+)/g)];
  assert.ok(pinned.length >= 3, "README names the Deno version in its commands");
  for (const match of pinned) assert.equal(match[1], DENO_VERSION, match[0]);
  assert.match(readme, new RegExp(`^npx -y deno@${DENO_VERSION.replaceAll(".", "\\.")} task test `, "m"));
  // Everything else reads .dvmrc instead of naming a version.
  for (const file of [".ci/run", ".github/workflows/ci.yml", ".github/workflows/release.yml"]) {
    assert.ok(!/\d+\.\d+\.\d+/.test(read(file).replace(/@action-validator\/cli@[\d.]+/, "")), file);
  }
  assert.match(read(".ci/run"), /DENO_VERSION=\$\(tr -d '\[:space:\]' < \.dvmrc\)/);
  for (const name of ["ci.yml", "release.yml"]) {
    const setups = Object.values(workflow(name).jobs).flatMap((job) =>
      steps(job).filter((s) => String(s.uses).startsWith("denoland/setup-deno@"))
    );
    assert.ok(setups.length > 0, name);
    for (const setup of setups) assert.deepEqual(setup.with, { "deno-version-file": ".dvmrc" }, name);
  }
});

Deno.test("the lockfile is frozen for every deno command, and CI compiles with --frozen", () => {
  const config = JSON.parse(read("deno.json"));
  assert.deepEqual(config.lock, { path: "deno.lock", frozen: true });
  for (const name of ["ci.yml", "release.yml"]) {
    for (const job of Object.values(workflow(name).jobs) as Yaml[]) {
      for (const step of steps(job)) {
        if (String(step.run ?? "").includes("deno compile")) assert.match(step.run, /deno compile --frozen /, name);
      }
    }
  }
});

Deno.test("permissions: contents read at the top; write, id-token and attestations only in the publish job", () => {
  for (const name of ["ci.yml", "release.yml"]) {
    const flow = workflow(name);
    assert.deepEqual(flow.permissions, { contents: "read" }, name);
    for (const [id, job] of Object.entries(flow.jobs) as [string, Yaml][]) {
      if (name === "release.yml" && id === "publish") {
        assert.deepEqual(job.permissions, { contents: "write", "id-token": "write", attestations: "write" });
      } else {
        assert.equal(job.permissions, undefined, `${name} ${id}`);
      }
    }
  }
});

Deno.test("actions are on their Node 24 majors, and every job has a timeout", () => {
  const current = new Set([
    "actions/checkout@v7",
    "denoland/setup-deno@v2",
    "actions/upload-artifact@v7",
    "actions/download-artifact@v8",
    "actions/attest-build-provenance@v4",
  ]);
  for (const name of ["ci.yml", "release.yml"]) {
    for (const [id, job] of Object.entries(workflow(name).jobs) as [string, Yaml][]) {
      assert.equal(typeof job["timeout-minutes"], "number", `${name} ${id}`);
      for (const step of steps(job)) if (step.uses) assert.ok(current.has(step.uses), `${name} ${id}: ${step.uses}`);
    }
  }
  assert.equal(workflow("ci.yml").concurrency["cancel-in-progress"], true);
});

Deno.test("release: four targets on their own runners, versionless asset names install.sh picks, smoke-tested, then published", () => {
  const release = workflow("release.yml");
  const matrix = release.jobs.compile.strategy.matrix.include as { target: string; asset: string; os: string }[];
  assert.deepEqual(matrix.map((m) => [m.target, m.asset, m.os]), [
    ["x86_64-unknown-linux-gnu", "orchesjob-flow-linux-x64", "ubuntu-24.04"],
    ["aarch64-unknown-linux-gnu", "orchesjob-flow-linux-arm64", "ubuntu-24.04-arm"],
    ["x86_64-apple-darwin", "orchesjob-flow-macos-x64", "macos-15-intel"],
    ["aarch64-apple-darwin", "orchesjob-flow-macos-arm64", "macos-15"],
  ]);
  // install.sh builds the same names from uname, and the README lists them.
  const install = read("install.sh");
  assert.match(install, /asset=\$program-\$os_name-\$arch_name/);
  for (const { asset } of matrix) assert.ok(read("README.md").includes(`\`${asset}\``), asset);

  const compile = steps(release.jobs.compile).map((s) => s.run ?? s.uses);
  const at = (pattern: RegExp) => compile.findIndex((s) => pattern.test(s));
  assert.ok(at(/stamp-build-info\.sh/) < at(/deno compile/), "the commit is stamped before compiling");
  assert.ok(at(/deno compile/) < at(/smoke-test\.sh dist\/\$\{\{ matrix\.asset \}\} compiled/));
  assert.ok(at(/smoke-test/) < at(/upload-artifact/), "only a smoke-tested binary is uploaded");

  assert.deepEqual(release.jobs.compile.needs, "version");
  assert.match(steps(release.jobs.version).map((s) => s.run ?? "").join("\n"), /check-tag\.sh "\$GITHUB_REF_NAME"/);
  assert.equal(release.jobs.publish.needs, "compile");
  assert.equal(release.jobs.publish.if, "startsWith(github.ref, 'refs/tags/')");
  const publish = steps(release.jobs.publish);
  const script = publish.map((s) => s.run ?? "").join("\n");
  assert.match(script, /sha256sum orchesjob-flow-\* install\.sh > SHA256SUMS/);
  assert.match(script, /gh release create "\$GITHUB_REF_NAME" dist\/\* --verify-tag/);
  const attest = publish.find((s) => s.uses === "actions/attest-build-provenance@v4");
  assert.deepEqual(attest?.with, { "subject-checksums": "dist/SHA256SUMS" });
});

Deno.test("ci: .ci/run on Linux and macOS, and a compiled linux x64 binary through the smoke test", () => {
  const ci = workflow("ci.yml");
  assert.deepEqual(ci.jobs.test.strategy.matrix.os, ["ubuntu-latest", "macos-latest"]);
  assert.ok(steps(ci.jobs.test).some((s) => s.run === ".ci/run"));
  const compile = steps(ci.jobs.compile).map((s) => s.run ?? "").join("\n");
  // The binary carries the V8 flags every process of the program runs with (src/cli/self.ts V8_FLAGS).
  assert.ok(
    compile.includes(
      `deno compile --frozen --allow-all --v8-flags=${V8_FLAGS} --target x86_64-unknown-linux-gnu`,
    ),
    compile,
  );
  // So do the released binaries and `deno task compile`.
  for (
    const text of [
      Deno.readTextFileSync(join(REPO, ".github/workflows/release.yml")),
      Deno.readTextFileSync(join(REPO, "deno.json")),
    ]
  ) {
    assert.ok(
      text.includes(`deno compile --frozen --allow-all --v8-flags=${V8_FLAGS} `) ||
        text.includes(`deno compile --allow-all --v8-flags=${V8_FLAGS} `),
    );
  }
  assert.match(compile, /smoke-test\.sh dist\/orchesjob-flow-linux-x64 compiled/);
});

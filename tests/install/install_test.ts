/**
 * install.sh against a local directory laid out like a GitHub release (file:// URLs through curl), with a
 * stand-in executable per asset that prints its own name. The uname and libc answers are overridden
 * through the documented ORCHESJOB_FLOW_UNAME_S / _UNAME_M / _LIBC variables.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { REPO, tempDir, writeFile } from "../helpers.ts";

const SCRIPT = join(REPO, "install.sh");
const ASSETS = ["linux-x64", "linux-arm64", "macos-x64", "macos-arm64"].map((s) => `orchesjob-flow-${s}`);

async function sha256(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as BufferSource));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

function standIn(asset: string, tag: string): string {
  return `#!/bin/sh\necho "stand-in ${asset} ${tag} $*"\n`;
}

/** Writes `<root>/latest/download/…` and `<root>/download/<tag>/…`: the four assets and SHA256SUMS. */
async function makeRelease(root: string, tags: string[]): Promise<void> {
  for (const tag of tags) {
    const dir = tag === "latest" ? join(root, "latest", "download") : join(root, "download", tag);
    Deno.mkdirSync(dir, { recursive: true });
    const sums: string[] = [];
    for (const asset of ASSETS) {
      const text = standIn(asset, tag);
      Deno.writeTextFileSync(join(dir, asset), text);
      sums.push(`${await sha256(new TextEncoder().encode(text))}  ${asset}`);
    }
    Deno.writeTextFileSync(join(dir, "SHA256SUMS"), sums.join("\n") + "\n");
  }
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function install(
  args: string[],
  env: Record<string, string>,
  path = Deno.env.get("PATH") ?? "",
  shell = ["/bin/sh"],
): Promise<Run> {
  const output = await new Deno.Command(shell[0], {
    args: [...shell.slice(1), SCRIPT, ...args],
    clearEnv: true,
    env: { PATH: path, HOME: env.TMPDIR ?? "/nonexistent", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return { code: output.code, stdout: decoder.decode(output.stdout), stderr: decoder.decode(output.stderr) };
}

/** A failure is told on one line of the script's own, after at most its progress line: no tool's lines. */
function assertOneFailureLine(result: Run, message: RegExp): void {
  assert.equal(result.code, 1, result.stderr);
  const lines = result.stderr.trimEnd().split("\n");
  assert.match(lines.at(-1)!, message, result.stderr);
  for (const line of lines.slice(0, -1)) assert.match(line, /^install\.sh: downloading /, result.stderr);
  assert.match(lines.at(-1)!, /^install\.sh: /, result.stderr);
}

function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/** A directory of links to every program on the real PATH except `missing`, for a PATH without them. */
function pathWithout(bin: string, missing: string[]): string {
  Deno.mkdirSync(bin);
  for (const entry of (Deno.env.get("PATH") ?? "").split(":")) {
    let names: string[] = [];
    try {
      names = [...Deno.readDirSync(entry)].map((e) => e.name);
    } catch {
      continue;
    }
    for (const name of names) {
      if (missing.includes(name) || exists(join(bin, name))) continue;
      Deno.symlinkSync(join(entry, name), join(bin, name));
    }
  }
  return bin;
}

function setUp(dir: string, tags = ["latest"]) {
  const releases = join(dir, "releases");
  const prefix = join(dir, "prefix");
  const tmp = join(dir, "tmp");
  Deno.mkdirSync(tmp);
  return {
    releases,
    prefix,
    installed: join(prefix, "bin", "orchesjob-flow"),
    env: { ORCHESJOB_FLOW_BASE_URL: `file://${releases}`, TMPDIR: tmp, ORCHESJOB_FLOW_LIBC: "gnu" },
    ready: makeRelease(releases, tags),
    tmp,
  };
}

Deno.test("install.sh picks the asset for each of the four uname pairs and installs it 0755 under --prefix", async () => {
  using dir = tempDir();
  const s = setUp(dir.path);
  await s.ready;
  const pairs: [string, string, string][] = [
    ["Linux", "x86_64", "orchesjob-flow-linux-x64"],
    ["Linux", "aarch64", "orchesjob-flow-linux-arm64"],
    ["Darwin", "x86_64", "orchesjob-flow-macos-x64"],
    ["Darwin", "arm64", "orchesjob-flow-macos-arm64"],
  ];
  for (const [os, machine, asset] of pairs) {
    const result = await install(["--prefix", s.prefix], {
      ...s.env,
      ORCHESJOB_FLOW_UNAME_S: os,
      ORCHESJOB_FLOW_UNAME_M: machine,
    });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(Deno.readTextFileSync(s.installed), standIn(asset, "latest"), `${os} ${machine}`);
    assert.equal(Deno.statSync(s.installed).mode! & 0o777, 0o755);
    // It ran the installed program's --version to show what was installed.
    assert.equal(result.stdout, `stand-in ${asset} latest --version\n`);
  }
  // The temporary download directory is gone.
  assert.deepEqual([...Deno.readDirSync(s.tmp)], []);
});

Deno.test("install.sh --version vX.Y.Z reads that release's directory", async () => {
  using dir = tempDir();
  const s = setUp(dir.path, ["latest", "v9.9.9"]);
  await s.ready;
  const env = { ...s.env, ORCHESJOB_FLOW_UNAME_S: "Linux", ORCHESJOB_FLOW_UNAME_M: "amd64" };
  const result = await install(["--version", "v9.9.9", "--prefix", s.prefix], env);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(Deno.readTextFileSync(s.installed), standIn("orchesjob-flow-linux-x64", "v9.9.9"));
  // Not a tag, or a tag that would point the download elsewhere on the server: refused before any download.
  for (const version of ["9.9.9", "v9/../../other", "v9.9.9/x", "v9..9", "v9 9", "v9.9.9?x=1"]) {
    const bad = await install(["--version", version, "--prefix", s.prefix], env);
    assert.equal(bad.code, 1, version);
    assert.match(bad.stderr, /--version must look like v1\.2\.3/, version);
  }
  assert.equal(
    (await install(["--version", "v9.9.9-rc.1+b2", "--prefix", s.prefix], env)).stderr.includes(
      "must look like",
    ),
    false,
    "a pre-release tag is a tag",
  );
  // An empty or scheme-less --base-url is refused with what it needs, not left to curl's message.
  for (const url of ["", "example.com/releases", "https://"]) {
    const bad = await install(["--base-url", url, "--prefix", s.prefix], env);
    assert.equal(bad.code, 1, url);
    assert.match(bad.stderr, /--base-url needs a URL such as https:\/\/example\.com\/releases/, url);
  }
});

Deno.test("a checksum mismatch installs nothing and keeps the old binary", async () => {
  using dir = tempDir();
  const s = setUp(dir.path);
  await s.ready;
  const env = { ...s.env, ORCHESJOB_FLOW_UNAME_S: "Linux", ORCHESJOB_FLOW_UNAME_M: "x86_64" };
  // The asset is altered after SHA256SUMS was written (a corrupt or tampered download).
  const assetPath = join(s.releases, "latest", "download", "orchesjob-flow-linux-x64");
  Deno.writeTextFileSync(assetPath, "#!/bin/sh\necho tampered\n");

  const fresh = await install(["--prefix", s.prefix], env);
  assert.equal(fresh.code, 1);
  assert.match(fresh.stderr, /checksum mismatch for orchesjob-flow-linux-x64 .*nothing installed/);
  assert.ok(!exists(join(s.prefix)), "a mismatch must not even create the prefix");

  Deno.mkdirSync(join(s.prefix, "bin"), { recursive: true });
  Deno.writeTextFileSync(s.installed, "old\n");
  const over = await install(["--prefix", s.prefix], env);
  assert.equal(over.code, 1);
  assert.equal(Deno.readTextFileSync(s.installed), "old\n");
  assert.deepEqual([...Deno.readDirSync(join(s.prefix, "bin"))].map((e) => e.name), ["orchesjob-flow"]);

  // A SHA256SUMS without the asset's line is refused the same way.
  Deno.writeTextFileSync(join(s.releases, "latest", "download", "SHA256SUMS"), "");
  const missing = await install(["--prefix", s.prefix], env);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /SHA256SUMS has no line for orchesjob-flow-linux-x64; nothing installed/);
  assert.equal(Deno.readTextFileSync(s.installed), "old\n");
});

Deno.test("install.sh refuses 32-bit machines, musl and unknown systems with a clear message", async () => {
  using dir = tempDir();
  const s = setUp(dir.path);
  await s.ready;
  const cases: [Record<string, string>, RegExp][] = [
    [{ ORCHESJOB_FLOW_UNAME_S: "Linux", ORCHESJOB_FLOW_UNAME_M: "i686" }, /32-bit systems are not supported/],
    [{ ORCHESJOB_FLOW_UNAME_S: "Linux", ORCHESJOB_FLOW_UNAME_M: "armv7l" }, /32-bit systems are not supported/],
    [{ ORCHESJOB_FLOW_UNAME_S: "Linux", ORCHESJOB_FLOW_UNAME_M: "armv8l" }, /32-bit systems are not supported/],
    [
      { ORCHESJOB_FLOW_UNAME_S: "Linux", ORCHESJOB_FLOW_UNAME_M: "x86_64", ORCHESJOB_FLOW_LIBC: "musl" },
      /musl .*need glibc/,
    ],
    [{ ORCHESJOB_FLOW_UNAME_S: "FreeBSD", ORCHESJOB_FLOW_UNAME_M: "amd64" }, /unsupported system 'FreeBSD'/],
    [{ ORCHESJOB_FLOW_UNAME_S: "Linux", ORCHESJOB_FLOW_UNAME_M: "riscv64" }, /unsupported machine 'riscv64'/],
  ];
  for (const [overrides, message] of cases) {
    const result = await install(["--prefix", s.prefix], { ...s.env, ...overrides });
    assert.equal(result.code, 1, JSON.stringify(overrides));
    assert.match(result.stderr, message);
    assert.ok(!exists(s.prefix));
  }
});

Deno.test("install.sh replaces a binary that is running without disturbing it", async () => {
  using dir = tempDir();
  const s = setUp(dir.path);
  await s.ready;
  // A real ELF executable stands in for a running driver: copying over it in place would fail with
  // "Text file busy"; installing beside it and renaming does not.
  Deno.mkdirSync(join(s.prefix, "bin"), { recursive: true });
  Deno.copyFileSync("/bin/sleep", s.installed);
  Deno.chmodSync(s.installed, 0o755);
  const running = new Deno.Command(s.installed, { args: ["600"], stdout: "null", stderr: "null" }).spawn();
  try {
    const result = await install(["--prefix", s.prefix], {
      ...s.env,
      ORCHESJOB_FLOW_UNAME_S: "Linux",
      ORCHESJOB_FLOW_UNAME_M: "x86_64",
    });
    assert.equal(result.code, 0, result.stderr);
    assert.equal(Deno.readTextFileSync(s.installed), standIn("orchesjob-flow-linux-x64", "latest"));
    // The old process still runs (signal 0 throws if it is gone).
    Deno.kill(running.pid, "SIGCONT");
  } finally {
    running.kill("SIGKILL");
    await running.status;
  }
});

Deno.test({
  name: "install.sh verifies with shasum -a 256 where sha256sum is missing (macOS)",
  ignore: !["/usr/bin/shasum", "/bin/shasum"].some(exists),
  async fn() {
    using dir = tempDir();
    const s = setUp(dir.path);
    await s.ready;
    // A PATH with every program of the real one except sha256sum.
    const bin = pathWithout(join(dir.path, "path"), ["sha256sum"]);
    const env = { ...s.env, ORCHESJOB_FLOW_UNAME_S: "Darwin", ORCHESJOB_FLOW_UNAME_M: "arm64" };
    const ok = await install(["--prefix", s.prefix], env, bin);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(Deno.readTextFileSync(s.installed), standIn("orchesjob-flow-macos-arm64", "latest"));
    Deno.removeSync(s.prefix, { recursive: true });
    Deno.writeTextFileSync(join(s.releases, "latest", "download", "orchesjob-flow-macos-arm64"), "tampered\n");
    const bad = await install(["--prefix", s.prefix], env, bin);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /checksum mismatch/);
    assert.ok(!exists(s.prefix));
  },
});

Deno.test("install.sh reads a file:// --base-url itself: a host with neither curl nor wget installs from it", async () => {
  using dir = tempDir();
  const s = setUp(dir.path);
  await s.ready;
  const env = { ...s.env, ORCHESJOB_FLOW_UNAME_S: "Linux", ORCHESJOB_FLOW_UNAME_M: "x86_64" };
  // wget knows no file:// (and is all a minimal host may have): the script must not hand such a URL to it.
  const bin = pathWithout(join(dir.path, "path"), ["curl", "wget"]);
  assert.ok(!exists(join(bin, "curl")) && !exists(join(bin, "wget")) && exists(join(bin, "cp")));
  const base = `file://${s.releases}`;
  const result = await install(["--base-url", base, "--prefix", s.prefix], env, bin);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(Deno.readTextFileSync(s.installed), standIn("orchesjob-flow-linux-x64", "latest"));
  // file://localhost/ is the same directory; a host name (file://srv/…, a relative path meant) is refused.
  Deno.removeSync(s.prefix, { recursive: true });
  const local = await install(["--base-url", `file://localhost${s.releases}`, "--prefix", s.prefix], env, bin);
  assert.equal(local.code, 0, local.stderr);
  const relative = await install(["--base-url", "file://releases", "--prefix", s.prefix], env, bin);
  assert.equal(relative.code, 1);
  assert.match(relative.stderr, /--base-url file:\/\/ needs an absolute path such as file:\/\/\/srv\/releases/);
  // With neither program, an https URL still says what is missing.
  const https = await install(["--base-url", "https://example.invalid/releases", "--prefix", s.prefix], env, bin);
  assert.equal(https.code, 1);
  assert.match(https.stderr, /neither curl nor wget is installed/);
});

Deno.test('install.sh percent-decodes a file:// --base-url, as curl would: file:///srv/my%20dir is "/srv/my dir"', async () => {
  using dir = tempDir();
  const s = setUp(dir.path);
  // The release directory's name has a space, a percent sign, a backslash and a non-ASCII letter.
  const releases = join(dir.path, "my rel 100% \\ é");
  await s.ready;
  Deno.renameSync(s.releases, releases);
  const env = { ...s.env, ORCHESJOB_FLOW_UNAME_S: "Linux", ORCHESJOB_FLOW_UNAME_M: "x86_64" };
  const encoded = `file://${releases.split("/").map(encodeURIComponent).join("/")}`;
  assert.match(encoded, /my%20rel%20100%25%20%5C%20%C3%A9$/);
  const result = await install(["--base-url", encoded, "--prefix", s.prefix], env);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(Deno.readTextFileSync(s.installed), standIn("orchesjob-flow-linux-x64", "latest"));
  // Lower-case hex, file://localhost/, and the path written as it is (a lone % is no escape) all work.
  const lowerHex = encoded.replace(/%[0-9A-F]{2}/g, (escape) => escape.toLowerCase());
  for (const url of [lowerHex, `file://localhost${releases}`]) {
    Deno.removeSync(s.prefix, { recursive: true });
    const again = await install(["--base-url", url, "--prefix", s.prefix], env);
    assert.equal(again.code, 0, `${url}: ${again.stderr}`);
    assert.equal(Deno.readTextFileSync(s.installed), standIn("orchesjob-flow-linux-x64", "latest"));
  }
  const nul = await install(["--base-url", `file://${dir.path}/a%00b`, "--prefix", s.prefix], env);
  assert.equal(nul.code, 1);
  assert.match(nul.stderr, /^install\.sh: --base-url: a file:\/\/ URL cannot contain %00/);
});

/** Runs install.sh as `curl … | sh -s -- ARGS` does: the script (here, `script`) on sh's standard input. */
async function installFromStdin(script: Uint8Array, args: string[], env: Record<string, string>): Promise<Run> {
  const child = new Deno.Command("/bin/sh", {
    args: ["-s", "--", ...args],
    clearEnv: true,
    env: { PATH: Deno.env.get("PATH") ?? "", ...env },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(script);
  await writer.close();
  const output = await child.output();
  const decoder = new TextDecoder();
  return { code: output.code, stdout: decoder.decode(output.stdout), stderr: decoder.decode(output.stderr) };
}

Deno.test("install.sh piped to sh and cut short runs none of itself and fails, wherever the cut falls", async () => {
  using dir = tempDir();
  const s = setUp(dir.path);
  await s.ready;
  const env = { ...s.env, ORCHESJOB_FLOW_UNAME_S: "Linux", ORCHESJOB_FLOW_UNAME_M: "x86_64" };
  const script = Deno.readFileSync(SCRIPT);
  const whole = await installFromStdin(script, ["--prefix", s.prefix], env);
  assert.equal(whole.code, 0, whole.stderr);
  assert.equal(Deno.readTextFileSync(s.installed), standIn("orchesjob-flow-linux-x64", "latest"));
  Deno.removeSync(s.prefix, { recursive: true });
  // Cuts at every line end from the second line on (the first two lines are the shebang and the trap
  // that reports a cut; a cut inside them runs nothing either), and at every byte of the last line,
  // the one that calls main: a cut there must not call it with fewer arguments.
  const newline = 10;
  const lineEnds = [...script.keys()].filter((i) => script[i] === newline).map((i) => i + 1);
  const lastLine = lineEnds.at(-2)!;
  const cuts = [
    ...lineEnds.slice(1, -1),
    ...Array.from({ length: script.length - 1 - lastLine }, (_, i) => lastLine + i),
  ];
  assert.ok(cuts.length > 200, `${cuts.length} cuts`);
  for (const cut of cuts) {
    const result = await installFromStdin(script.subarray(0, cut), ["--prefix", s.prefix], env);
    const where = `cut after byte ${cut}: ${result.stderr}`;
    assert.notEqual(result.code, 0, where);
    assert.match(
      result.stderr,
      /install\.sh: this script ends early \(its download was cut short\?\); nothing installed\n$/,
      where,
    );
    assert.ok(!exists(s.prefix), where);
    assert.deepEqual([...Deno.readDirSync(s.tmp)], [], where);
  }
});

/**
 * A release server on 127.0.0.1 that announces each asset's full length but sends half of it and
 * closes the connection (a download cut mid-body), every time but SHA256SUMS. It counts the requests
 * for each path, and answers a second request for the same path with 404 so that a retrying client
 * stops at once.
 */
function cuttingServer(releases: string) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const requests = new Map<string, number>();
  const encoder = new TextEncoder();
  const serve = async (conn: Deno.Conn) => {
    const buffer = new Uint8Array(8192);
    let head = "";
    while (!head.includes("\r\n\r\n")) {
      const n = await conn.read(buffer);
      if (n === null) return conn.close();
      head += new TextDecoder().decode(buffer.subarray(0, n));
    }
    const path = head.split(" ")[1];
    requests.set(path, (requests.get(path) ?? 0) + 1);
    let body: Uint8Array | undefined;
    try {
      body = requests.get(path) === 1 ? Deno.readFileSync(join(releases, path)) : undefined;
    } catch {
      body = undefined;
    }
    if (!body) {
      await conn.write(encoder.encode("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"));
      return conn.close();
    }
    const sent = path.endsWith("SHA256SUMS") ? body : body.subarray(0, body.length >> 1);
    await conn.write(encoder.encode(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`));
    await conn.write(sent);
    conn.close();
  };
  const done = (async () => {
    for await (const conn of listener) serve(conn).catch(() => {});
  })();
  return {
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    requests,
    async [Symbol.asyncDispose]() {
      listener.close();
      await done.catch(() => {});
    },
  };
}

Deno.test({
  name: "install.sh with wget alone fails at once on a download cut mid-body: one try, as with curl",
  ignore: !["/usr/bin/wget", "/bin/wget"].some(exists),
  async fn() {
    using dir = tempDir();
    const s = setUp(dir.path);
    await s.ready;
    await using server = cuttingServer(s.releases);
    const env = { ...s.env, ORCHESJOB_FLOW_UNAME_S: "Linux", ORCHESJOB_FLOW_UNAME_M: "x86_64" };
    const bin = pathWithout(join(dir.path, "path"), ["curl"]);
    assert.ok(!exists(join(bin, "curl")) && exists(join(bin, "wget")));
    const result = await install(["--base-url", server.url, "--prefix", s.prefix], env, bin);
    assertOneFailureLine(
      result,
      /download of http:\/\/127\.0\.0\.1:\d+\/latest\/download\/orchesjob-flow-linux-x64 failed/,
    );
    // The download was cut (the server sent half the body once), and wget did not ask again: GNU wget
    // retries a cut download 20 times by default, for minutes, silently under -q.
    assert.deepEqual([...server.requests], [["/latest/download/orchesjob-flow-linux-x64", 1]]);
    assert.ok(!exists(s.prefix));
    assert.deepEqual([...Deno.readDirSync(s.tmp)], []);
  },
});

/** Where busybox is installed: a directory holding a link to it for each of its applets, and nothing else. */
function busyboxOnly(bin: string): string | undefined {
  const busybox = ["/usr/bin/busybox", "/bin/busybox"].find(exists);
  if (!busybox) return undefined;
  const list = new Deno.Command(busybox, { args: ["--list"], stdout: "piped" }).outputSync();
  Deno.mkdirSync(bin);
  for (const applet of new TextDecoder().decode(list.stdout).split("\n").filter(Boolean)) {
    Deno.symlinkSync(busybox, join(bin, applet));
  }
  return bin;
}

Deno.test("install.sh needs no install(1): a PATH without it, and busybox's applets alone, install 0755", async () => {
  using dir = tempDir();
  const s = setUp(dir.path);
  await s.ready;
  const env = { ...s.env, ORCHESJOB_FLOW_UNAME_S: "Linux", ORCHESJOB_FLOW_UNAME_M: "x86_64" };
  const expected = standIn("orchesjob-flow-linux-x64", "latest");
  const withoutInstall = pathWithout(join(dir.path, "path"), ["install"]);
  assert.ok(!exists(join(withoutInstall, "install")) && exists(join(withoutInstall, "cp")));
  const result = await install(["--prefix", s.prefix], env, withoutInstall);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(Deno.readTextFileSync(s.installed), expected);
  assert.equal(Deno.statSync(s.installed).mode! & 0o777, 0o755);
  // An edge host with busybox alone: its shell, its cp, awk, sha256sum, mktemp (Debian's busybox has no
  // install applet). The stand-in binary's #!/bin/sh is the host's.
  const busybox = busyboxOnly(join(dir.path, "busybox"));
  if (!busybox) return;
  Deno.removeSync(s.prefix, { recursive: true });
  const onBusybox = await install(["--prefix", s.prefix], env, busybox, [join(busybox, "sh")]);
  assert.equal(onBusybox.code, 0, onBusybox.stderr);
  assert.equal(Deno.readTextFileSync(s.installed), expected);
  assert.equal(Deno.statSync(s.installed).mode! & 0o777, 0o755);
});

Deno.test("install.sh interrupted between writing the new binary and renaming it leaves only the old one", async () => {
  using dir = tempDir();
  const s = setUp(dir.path);
  const release = join(s.releases, "latest", "download");
  await s.ready;
  // The stop point: the new binary's --version check (between the write and the rename) sends SIGTERM
  // to install.sh, as a Ctrl-C or a killed SSH session would, and leaves a mark that it ran.
  const reached = join(dir.path, "reached");
  const interrupting = `#!/bin/sh\necho "$PPID" > '${reached}'\nkill -TERM "$PPID"\necho new\n`;
  Deno.writeTextFileSync(join(release, "orchesjob-flow-linux-x64"), interrupting);
  Deno.writeTextFileSync(
    join(release, "SHA256SUMS"),
    `${await sha256(new TextEncoder().encode(interrupting))}  orchesjob-flow-linux-x64\n`,
  );
  Deno.mkdirSync(join(s.prefix, "bin"), { recursive: true });
  Deno.writeTextFileSync(s.installed, "old\n");
  const env = { ...s.env, ORCHESJOB_FLOW_UNAME_S: "Linux", ORCHESJOB_FLOW_UNAME_M: "x86_64" };
  const result = await install(["--prefix", s.prefix], env);
  assert.ok(exists(reached), "the new binary ran, so it had been written beside the old one");
  assert.equal(result.code, 1, result.stderr);
  // The signal stopped the script itself (not only the check, which would report the binary as broken).
  assert.doesNotMatch(result.stderr, /does not run on this host|installed/);
  assert.equal(Deno.readTextFileSync(s.installed), "old\n");
  assert.deepEqual([...Deno.readDirSync(join(s.prefix, "bin"))].map((e) => e.name), ["orchesjob-flow"]);
  assert.deepEqual([...Deno.readDirSync(s.tmp)], []);
});

Deno.test("each install.sh failure is one line of its own that carries the tool's reason, and exits 1", async () => {
  using dir = tempDir();
  const s = setUp(dir.path);
  await s.ready;
  await using server = cuttingServer(s.releases);
  const env = { ...s.env, ORCHESJOB_FLOW_UNAME_S: "Linux", ORCHESJOB_FLOW_UNAME_M: "x86_64" };
  const missing = await install(["--base-url", `file://${dir.path}/nowhere`, "--prefix", s.prefix], env);
  assertOneFailureLine(
    missing,
    /download of file:.*\/nowhere\/.* failed \(cp: .*No such file or directory\); nothing installed$/,
  );
  const noTmp = await install(["--prefix", s.prefix], { ...env, TMPDIR: join(dir.path, "no-such-dir") });
  assertOneFailureLine(
    noTmp,
    /cannot create a temporary directory in .*no-such-dir \(set TMPDIR to a writable directory\)/,
  );
  const file = writeFile(dir.path, "a-file", "");
  const underFile = await install(["--prefix", file], env);
  assertOneFailureLine(underFile, /cannot create .*a-file\/bin \(.*a-file is not a directory\); nothing installed/);
  assert.doesNotMatch(underFile.stderr, /downloading/, "refused before the download");
  if (["/usr/bin/curl", "/bin/curl"].some(exists)) {
    const notFound = await install(["--base-url", server.url, "--version", "v9.9.9", "--prefix", s.prefix], env);
    assertOneFailureLine(
      notFound,
      /download of .*\/download\/v9\.9\.9\/orchesjob-flow-linux-x64 failed \(curl: \(22\).*404\)/,
    );
    const cut = await install(["--base-url", server.url, "--prefix", s.prefix], env);
    assertOneFailureLine(cut, /download of .*\/latest\/download\/orchesjob-flow-linux-x64 failed \(curl: \(18\)/);
    assert.equal(server.requests.get("/latest/download/orchesjob-flow-linux-x64"), 1, "the download was cut");
  }
  assert.ok(!exists(s.prefix));
  assert.deepEqual([...Deno.readDirSync(s.tmp)], []);
});

Deno.test("install.sh into a PREFIX/bin it may not write fails on one line before downloading, and leaves the old binary", async () => {
  using dir = tempDir();
  const s = setUp(dir.path);
  await s.ready;
  const bin = join(s.prefix, "bin");
  Deno.mkdirSync(bin, { recursive: true });
  Deno.writeTextFileSync(s.installed, "old\n");
  const env = { ...s.env, ORCHESJOB_FLOW_UNAME_S: "Linux", ORCHESJOB_FLOW_UNAME_M: "x86_64" };
  let result: Run;
  if (Deno.uid() === 0) {
    // Root writes through a mode of 0555: the directory is made read-only by a read-only bind mount,
    // in a mount namespace of the test's own.
    if (!exists("/usr/bin/unshare")) return;
    const script = `mount --bind '${bin}' '${bin}' && mount -o remount,bind,ro '${bin}' && exec /bin/sh "$@"`;
    const output = await new Deno.Command("unshare", {
      args: ["-m", "/bin/sh", "-c", script, "sh", SCRIPT, "--prefix", s.prefix],
      clearEnv: true,
      env: { PATH: Deno.env.get("PATH") ?? "", HOME: s.tmp, ...env },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const decoder = new TextDecoder();
    result = { code: output.code, stdout: decoder.decode(output.stdout), stderr: decoder.decode(output.stderr) };
    assertOneFailureLine(result, /cannot write to .*\/bin \(no permission, or a read-only file system\); nothing/);
  } else {
    Deno.chmodSync(bin, 0o555);
    result = await install(["--prefix", s.prefix], env);
    Deno.chmodSync(bin, 0o755);
    assertOneFailureLine(result, /cannot write to .*\/bin \(no permission, or a read-only file system\); nothing/);
  }
  // Refused before the download, which can take minutes over an edge link.
  assert.doesNotMatch(result.stderr, /downloading/);
  assert.match(result.stderr, /use --prefix \$HOME\/\.local/);
  assert.equal(Deno.readTextFileSync(s.installed), "old\n");
  assert.deepEqual([...Deno.readDirSync(bin)].map((e) => e.name), ["orchesjob-flow"]);
});

Deno.test("install.sh refuses a directory where the binary goes, and a --prefix that looks like an option", async () => {
  using dir = tempDir();
  const s = setUp(dir.path);
  await s.ready;
  const env = { ...s.env, ORCHESJOB_FLOW_UNAME_S: "Linux", ORCHESJOB_FLOW_UNAME_M: "x86_64" };
  Deno.mkdirSync(s.installed, { recursive: true });
  const onDirectory = await install(["--prefix", s.prefix], env);
  assert.equal(onDirectory.code, 1);
  assert.match(onDirectory.stderr, /orchesjob-flow is a directory; remove it first\. Nothing installed/);
  assert.deepEqual([...Deno.readDirSync(s.installed)], [], "nothing was moved into it");
  assert.deepEqual([...Deno.readDirSync(join(s.prefix, "bin"))].map((e) => e.name), ["orchesjob-flow"]);

  const optionLike = await install(["--prefix", "-p"], env);
  assert.equal(optionLike.code, 1);
  assert.match(optionLike.stderr, /--prefix needs a directory, got the option-like '-p'/);
});

Deno.test("install.sh refuses a --prefix whose ~ the shell left unexpanded, rather than install under ./~", async () => {
  using dir = tempDir();
  const s = setUp(dir.path);
  await s.ready;
  const env = { ...s.env, ORCHESJOB_FLOW_UNAME_S: "Linux", ORCHESJOB_FLOW_UNAME_M: "x86_64" };
  // What a shell passes for --prefix=~/.local (no shell expands ~ there), run from a directory of its own.
  const unexpanded = new Deno.Command("/bin/sh", { args: ["-c", "printf %s --prefix=~/.local"], stdout: "piped" });
  const arg = new TextDecoder().decode(unexpanded.outputSync().stdout);
  assert.equal(arg, "--prefix=~/.local", "the shell left the ~ as it is");
  const cwd = join(dir.path, "cwd");
  Deno.mkdirSync(cwd);
  for (const args of [[arg], ["--prefix", "~/.local"], ["--prefix", "~root"]]) {
    const output = await new Deno.Command("/bin/sh", {
      args: [SCRIPT, ...args],
      cwd,
      clearEnv: true,
      env: { PATH: Deno.env.get("PATH") ?? "", HOME: s.tmp, ...env },
      stderr: "piped",
    }).output();
    const result = { code: output.code, stdout: "", stderr: new TextDecoder().decode(output.stderr) };
    assertOneFailureLine(result, /--prefix '~[^']*' starts with a ~ that the shell did not expand/);
    assert.match(result.stderr, /write --prefix "\$HOME\/\.local"$/m);
  }
  assert.deepEqual([...Deno.readDirSync(cwd)], [], "no directory named ~");
});

Deno.test("a downloaded binary that does not run on this host is not installed, and the old one is kept", async () => {
  using dir = tempDir();
  const s = setUp(dir.path);
  // The asset's checksum is right, but it cannot run here (a wrong asset on a mirror, a glibc too old):
  // its interpreter does not exist, as for a binary built for another loader.
  const dir2 = join(s.releases, "latest", "download");
  await s.ready;
  const broken = "#!/nonexistent/ld-linux-x86-64.so.2\n";
  Deno.writeTextFileSync(join(dir2, "orchesjob-flow-linux-x64"), broken);
  Deno.writeTextFileSync(
    join(dir2, "SHA256SUMS"),
    `${await sha256(new TextEncoder().encode(broken))}  orchesjob-flow-linux-x64\n`,
  );
  Deno.mkdirSync(join(s.prefix, "bin"), { recursive: true });
  Deno.writeTextFileSync(s.installed, standIn("old", "v0"));
  Deno.chmodSync(s.installed, 0o755);
  const env = { ...s.env, ORCHESJOB_FLOW_UNAME_S: "Linux", ORCHESJOB_FLOW_UNAME_M: "x86_64" };
  const result = await install(["--prefix", s.prefix], env);
  assert.equal(result.code, 1);
  assertOneFailureLine(
    result,
    /the downloaded orchesjob-flow-linux-x64 does not run on this host \(.+\); nothing installed/,
  );
  assert.equal(Deno.readTextFileSync(s.installed), standIn("old", "v0"), "the old binary is kept");
  assert.deepEqual([...Deno.readDirSync(join(s.prefix, "bin"))].map((e) => e.name), ["orchesjob-flow"]);
});

Deno.test("install.sh asks ldd which C library the host uses: glibc wins over an installed musl", async () => {
  using dir = tempDir();
  const s = setUp(dir.path);
  await s.ready;
  const fake = join(dir.path, "fake-bin");
  Deno.mkdirSync(fake);
  const path = `${fake}:${Deno.env.get("PATH") ?? ""}`;
  const { ORCHESJOB_FLOW_LIBC: _, ...env } = {
    ...s.env,
    ORCHESJOB_FLOW_UNAME_S: "Linux",
    ORCHESJOB_FLOW_UNAME_M: "x86_64",
  };
  const ldd = (script: string) => {
    Deno.writeTextFileSync(join(fake, "ldd"), `#!/bin/sh\n${script}\n`);
    Deno.chmodSync(join(fake, "ldd"), 0o755);
  };
  ldd("echo 'ldd (Debian GLIBC 2.36-9+deb12u4) 2.36'");
  const glibc = await install(["--prefix", s.prefix], env, path);
  assert.equal(glibc.code, 0, glibc.stderr);
  assert.equal(Deno.readTextFileSync(s.installed), standIn("orchesjob-flow-linux-x64", "latest"));
  Deno.removeSync(s.prefix, { recursive: true });
  ldd("echo 'musl libc (x86_64)' >&2; echo 'Version 1.2.4' >&2; exit 1");
  const musl = await install(["--prefix", s.prefix], env, path);
  assert.equal(musl.code, 1);
  assert.match(musl.stderr, /this looks like musl/);
  assert.ok(!exists(s.prefix));
});

Deno.test({
  name: "install.sh on a glibc host with musl's loader installed beside it (Debian's musl package) installs",
  // musl's loader is put in place in a mount namespace of the test's own: only root may make one.
  ignore: Deno.uid() !== 0 || !exists("/usr/bin/unshare") || exists("/lib/ld-musl-x86_64.so.1"),
  async fn() {
    using dir = tempDir();
    const s = setUp(dir.path);
    await s.ready;
    for (const sub of ["up", "work"]) Deno.mkdirSync(join(dir.path, sub));
    const script = [
      `mount -t overlay overlay -o lowerdir=/usr/lib,upperdir=${dir.path}/up,workdir=${dir.path}/work /usr/lib`,
      "touch /usr/lib/ld-musl-x86_64.so.1",
      'ls /lib/ld-musl-* > /dev/null && exec /bin/sh "$@"',
    ].join(" && ");
    const output = await new Deno.Command("unshare", {
      args: ["-m", "/bin/sh", "-c", script, "sh", SCRIPT, "--prefix", s.prefix],
      clearEnv: true,
      env: { PATH: Deno.env.get("PATH") ?? "", HOME: s.tmp, ...s.env, ORCHESJOB_FLOW_LIBC: "" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(output.stderr);
    assert.equal(output.code, 0, stderr);
    assert.match(Deno.readTextFileSync(s.installed), /stand-in orchesjob-flow-linux-/);
    assert.ok(!exists("/lib/ld-musl-x86_64.so.1"), "the loader was there in the namespace only");
  },
});

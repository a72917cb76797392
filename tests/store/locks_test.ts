/**
 * Who holds a run's driver lock (driverHolder): the holder's note in the lock file is believed only when
 * the kernel confirms it; a stale, forged or missing note falls back to /proc/locks (or the try-lock probe).
 */
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { driverHolder, driverStateFile, FileLocks, lockFilePath } from "../../src/store/mod.ts";
import { eventually } from "../helpers.ts";

async function withHome(fn: (dbPath: string) => Promise<void>): Promise<void> {
  const dir = Deno.makeTempDirSync({ prefix: "ojf-locks-" });
  try {
    await fn(join(dir, "state.sqlite3"));
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

Deno.test("the driver lock's holder is found, and nobody once it is released", async () => {
  await withHome(async (dbPath) => {
    const locks = new FileLocks(dbPath);
    assert.equal(await driverHolder(dbPath, "r"), null, "no lock file: no driver");
    const lock = await locks.tryDriverLock("r");
    assert.ok(lock);
    // Elsewhere than on Linux the holder is found by a try-lock, which cannot name it.
    assert.deepEqual(await driverHolder(dbPath, "r"), { pid: Deno.build.os === "linux" ? Deno.pid : null });
    if (Deno.build.os === "linux") {
      // The holder's note: this process and the descriptor that holds the flock.
      const note = /^(\d+) (\d+)(?: \d+:\d+)?\n$/.exec(Deno.readTextFileSync(lockFilePath(dbPath, "r", "driver")));
      assert.ok(note, "a note was written");
      assert.equal(Number(note[1]), Deno.pid);
      assert.match(Deno.readTextFileSync(`/proc/self/fdinfo/${note[2]}`), /^lock:\s+\d+:\s+FLOCK\s/m);
    }
    lock[Symbol.dispose]();
    assert.equal(await driverHolder(dbPath, "r"), null, "the note of a released lock is not believed");
    assert.equal(await driverHolder(dbPath, "r"), null, "and asking does not take the lock");
    const again = await locks.tryDriverLock("r");
    assert.ok(again, "the lock is free again");
    again[Symbol.dispose]();
  });
});

Deno.test({
  name: "a forged or stale note is not believed: the real holder, or nobody, is reported",
  ignore: Deno.build.os !== "linux", // notes and /proc are Linux's
  fn: forgedNotes,
});

async function forgedNotes(): Promise<void> {
  await withHome(async (dbPath) => {
    const locks = new FileLocks(dbPath);
    using lock = await locks.tryDriverLock("r");
    assert.ok(lock);
    const path = lockFilePath(dbPath, "r", "driver");
    // Notes naming our own descriptors (all but one hold nothing), a process without the file open (a
    // child sleep), one that does not exist, and junk.
    using other = Deno.openSync(path, { write: true });
    const child = new Deno.Command("sleep", { args: ["30"], stdin: "null", stdout: "null", stderr: "null" }).spawn();
    try {
      const fds = [...Deno.readDirSync("/proc/self/fd")].map((e) => e.name);
      const forgeries = [
        ...fds.map((fd) => `${Deno.pid} ${fd}\n`),
        ...[0, 1, 2].map((fd) => `${child.pid} ${fd}\n`),
        "999999999 3\n",
        "garbage",
        "",
      ];
      for (const forged of forgeries) {
        other.truncateSync(0);
        other.writeSync(new TextEncoder().encode(forged));
        // Only the holder itself is ever named. (When the note is not believed, /proc/locks answers; its
        // listing is not atomic, so a lock shifted out of it by other processes' locks reads as none.)
        const holder = await driverHolder(dbPath, "r");
        assert.ok(
          holder === null || holder.pid === Deno.pid,
          `note ${JSON.stringify(forged)}: ${JSON.stringify(holder)}`,
        );
      }
    } finally {
      child.kill("SIGKILL");
      await child.status;
    }
  });
  await withHome(async (dbPath) => {
    const path = lockFilePath(dbPath, "r", "driver");
    Deno.mkdirSync(join(path, ".."), { recursive: true });
    // A note naming this process's descriptor on the file, with no lock taken: nobody drives the run.
    using file = Deno.openSync(path, { create: true, write: true });
    for (const entry of Deno.readDirSync("/proc/self/fd")) {
      file.truncateSync(0);
      file.writeSync(new TextEncoder().encode(`${Deno.pid} ${entry.name}\n`));
      assert.equal(await driverHolder(dbPath, "r"), null);
    }
  });
}

Deno.test({
  name: "a lock file unlinked while held (clean) does not lock a waiter that opened it before: it locks the new file",
  ignore: Deno.build.os !== "linux", // the waiter's open descriptors are read from /proc
  async fn() {
    await withHome(async (dbPath) => {
      const locks = new FileLocks(dbPath);
      await locks.withStartGate("r", () => {}); // the lock file exists
      const path = lockFilePath(dbPath, "r", "gate");
      const opened = () =>
        [...Deno.readDirSync("/proc/self/fd")].filter((e) => {
          try {
            return Deno.readLinkSync(`/proc/self/fd/${e.name}`) === path;
          } catch {
            return false;
          }
        }).length;
      // `clean` holds the gate's file...
      const old = Deno.openSync(path, { write: true });
      old.lockSync(true);
      // ...while a start waits for it, on that same file.
      let entered = false;
      const waiter = locks.withStartGate("r", () => {
        entered = true;
      });
      await eventually("the waiter has the old file open", () => opened() >= 2);
      // clean unlinks it while it holds it; a new process makes the file again and locks it; clean lets go.
      Deno.removeSync(path);
      const fresh = Deno.openSync(path, { create: true, write: true });
      fresh.lockSync(true);
      old.close();
      await new Promise((resolve) => setTimeout(resolve, 500));
      assert.ok(!entered, "the waiter did not take the unlinked file's lock while the path's file is held");
      // Ours, and the waiter's (Deno may hold a second descriptor for a lock that blocks): the unlinked
      // file shows as "(deleted)" and is not counted.
      assert.ok(opened() >= 2, "it waits on the new file, not on the unlinked one");
      fresh.close();
      await waiter;
      assert.ok(entered, "it enters once the new file's holder lets go");
    });
  },
});

Deno.test({
  name: "the driver's note names its state file: another state file of the directory is told apart",
  ignore: Deno.build.os !== "linux", // notes and /proc are Linux's
  async fn() {
    await withHome(async (dbPath) => {
      Deno.writeTextFileSync(dbPath, "x");
      const other = join(dirname(dbPath), "other.sqlite3");
      Deno.writeTextFileSync(other, "y");
      assert.equal(driverStateFile(dbPath, "r"), null, "no lock file: no state file");
      const lock = await new FileLocks(dbPath).tryDriverLock("r");
      assert.ok(lock);
      const info = Deno.statSync(dbPath);
      assert.deepEqual(driverStateFile(dbPath, "r"), { dev: info.dev, ino: info.ino });
      // The same lock file, seen from the other state file: the holder drives dbPath's run.
      assert.deepEqual(driverStateFile(other, "r"), { dev: info.dev, ino: info.ino });
      assert.deepEqual(await driverHolder(other, "r"), { pid: Deno.pid });
      lock[Symbol.dispose]();
      assert.equal(driverStateFile(dbPath, "r"), null, "the note of a released lock is not believed");
    });
  },
});

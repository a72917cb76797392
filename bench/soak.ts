// deno-lint-ignore-file no-console -- the soak report is printed output
/**
 * Random-kill soak: N trials, each a fresh state home and a 6-step fan-out flow (a; then b, c, d, e
 * in parallel; then f) driven by the real CLI with the built-in runner. Each trial SIGKILLs the
 * foreground driver at a random moment (up to three times), then resumes until the run ends, and
 * counts from marker files how often each step ran. Prints `N trials, K kills, T twice, V never`,
 * where K counts kills that landed on a live driver, T steps that ran more than once and V steps
 * that never ran (or runs that did not succeed). Exit 1 unless both T and V are 0.
 *
 *   deno task soak [N] [--parallel P]
 */
import { join } from "node:path";
import { CLI, REPO } from "../tests/helpers.ts";

const args = [...Deno.args];
const parallelAt = args.indexOf("--parallel");
const parallel = parallelAt >= 0 ? Number(args.splice(parallelAt, 2)[1]) : 2;
const trials = Number(args[0] ?? 300);
const STEPS = ["a", "b", "c", "d", "e", "f"];

function flowText(log: string): string {
  const line = (id: string, when: string) =>
    `  - {id: ${id}, ${when}command: ${
      JSON.stringify(`echo ${id} >> '${log}'; sleep 0.${1 + (id.charCodeAt(0) % 3)}`)
    }}`;
  return [
    "flow_id: soak",
    "steps:",
    line("a", ""),
    ...["b", "c", "d", "e"].map((id) => line(id, "when: a, ")),
    line("f", "when: b && c && d && e, "),
    "",
  ].join("\n");
}

function spawn(home: string, file: string): Deno.ChildProcess {
  return new Deno.Command(CLI[0], {
    args: [...CLI.slice(1), "--poll-interval", "0.1", "--executor", "builtin", "start", "--run-key", "soak", file],
    cwd: REPO,
    env: { ORCHESJOB_FLOW_HOME: home, ORCHESJOB_HOME: "", ORCHESJOB_BIN: "", NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

interface Trial {
  kills: number;
  twice: number;
  never: number;
}

async function trial(): Promise<Trial> {
  const home = Deno.makeTempDirSync({ prefix: "ojf-soak-" });
  try {
    const log = join(home, "ran");
    const file = join(home, "flow.yaml");
    Deno.writeTextFileSync(file, flowText(log));
    let kills = 0;
    let code = -1;
    for (let round = 0; round < 10; round++) {
      const child = spawn(home, file);
      const killable = round < 3;
      const timer = killable
        ? setTimeout(() => {
          try {
            child.kill("SIGKILL");
          } catch { /* already ended */ }
        }, 100 + Math.random() * 1100)
        : undefined;
      const status = await child.output();
      clearTimeout(timer);
      if (status.signal === "SIGKILL") kills++;
      else {
        code = status.code;
        break;
      }
    }
    const counts = new Map<string, number>();
    let text = "";
    try {
      text = Deno.readTextFileSync(log);
    } catch { /* nothing ran */ }
    for (const id of text.split("\n").filter(Boolean)) counts.set(id, (counts.get(id) ?? 0) + 1);
    const twice = STEPS.filter((id) => (counts.get(id) ?? 0) > 1).length;
    const never = STEPS.filter((id) => (counts.get(id) ?? 0) === 0).length + (code === 0 ? 0 : 1);
    if (twice || never) console.error(JSON.stringify({ home, code, counts: Object.fromEntries(counts) }));
    return { kills, twice, never };
  } finally {
    if (Deno.env.get("SOAK_KEEP") !== "1") Deno.removeSync(home, { recursive: true });
  }
}

const total: Trial = { kills: 0, twice: 0, never: 0 };
let next = 0;
let done = 0;
await Promise.all(
  Array.from({ length: parallel }, async () => {
    while (next < trials) {
      next++;
      const result = await trial();
      total.kills += result.kills;
      total.twice += result.twice;
      total.never += result.never;
      done++;
      if (done % 25 === 0) console.error(`${done}/${trials} …`);
    }
  }),
);
console.log(`${trials} trials, ${total.kills} kills, ${total.twice} twice, ${total.never} never`);
if (total.twice || total.never) Deno.exit(1);

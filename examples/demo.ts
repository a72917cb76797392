// deno-lint-ignore-file no-console -- a script whose job is to print
/**
 * `deno task demo`: validates every example flow through the real CLI and explains what each step
 * waits for and when it runs.
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const repo = fileURLToPath(new URL("..", import.meta.url));
const cli = [Deno.execPath(), "run", "--allow-all", "--config", join(repo, "deno.json"), join(repo, "main.ts")];

async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const output = await new Deno.Command(cli[0], { args: [...cli.slice(1), ...args], cwd: repo }).output();
  const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  return { code: output.code, stdout: decode(output.stdout), stderr: decode(output.stderr) };
}

interface Step {
  id: string;
  when: string | null;
  waits_for: string[];
  retries: number;
}

let failed = false;
for (
  const entry of [...Deno.readDirSync(join(repo, "examples"))].filter((e) => e.name.endsWith(".yaml")).sort((a, b) =>
    a.name.localeCompare(b.name)
  )
) {
  const result = await run(["validate", `examples/${entry.name}`]);
  if (result.code !== 0) {
    failed = true;
    console.log(`${entry.name}: INVALID ${result.stderr.trim()}`);
    continue;
  }
  const flow = JSON.parse(result.stdout) as { flow_id: string; steps: Step[] };
  console.log(`\n${entry.name} (flow_id ${flow.flow_id})`);
  for (const step of flow.steps) {
    const waits = step.waits_for.length ? `after ${step.waits_for.join(", ")} finish` : "at once";
    const condition = step.when ? `, if ${step.when}` : "";
    const retries = step.retries ? `, up to ${step.retries} retries` : "";
    console.log(`  ${step.id.padEnd(14)} runs ${waits}${condition}${retries}`);
  }
}
Deno.exit(failed ? 1 : 0);

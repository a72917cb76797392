/**
 * Writes every `run:` block of the workflows to DIR as a bash script shellcheck can read (GitHub runs
 * them with bash -e). `${{ ... }}` expressions become a plain word, as they are text by the time bash
 * sees them. Prints the paths written, one a line.
 *   deno run --allow-read --allow-write --allow-env .ci/workflow_scripts.ts DIR
 */
import { parse } from "yaml";

interface Step {
  run?: string;
}

const dir = Deno.args[0];
const written: string[] = [];
for (const entry of [...Deno.readDirSync(".github/workflows")].sort((a, b) => a.name.localeCompare(b.name))) {
  if (!entry.name.endsWith(".yml")) continue;
  const workflow = parse(Deno.readTextFileSync(`.github/workflows/${entry.name}`));
  for (const [jobId, job] of Object.entries(workflow.jobs as Record<string, { steps: Step[] }>)) {
    job.steps.forEach((step, index) => {
      if (step.run === undefined) return;
      const path = `${dir}/${entry.name.replace(/\.yml$/, "")}-${jobId}-${index + 1}.sh`;
      const body = step.run.replaceAll(/\$\{\{[^}]*\}\}/g, "github_expression");
      Deno.writeTextFileSync(path, `#!/usr/bin/env bash\nset -eo pipefail\n${body}`);
      written.push(path);
    });
  }
}
await Deno.stdout.write(new TextEncoder().encode(written.map((p) => p + "\n").join("")));

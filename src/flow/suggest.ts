/** "Did you mean …?" for misspelt names. Pure. */

/** Edit distance (insertions, deletions, substitutions, adjacent swaps). */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from(
    { length: rows },
    (_, i) => Array.from({ length: cols }, (_, j) => i === 0 ? j : j === 0 ? i : 0),
  );
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
      }
    }
  }
  return d[a.length][b.length];
}

/** The candidate nearest to `name`, if it is near enough to be a plausible typo. */
export function closestName(name: string, candidates: readonly string[]): string | undefined {
  const lower = name.toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const distance = editDistance(lower, candidate);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  const limit = Math.max(1, Math.floor(name.length / 3));
  return bestDistance <= limit ? best : undefined;
}

/**
 * Names other tools (GitHub Actions, docker-compose, Dagu, cron wrappers) use for our fields, with
 * ours in order of preference: the first that the mapping allows is suggested. Lower case.
 */
const FIELD_ALIASES: Readonly<Record<string, readonly string[]>> = {
  cmd: ["command"],
  args: ["command"],
  argv: ["command"],
  run: ["command"],
  script: ["command"],
  name: ["id", "flow_id"],
  env_vars: ["env"],
  environment: ["env"],
  variables: ["env"],
  deps: ["depends_on"],
  depends: ["depends_on"],
  needs: ["depends_on"],
  after: ["depends_on"],
  if: ["when"],
  condition: ["when"],
  dir: ["cwd"],
  workdir: ["cwd"],
  working_dir: ["cwd"],
  working_directory: ["cwd"],
  retry: ["retries"],
  max_retries: ["retries"],
  timeout: ["timeout_sec"],
  parallel: ["max_parallel"],
  parallelism: ["max_parallel"],
  concurrency: ["max_parallel"],
  parameters: ["params"],
};

/**
 * The field of `allowed` that an unknown field `name` most likely means: a known alias (`cmd` →
 * `command`, which is one edit from `cwd`), else the only field it begins (`retry_delay` →
 * `retry_delay_sec`), else a near typo ({@link closestName}).
 */
export function suggestField(name: string, allowed: readonly string[]): string | undefined {
  const lower = name.toLowerCase();
  const alias = Object.hasOwn(FIELD_ALIASES, lower)
    ? FIELD_ALIASES[lower].find((field) => allowed.includes(field))
    : undefined;
  if (alias !== undefined) return alias;
  // Three letters at least: `r` begins too many fields to mean one of them.
  const extending = lower.length >= 3 ? allowed.filter((field) => field.startsWith(lower)) : [];
  if (extending.length === 1) return extending[0];
  return closestName(name, allowed);
}

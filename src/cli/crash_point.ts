/**
 * Test-only crash points: when `ORCHESJOB_FLOW_CRASH_AT` names the point, the process kills itself
 * with SIGKILL right there, so a test can prove what a crash at exactly that line leaves behind.
 * Unset (always, outside tests) it costs one environment read.
 */
export function crashPoint(name: string): void {
  if (Deno.env.get("ORCHESJOB_FLOW_CRASH_AT") === name) Deno.kill(Deno.pid, "SIGKILL");
}

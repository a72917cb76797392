/**
 * An environment variable, or undefined when it is unset or this process may not read the environment
 * (no --allow-env): the test-only hooks that read one are then simply off.
 */
export function readEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name);
  } catch {
    return undefined;
  }
}

/**
 * The domain: statuses, run and step state, flow definitions, and orchesjob's job contract. A leaf:
 * it imports nothing of the project, and every other folder may import it.
 */
export * from "./status.ts";
export * from "./job.ts";
export * from "./flow.ts";
export * from "./run.ts";
export { sha256Hex } from "./sha256.ts";

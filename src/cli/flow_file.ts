/** Reading a flow file from disk: the I/O half of loading (the pure half is src/flow/load.ts). */
import { UserError } from "./errors.ts";
import { loadFlow } from "../flow/mod.ts";
import type { FlowDefinition } from "../domain/mod.ts";

export function readFlowFile(path: string): FlowDefinition {
  let text: string;
  try {
    text = Deno.readTextFileSync(path);
  } catch (error) {
    const reason = error instanceof Deno.errors.NotFound
      ? "no such file"
      : error instanceof Deno.errors.IsADirectory
      ? "is a directory"
      : error instanceof Error
      ? error.message
      : String(error);
    throw new UserError(`cannot read flow file ${path}: ${reason}`);
  }
  return loadFlow(text, path);
}

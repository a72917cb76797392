/** Reading a flow file from disk: the I/O half of loading (the pure half is src/flow/load.ts). */
import { UserError } from "./errors.ts";
import { checkFileSize, loadFlowBytes } from "../flow/mod.ts";
import type { FlowDefinition } from "../domain/mod.ts";

export function readFlowFile(path: string): FlowDefinition {
  let bytes: Uint8Array;
  try {
    // The size limit is checked before reading, so a huge file is refused without being loaded.
    const info = Deno.statSync(path);
    if (info.isFile) checkFileSize(info.size, path);
    bytes = Deno.readFileSync(path);
  } catch (error) {
    if (!(error instanceof Error) || error.name === "FlowError") throw error;
    const reason = error instanceof Deno.errors.NotFound
      ? "no such file"
      : error instanceof Deno.errors.IsADirectory
      ? "is a directory"
      : error.message;
    throw new UserError(`cannot read flow file ${path}: ${reason}`);
  }
  return loadFlowBytes(bytes, path);
}

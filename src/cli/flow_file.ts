/** Reading a flow file from disk: the I/O half of loading (the pure half is src/flow/load.ts). */
import { UserError } from "./errors.ts";
import { loadFlow, loadYamlLibrary } from "../flow/mod.ts";
import type { FlowDefinition } from "../domain/mod.ts";

/** The name a flow read from standard input (`-`) goes by in messages. */
export const STDIN_NAME = "<stdin>";

/** Reads and loads a flow file (`-` reads standard input); the YAML library is imported here, on first need. */
export async function readFlowFile(path: string): Promise<FlowDefinition> {
  await loadYamlLibrary();
  if (path === "-") return loadFlow(readStdin(), STDIN_NAME);
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

function readStdin(): string {
  const chunks: Uint8Array[] = [];
  const buffer = new Uint8Array(65536);
  try {
    for (;;) {
      const n = Deno.stdin.readSync(buffer);
      if (n === null) break;
      chunks.push(buffer.slice(0, n));
    }
  } catch (error) {
    throw new UserError(`cannot read the flow from stdin: ${error instanceof Error ? error.message : error}`);
  }
  const bytes = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
  return new TextDecoder().decode(bytes);
}

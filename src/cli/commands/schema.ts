/** `schema`: the JSON Schema of flow files, for editors (yaml-language-server) and CI checks. */
import { flowSchema } from "../../flow/mod.ts";
import type { Command } from "../command.ts";
import { printJson } from "../output.ts";

export const schemaCommand: Command = {
  spec: {
    name: "schema",
    summary: "Print the JSON Schema (draft 2020-12) of flow files, generated from the loader's field table.",
    usage: "schema",
    options: [],
  },
  run() {
    printJson(flowSchema());
    return 0;
  },
};

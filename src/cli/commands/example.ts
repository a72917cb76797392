import type { Command } from "../command.ts";
import { ExitCode } from "../errors.ts";
import { EXAMPLE_FLOW } from "../example_flow.ts";
import { writeStdout } from "../output.ts";

export const exampleCommand: Command = {
  spec: {
    name: "example",
    summary: "Print an example flow (YAML) to stdout: orchesjob-flow example > flow.yaml",
    usage: "example",
    options: [],
  },
  run() {
    writeStdout(EXAMPLE_FLOW);
    return ExitCode.ok;
  },
};

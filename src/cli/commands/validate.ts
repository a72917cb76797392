import { definitionHash, normalizeFlow } from "../../flow/mod.ts";
import type { Command } from "../command.ts";
import { ExitCode } from "../errors.ts";
import { readFlowFile } from "../flow_file.ts";
import { printJson } from "../output.ts";

export const validateCommand: Command = {
  spec: {
    name: "validate",
    summary:
      "Check a flow file and print it normalized as JSON: each step's effective condition (when) and every step it waits for (waits_for).",
    usage: "validate FLOW_FILE",
    options: [],
    positionals: ["FLOW_FILE"],
  },
  run(_context, args) {
    const flow = readFlowFile(args.positionals[0]);
    const normalized = normalizeFlow(flow);
    const steps = normalized.steps.map((step, i) => ({ ...step, condition: flow.steps[i].condition }));
    printJson({ valid: true, flow_id: normalized.flow_id, definition_hash: definitionHash(flow), steps });
    return ExitCode.ok;
  },
};

import { conditionJson, definitionHash, normalizeFlow } from "../../flow/mod.ts";
import type { WhenExpr } from "../../domain/mod.ts";
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
    notes: "FLOW_FILE - reads the flow from standard input. Exit 0 when valid, 2 with a JSON error when not.",
  },
  async run(_context, args) {
    const flow = await readFlowFile(args.positionals[0]);
    const normalized = normalizeFlow(flow);
    const steps = normalized.steps.map((step, i) => ({ ...step, condition: conditionOf(flow.steps[i].condition) }));
    printJson({ valid: true, flow_id: normalized.flow_id, definition_hash: definitionHash(flow), steps });
    return ExitCode.ok;
  },
};

function conditionOf(condition: WhenExpr | null) {
  return condition === null ? null : conditionJson(condition);
}

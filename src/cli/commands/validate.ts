import { conditionJson, definitionHash, lintFlow, normalizeFlow } from "../../flow/mod.ts";
import type { WhenExpr } from "../../domain/mod.ts";
import type { Command } from "../command.ts";
import { bindFlowFile, givenParams, PARAM_OPTION, readFlowFile } from "../flow_file.ts";
import { ExitCode } from "../errors.ts";
import { printJson, writeStderr } from "../output.ts";

export const validateCommand: Command = {
  spec: {
    name: "validate",
    summary:
      "Check a flow file and print it normalized as JSON: each step's effective condition (when) and every step it waits for (waits_for).",
    usage: "validate [--param NAME=VALUE]... FLOW_FILE",
    options: [PARAM_OPTION],
    positionals: ["FLOW_FILE"],
    notes: "FLOW_FILE - reads the flow from standard input. Exit 0 when valid, 2 with a JSON error when not.\n" +
      "Warnings about likely mistakes go to stderr, one JSON line each; they do not fail the command.\n" +
      "Parameters are substituted as `start` would; a required one not given is left as written (with a warning).",
  },
  async run(_context, args) {
    const file = args.positionals[0];
    const loaded = await readFlowFile(file);
    const given = givenParams(args);
    const missing = loaded.params.filter((p) => p.default === null && given[p.name] === undefined).map((p) => p.name);
    const warnings: string[] = [
      ...lintFlow(loaded).map((warning) => `step "${warning.stepId}": ${warning.message}`),
      ...missing.map((name) => `parameter "${name}" has no default: start needs --param ${name}=VALUE`),
    ];
    // Unknown --param names are an error here too; with required ones missing, the file is shown unbound.
    // It is still checked with the values given: the missing ones count as unknown, so a field made of
    // one alone (`cwd: "${params.DIR}"`) is not refused as empty, while one that a given value empties is.
    const flow = missing.length === 0 ? bindFlowFile(loaded, file, given) : loaded;
    if (missing.length > 0) {
      const unknown = Object.fromEntries(missing.map((name) => [name, ""]));
      bindFlowFile(loaded, file, { ...given, ...unknown }, new Set(missing));
    }
    const normalized = normalizeFlow(flow);
    const steps = normalized.steps.map((step, i) => ({ ...step, condition: conditionOf(flow.steps[i].condition) }));
    for (const warning of warnings) writeStderr(JSON.stringify({ warning: `${file}: ${warning}` }) + "\n");
    printJson({
      valid: true,
      flow_id: normalized.flow_id,
      definition_hash: missing.length === 0 ? definitionHash(flow) : null,
      ...(normalized.params ? { params: normalized.params } : {}),
      ...(normalized.param_values ? { param_values: normalized.param_values } : {}),
      ...(normalized.max_parallel ? { max_parallel: normalized.max_parallel } : {}),
      steps,
      warnings,
    });
    return ExitCode.ok;
  },
};

function conditionOf(condition: WhenExpr | null) {
  return condition === null ? null : conditionJson(condition);
}

/** `graph`: a picture of a flow file's graph, for READMEs, issues and wikis. */
import type { Command } from "../command.ts";
import { readFlowFile } from "../flow_file.ts";
import { writeStdout } from "../output.ts";
import { GRAPH_FORMATS, type GraphFormat, renderGraph } from "../render/mod.ts";

export const graphCommand: Command = {
  spec: {
    name: "graph",
    summary: "Print a flow file's graph: edges labelled with the when expression, dashed for wait-only depends_on.",
    usage: "graph [--format mermaid|dot|text] FLOW_FILE",
    options: [
      { name: "format", value: "string", choices: GRAPH_FORMATS, help: "mermaid (default), dot or text." },
    ],
    positionals: ["FLOW_FILE"],
  },
  async run(_context, args) {
    const flow = await readFlowFile(args.positionals[0]);
    writeStdout(renderGraph(flow, (args.options.format as GraphFormat | undefined) ?? "mermaid"));
    return 0;
  },
};

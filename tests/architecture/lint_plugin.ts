/**
 * `deno lint` rules for src/ (see deno.json): imports follow the layer rules of layers.ts, and no
 * function is longer than {@link MAX_FUNCTION_LINES} lines.
 */
import { importEdge, repoPath, violation } from "./layers.ts";

export const MAX_FUNCTION_LINES = 60;

function lineOf(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

const plugin: Deno.lint.Plugin = {
  name: "architecture",
  rules: {
    "layer-imports": {
      create(context) {
        const check = (node: Deno.lint.Node, specifier: string) => {
          const edge = importEdge(repoPath(context.filename), specifier);
          const reason = edge && violation(edge);
          if (reason) context.report({ node, message: reason });
        };
        return {
          ImportDeclaration(node) {
            check(node, node.source.value);
          },
          ExportNamedDeclaration(node) {
            if (node.source) check(node, node.source.value);
          },
          ExportAllDeclaration(node) {
            check(node, node.source.value);
          },
        };
      },
    },
    "function-length": {
      create(context) {
        const check = (node: Deno.lint.Node & { range: Deno.lint.Range }) => {
          if (!repoPath(context.filename).startsWith("src/")) return;
          const text = context.sourceCode.text;
          const lines = lineOf(text, node.range[1]) - lineOf(text, node.range[0]) + 1;
          if (lines > MAX_FUNCTION_LINES) {
            context.report({ node, message: `function of ${lines} lines (at most ${MAX_FUNCTION_LINES}): split it` });
          }
        };
        return { FunctionDeclaration: check, FunctionExpression: check, ArrowFunctionExpression: check };
      },
    },
  },
};

export default plugin;

/**
 * `deno lint` rules for src/ (see deno.json): imports follow the layer rules of layers.ts, the YAML
 * library's values come only through {@link YAML_LOADER}, and no function is longer than
 * {@link MAX_FUNCTION_LINES} lines.
 */
import { importEdge, repoPath, violation } from "./layers.ts";

export const MAX_FUNCTION_LINES = 60;

/**
 * The one module of src/ that may import values (not only types) from "yaml": it loads the package's
 * ES-module build, and a second import elsewhere would load its CommonJS build beside it, ~50 ms of
 * start-up and classes that `instanceof` cannot match across the two.
 */
export const YAML_LOADER = "src/flow/yaml_library.ts";

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
    "yaml-through-library": {
      create(context) {
        const path = repoPath(context.filename);
        // Only the flow layer may use the package at all (layers.ts); elsewhere layer-imports reports it.
        if (!path.startsWith("src/flow/") || path === YAML_LOADER) return {};
        const message = `take the YAML library's values from ${YAML_LOADER} (import type from "yaml" is fine)`;
        const typesOnly = (node: Deno.lint.ImportDeclaration) =>
          node.importKind === "type" ||
          (node.specifiers.length > 0 &&
            node.specifiers.every((s) => s.type === "ImportSpecifier" && s.importKind === "type"));
        return {
          ImportDeclaration(node) {
            if (node.source.value === "yaml" && !typesOnly(node)) context.report({ node, message });
          },
          ExportNamedDeclaration(node) {
            if (node.source?.value === "yaml" && node.exportKind !== "type") context.report({ node, message });
          },
          ExportAllDeclaration(node) {
            if (node.source.value === "yaml" && node.exportKind !== "type") context.report({ node, message });
          },
          ImportExpression(node) {
            if (node.source.type === "Literal" && node.source.value === "yaml") context.report({ node, message });
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

/**
 * A parsed YAML document's values with aliases resolved. Anchors are indexed in one walk (the YAML
 * library's own lookup scans the whole document for every alias), and every node reached through an
 * alias counts against {@link LIMITS.aliasExpansion}, so a "billion laughs" file stops early with an
 * error. Pure.
 */
import type { Alias, Document, Node, YAMLMap } from "yaml";
import { isAlias, isMap, isPair, isScalar, isSeq } from "./yaml_library.ts";
import { FlowError, type Place } from "./errors.ts";
import { LIMITS } from "./limits.ts";
import { suggestField } from "./suggest.ts";

export type At = (node: Node | null | undefined, stepId?: string) => Place;

export class Values {
  private targets = new Map<Alias, Node>();
  private expanded = 0;
  /** Whether the document has an anchor or an alias anywhere. */
  readonly anchored: boolean = false;

  constructor(doc: Document.Parsed, readonly at: At) {
    const anchors = new Map<string, Node>();
    // Document order, so an alias names the latest anchor of that name before it.
    const stack: unknown[] = [doc.contents];
    while (stack.length > 0) {
      const node = stack.pop();
      if (isAlias(node)) {
        this.anchored = true;
        const target = anchors.get(node.source);
        if (target) this.targets.set(node, target);
      } else if (isPair(node)) {
        stack.push(node.value, node.key);
      } else if (isScalar(node) || isMap(node) || isSeq(node)) {
        if (node.anchor?.startsWith("&")) {
          // `command: && x` is the anchor "&" on "x" to YAML: the text written would be lost.
          throw new FlowError(at(node), `"&&" at the start of a value is read by YAML as an anchor; quote the value`);
        }
        if (node.anchor) {
          this.anchored = true;
          anchors.set(node.anchor, node);
        }
        if (!isScalar(node)) { for (let i = node.items.length - 1; i >= 0; i--) stack.push(node.items[i]); }
      }
    }
  }

  /** The node an alias stands for (the node itself otherwise). */
  deref(node: unknown): Node | undefined {
    if (node === null || node === undefined) return undefined;
    if (!isAlias(node)) return node as Node;
    const target = this.targets.get(node);
    if (!target) throw new FlowError(this.at(node), `alias *${node.source} names no anchor before it`);
    return target;
  }

  /** The JavaScript value of a node, aliases expanded within the limits. */
  plain(node: unknown, depth = 0, insideAlias = false): unknown {
    if (node === null || node === undefined) return null;
    const viaAlias = insideAlias || isAlias(node);
    const target = this.deref(node)!;
    if (viaAlias && ++this.expanded > LIMITS.aliasExpansion) {
      throw new FlowError(this.at(node as Node), `aliases expand to more than ${LIMITS.aliasExpansion} values`);
    }
    if (depth > LIMITS.valueNesting) {
      throw new FlowError(this.at(target), `value nested deeper than ${LIMITS.valueNesting} levels`);
    }
    if (isScalar(target)) return target.value;
    if (isSeq(target)) return target.items.map((item) => this.plain(item, depth + 1, viaAlias));
    if (isMap(target)) {
      const result: Record<string, unknown> = {};
      for (const pair of target.items) {
        const key = this.plain(pair.key, depth + 1, viaAlias);
        if (key === null) {
          // `~: x` or `null: x` would otherwise name a variable or parameter "null".
          throw new FlowError(
            this.at(this.deref(pair.key) ?? target),
            'a mapping key is null (an unquoted null or ~, or an empty key); quote it if the name "null" is meant',
          );
        }
        result[typeof key === "string" ? key : JSON.stringify(key)] = this.plain(pair.value, depth + 1, viaAlias);
      }
      return result;
    }
    return null;
  }

  /**
   * A mapping's fields by name (the value nodes as written), after refusing unknown names. A YAML
   * merge key (`<<: *base`, or `<<: [*a, *b]`) adds the fields of those mappings that the mapping
   * does not set itself, the first mapping listed winning; merged fields count against the alias
   * expansion limit, and merges nest at most {@link LIMITS.valueNesting} deep.
   */
  fields(map: YAMLMap, allowed: readonly string[], stepId?: string, depth = 0): Map<string, Node> {
    const fields = new Map<string, Node>();
    const merged: YAMLMap[] = [];
    for (const pair of map.items) {
      const keyNode = this.deref(pair.key);
      if (isScalar(keyNode) && keyNode.type === "PLAIN" && keyNode.value === "<<") {
        merged.push(...this.mergeSources(pair.value, depth));
        continue;
      }
      const key = isScalar(keyNode) ? keyNode.value : this.plain(keyNode);
      if (typeof key === "string" && allowed.includes(key)) {
        fields.set(key, pair.value as Node);
        continue;
      }
      const name = typeof key === "string" ? key : JSON.stringify(key);
      const suggestion = typeof key === "string" ? suggestField(key, allowed) : undefined;
      const where = stepId === undefined ? "" : ` in step "${stepId}"`;
      const hint = suggestion ? `; did you mean "${suggestion}"?` : `; expected one of ${allowed.join(", ")}`;
      throw new FlowError(this.at(keyNode), `unknown field "${name}"${where}${hint}`);
    }
    for (const source of merged) {
      for (const [name, node] of this.fields(source, allowed, stepId, depth + 1)) {
        if (++this.expanded > LIMITS.aliasExpansion) {
          throw new FlowError(this.at(source), `aliases expand to more than ${LIMITS.aliasExpansion} values`);
        }
        if (!fields.has(name)) fields.set(name, node);
      }
    }
    return fields;
  }

  /** The mappings a merge key's value names. */
  private mergeSources(value: unknown, depth: number): YAMLMap[] {
    const target = this.deref(value);
    if (depth >= LIMITS.valueNesting) {
      throw new FlowError(this.at(target), `merge keys (<<) nested deeper than ${LIMITS.valueNesting} levels`);
    }
    const items = isSeq(target) ? target.items : [target];
    return items.map((item) => {
      // Each mapping merged counts too: merges of merges of empty mappings would otherwise multiply unseen.
      if (++this.expanded > LIMITS.aliasExpansion) {
        throw new FlowError(this.at(target), `aliases expand to more than ${LIMITS.aliasExpansion} values`);
      }
      const source = this.deref(item);
      if (!isMap(source)) {
        throw new FlowError(this.at(source ?? target), "a merge key (<<) takes a mapping or a list of mappings");
      }
      return source;
    });
  }
}

/**
 * Flow files (YAML or JSON text) into a validated {@link FlowDefinition}. Pure: the caller reads the
 * file; this module only sees its text and name, so every error can name both.
 */
import {
  type Alias,
  type Document,
  isAlias,
  isMap,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  parseDocument,
  type YAMLMap,
} from "yaml";
import { checkGraph, effectiveWaits } from "./graph.ts";
import { FLOW_FIELDS, type FlowDefinition, STEP_FIELDS, type StepDefinition, type WhenExpr } from "../domain/mod.ts";
import { closestName } from "./suggest.ts";
import { allSucceeded, parseWhen, STEP_ID_PATTERN, WhenSyntaxError } from "./when.ts";
import { quoteBangWhenValues } from "./yaml_bang.ts";
import { INVISIBLE_OR_CONTROL, LIMITS } from "./limits.ts";

/** Where an error points: file, 1-based line and column when known, and the step it concerns. */
export interface Place {
  file: string;
  line?: number;
  column?: number;
  stepId?: string;
}

export function formatPlace(place: Place): string {
  const position = place.line === undefined ? "" : `:${place.line}:${place.column ?? 1}`;
  const step = place.stepId === undefined ? "" : ` step "${place.stepId}":`;
  return `${place.file}${position}:${step}`;
}

/** A flow file that cannot be used; its message names the file, the step and the position. */
export class FlowError extends Error {
  override name = "FlowError";
  constructor(readonly place: Place, readonly reason: string) {
    super(`${formatPlace(place)} ${reason}`);
  }
}

/**
 * Reads a flow file's bytes: refuses files over the size limit and invalid UTF-8 (with its position),
 * then {@link loadFlow}.
 */
export function loadFlowBytes(bytes: Uint8Array, fileName: string): FlowDefinition {
  checkFileSize(bytes.length, fileName);
  const bad = firstInvalidUtf8(bytes);
  if (bad >= 0) {
    const before = new TextDecoder().decode(bytes.subarray(0, bad));
    const line = before.split("\n").length;
    const column = before.length - before.lastIndexOf("\n");
    throw new FlowError({ file: fileName, line, column }, `invalid UTF-8 (byte 0x${bytes[bad].toString(16)})`);
  }
  return loadFlow(new TextDecoder().decode(bytes), fileName);
}

export function checkFileSize(bytes: number, fileName: string): void {
  if (bytes > LIMITS.fileBytes) {
    throw new FlowError({ file: fileName }, `flow file is ${bytes} bytes, over the limit of ${LIMITS.fileBytes}`);
  }
}

/** Offset of the first byte that does not belong to a well-formed UTF-8 sequence, or -1. */
function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i];
    if (b < 0x80) {
      i++;
      continue;
    }
    const [length, low, high] = b >= 0xc2 && b <= 0xdf
      ? [2, 0x80, 0xbf]
      : b === 0xe0
      ? [3, 0xa0, 0xbf]
      : b === 0xed
      ? [3, 0x80, 0x9f]
      : b >= 0xe1 && b <= 0xef
      ? [3, 0x80, 0xbf]
      : b === 0xf0
      ? [4, 0x90, 0xbf]
      : b === 0xf4
      ? [4, 0x80, 0x8f]
      : b >= 0xf1 && b <= 0xf3
      ? [4, 0x80, 0xbf]
      : [0, 0, 0];
    if (length === 0 || i + length > bytes.length) return i;
    if (bytes[i + 1] < low || bytes[i + 1] > high) return i;
    for (let k = 2; k < length; k++) if ((bytes[i + k] & 0xc0) !== 0x80) return i;
    i += length;
  }
  return -1;
}

/** Parses and validates flow text. `fileName` decides JSON (`.json`) or YAML, and names errors. */
export function loadFlow(text: string, fileName: string): FlowDefinition {
  if (text.length > LIMITS.fileBytes) checkFileSize(new TextEncoder().encode(text).length, fileName);
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const isJson = fileName.toLowerCase().endsWith(".json");
  const lineCounter = new LineCounter();
  const nul = text.indexOf("\0");
  if (nul >= 0) {
    const line = text.slice(0, nul).split("\n").length;
    throw new FlowError({ file: fileName, line, column: nul - text.lastIndexOf("\n", nul) }, "NUL byte in the file");
  }
  const source = isJson ? text : quoteBangWhenValues(text);
  let doc: Document.Parsed;
  try {
    doc = parseDocument(source, { lineCounter, prettyErrors: false, uniqueKeys: true, strict: true });
  } catch (error) {
    // The YAML library composes nested collections recursively.
    if (!(error instanceof RangeError)) throw error;
    throw new FlowError({ file: fileName }, `collections nested too deeply to read (limit ${LIMITS.valueNesting})`);
  }
  const at = (node: Node | null | undefined, stepId?: string): Place => {
    const offset = node?.range?.[0];
    if (offset === undefined) return { file: fileName, stepId };
    const { line, col } = lineCounter.linePos(offset);
    return { file: fileName, line, column: col, stepId };
  };
  const firstError = doc.errors[0];
  if (isJson) checkStrictJson(text, fileName, lineCounter, firstError?.pos[0]);
  if (firstError) {
    const { line, col } = lineCounter.linePos(firstError.pos[0]);
    const place = { file: fileName, line, column: col };
    if (firstError.code === "MULTIPLE_DOCS") {
      throw new FlowError(place, `a flow file holds one YAML document, but a second one starts at line ${line}`);
    }
    const reason = firstError.message.split("\n")[0].replace(/ at line \d+, column \d+:?$/, "");
    throw new FlowError(place, `invalid ${isJson ? "JSON" : "YAML"}: ${reason}`);
  }
  const unknownTag = doc.warnings.find((warning) => warning.code === "TAG_RESOLVE_FAILED");
  if (unknownTag) {
    const { line, col } = lineCounter.linePos(unknownTag.pos[0]);
    const tag = /Unresolved tag: (\S+)/.exec(unknownTag.message)?.[1]?.replace(/^tag:yaml\.org,2002:/, "!!") ?? "?";
    throw new FlowError(
      { file: fileName, line, column: col },
      `unknown YAML tag ${tag}; quote the value if the text is meant (only "when" may start with an unquoted "!")`,
    );
  }
  const values = new Values(doc, at);
  const root = values.deref(doc.contents);
  if (!isMap(root)) throw new FlowError(at(root), "a flow must be a mapping with flow_id and steps");
  const rootFields = values.fields(root, FLOW_FIELDS, "field");

  const flowIdNode = rootFields.get("flow_id");
  if (!flowIdNode) throw new FlowError(at(root), 'missing required field "flow_id"');
  const flowId = values.plain(flowIdNode);
  if (typeof flowId !== "string" || flowId.trim() === "") {
    throw new FlowError(at(flowIdNode), "flow_id must be a non-empty string");
  }
  if ([...flowId].length > LIMITS.flowIdChars || INVISIBLE_OR_CONTROL.test(flowId)) {
    throw new FlowError(
      at(flowIdNode),
      `invalid flow_id ${
        JSON.stringify(flowId)
      }: use 1-${LIMITS.flowIdChars} characters without control or invisible characters`,
    );
  }

  const stepsNode = values.deref(rootFields.get("steps"));
  if (!stepsNode) throw new FlowError(at(root), 'missing required field "steps"');
  if (!isSeq(stepsNode) || stepsNode.items.length === 0) {
    throw new FlowError(at(stepsNode), "steps must be a non-empty list");
  }
  if (stepsNode.items.length > LIMITS.steps) {
    throw new FlowError(at(stepsNode), `${stepsNode.items.length} steps, over the limit of ${LIMITS.steps}`);
  }

  const seen = new Map<string, Place>();
  const steps: StepDefinition[] = [];
  const placeOfStep = new Map<string, { when?: Place; dependsOn?: Place; step: Place }>();
  for (const item of stepsNode.items as Node[]) {
    const step = readStep(values.deref(item), values);
    const previous = seen.get(step.definition.id);
    if (previous) {
      throw new FlowError(
        step.places.id,
        `duplicate step id "${step.definition.id}" (first defined at line ${previous.line})`,
      );
    }
    seen.set(step.definition.id, step.places.id);
    placeOfStep.set(step.definition.id, {
      when: step.places.when,
      dependsOn: step.places.dependsOn,
      step: step.places.id,
    });
    steps.push(step.definition);
  }

  const flow: FlowDefinition = { flowId, steps };
  const problem = checkGraph(flow);
  if (problem) {
    const places = problem.stepId === undefined ? undefined : placeOfStep.get(problem.stepId);
    const place = problem.field === "when"
      ? places?.when
      : problem.field === "depends_on"
      ? places?.dependsOn
      : places?.step;
    throw new FlowError(place ?? { file: fileName, stepId: problem.stepId }, problem.reason);
  }
  return flow;
}

/** JSON files are held to JSON's own grammar (YAML would accept more). */
function checkStrictJson(text: string, fileName: string, lineCounter: LineCounter, yamlErrorAt?: number): void {
  try {
    JSON.parse(text);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    const offset = /position (\d+)/.exec(message)?.[1] ?? yamlErrorAt;
    const place: Place = { file: fileName };
    if (offset !== undefined) {
      const { line, col } = lineCounter.linePos(Number(offset));
      Object.assign(place, { line, column: col });
    }
    throw new FlowError(place, `invalid JSON: ${message.replace(/ \(line \d+ column \d+\)$/, "")}`);
  }
}

type At = (node: Node | null | undefined, stepId?: string) => Place;

/**
 * The document's values with aliases resolved. Anchors are indexed in one walk (the library's own
 * lookup scans the whole document per alias), and every node reached through an alias counts
 * against {@link LIMITS.aliasExpansion}, so a "billion laughs" file stops early with an error.
 */
class Values {
  private targets = new Map<Alias, Node>();
  private expanded = 0;

  constructor(doc: Document.Parsed, readonly at: At) {
    const anchors = new Map<string, Node>();
    const stack: unknown[] = [doc.contents];
    while (stack.length > 0) {
      const node = stack.pop();
      if (isAlias(node)) {
        const target = anchors.get(node.source);
        if (target) this.targets.set(node, target);
        continue;
      }
      if (isPair(node)) {
        stack.push(node.value, node.key);
        continue;
      }
      if (!isScalar(node) && !isMap(node) && !isSeq(node)) continue;
      if (node.anchor) anchors.set(node.anchor, node);
      if (isMap(node) || isSeq(node)) { for (let i = node.items.length - 1; i >= 0; i--) stack.push(node.items[i]); }
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
  plain(node: unknown, depth = 0): unknown {
    if (node === null || node === undefined) return null;
    const viaAlias = isAlias(node);
    const target = this.deref(node)!;
    if (viaAlias) this.count(target, node as Node);
    if (depth > LIMITS.valueNesting) {
      throw new FlowError(this.at(target), `value nested deeper than ${LIMITS.valueNesting} levels`);
    }
    if (isScalar(target)) return target.value;
    if (isSeq(target)) {
      return target.items.map((item) => this.plainCounted(item, viaAlias, depth + 1));
    }
    if (isMap(target)) {
      const result: Record<string, unknown> = {};
      for (const pair of target.items) {
        const key = this.plainCounted(pair.key, viaAlias, depth + 1);
        result[typeof key === "string" ? key : JSON.stringify(key)] = this.plainCounted(
          pair.value,
          viaAlias,
          depth + 1,
        );
      }
      return result;
    }
    return null;
  }

  private plainCounted(node: unknown, insideAlias: boolean, depth: number): unknown {
    if (insideAlias && !isAlias(node)) this.count(node as Node, node as Node);
    return this.plain(node, depth);
  }

  private count(_target: Node, from: Node): void {
    if (++this.expanded > LIMITS.aliasExpansion) {
      throw new FlowError(this.at(from), `aliases expand to more than ${LIMITS.aliasExpansion} values`);
    }
  }

  /** A mapping's fields by name, after refusing unknown names (with the nearest valid one). */
  fields(map: YAMLMap, allowed: readonly string[], what: string, stepId?: string): Map<string, Node> {
    const fields = new Map<string, Node>();
    for (const pair of map.items) {
      const keyNode = this.deref(pair.key);
      const key = isScalar(keyNode) ? keyNode.value : this.plain(keyNode);
      if (typeof key === "string" && allowed.includes(key)) {
        fields.set(key, pair.value as Node);
        continue;
      }
      const name = typeof key === "string" ? key : JSON.stringify(key);
      const suggestion = typeof key === "string" ? closestName(key, allowed) : undefined;
      const where = stepId === undefined ? "" : ` in step "${stepId}"`;
      const hint = suggestion ? `; did you mean "${suggestion}"?` : `; expected one of ${allowed.join(", ")}`;
      throw new FlowError(this.at(keyNode), `unknown ${what} "${name}"${where}${hint}`);
    }
    return fields;
  }
}

interface ReadStep {
  definition: StepDefinition;
  places: { id: Place; when?: Place; dependsOn?: Place };
}

function readStep(item: Node | undefined, values: Values): ReadStep {
  const at = values.at;
  if (!isMap(item)) throw new FlowError(at(item), "each step must be a mapping with id and command");
  const idPair = item.items.find((pair) => {
    const key = values.deref(pair.key);
    return isScalar(key) && key.value === "id";
  });
  if (idPair === undefined) throw new FlowError(at(item), 'step is missing required field "id"');
  const idNode = values.deref(idPair.value);
  let rawId = values.plain(idPair.value);
  const written = isScalar(idNode) && typeof idNode.source === "string" ? idNode.source : undefined;
  if (typeof rawId === "number" && written === String(rawId)) {
    rawId = written; // `id: 7` means "7"
  } else if (typeof rawId !== "string" && rawId !== null && written !== undefined) {
    // `id: 007` is the number 7 and `id: 0x1F` is 31 to YAML; the text written is what was meant.
    throw new FlowError(
      at(idNode),
      `step id ${written} is read by YAML as the ${typeof rawId} ${JSON.stringify(rawId)}; ` +
        `write it in quotes: id: "${written}"`,
    );
  }
  const id = rawId;
  if (typeof id !== "string" || !STEP_ID_PATTERN.test(id) || id.length > LIMITS.stepIdChars) {
    throw new FlowError(
      at(idNode),
      `invalid step id ${JSON.stringify(id)}: use 1-${LIMITS.stepIdChars} letters, digits, "_", "-" or "." ` +
        'starting with a letter, digit or "_"',
    );
  }
  const fields = values.fields(item, STEP_FIELDS, "field", id);
  const field = (name: string) => fields.get(name);
  const fail = (node: Node | undefined, reason: string): never => {
    throw new FlowError(at(node ?? item, id), reason);
  };
  const scalarValue = (node: Node) => values.plain(node);

  const commandNode = field("command");
  if (commandNode === undefined) fail(item, 'missing required field "command"');
  const command = readCommand(commandNode!, values.plain(commandNode), fail);

  const whenNode = field("when");
  let when: WhenExpr | null = null;
  if (whenNode !== undefined) {
    const text = scalarValue(whenNode);
    if (typeof text !== "string" || text.trim() === "") fail(whenNode, "when must be a non-empty string expression");
    if ((text as string).length > LIMITS.whenChars) {
      fail(whenNode, `when expression of ${(text as string).length} characters, over the limit of ${LIMITS.whenChars}`);
    }
    try {
      when = parseWhen(text as string);
    } catch (error) {
      if (!(error instanceof WhenSyntaxError)) throw error;
      fail(whenNode, `invalid when expression ${JSON.stringify(text)}: ${error.message}`);
    }
  }

  const dependsNode = field("depends_on");
  let dependsOn: string[] = [];
  if (dependsNode !== undefined) {
    const value = scalarValue(dependsNode);
    if (!Array.isArray(value) || value.some((v) => typeof v !== "string" || v === "")) {
      fail(dependsNode, "depends_on must be a list of step ids");
    }
    dependsOn = [...new Set(value as string[])];
  }

  const number = (
    name: string,
    ok: (n: number) => boolean,
    rule: string,
    max: number,
    integer = false,
  ): number | undefined => {
    const node = field(name);
    if (node === undefined) return undefined;
    const value = scalarValue(node);
    if (typeof value !== "number" || !Number.isFinite(value) || !ok(value) || (integer && !Number.isInteger(value))) {
      fail(node, `${name} must be ${rule}, got ${JSON.stringify(value)}`);
    }
    if ((value as number) > max) fail(node, `${name} must be at most ${max}, got ${value}`);
    return value as number;
  };
  const seconds = LIMITS.seconds;
  const retries = number("retries", (n) => n >= 0, "an integer >= 0", LIMITS.retries, true) ?? 0;
  const retryDelaySec = number("retry_delay_sec", (n) => n >= 0, "a number >= 0", seconds) ?? 0;
  const timeoutSec = number("timeout_sec", (n) => n > 0, "a number > 0", seconds) ?? null;
  const startTimeoutSec = number("start_timeout_sec", (n) => n > 0, "a number > 0", seconds) ?? null;
  const strictNode = field("strict");
  const strictValue = strictNode === undefined ? true : scalarValue(strictNode);
  if (typeof strictValue !== "boolean") {
    fail(strictNode, `strict must be true or false, got ${JSON.stringify(strictValue)}`);
  }

  const condition = when ?? allSucceeded(dependsOn);
  const definition: StepDefinition = {
    id,
    command,
    condition,
    dependsOn,
    waitsFor: effectiveWaits(dependsOn, condition),
    retries,
    retryDelaySec,
    timeoutSec,
    strict: strictValue as boolean,
    startTimeoutSec,
  };
  return {
    definition,
    places: {
      id: at(idNode, id),
      when: whenNode ? at(whenNode, id) : undefined,
      dependsOn: dependsNode ? at(dependsNode, id) : undefined,
    },
  };
}

function readCommand(node: Node, value: unknown, fail: (node: Node | undefined, reason: string) => never): string[] {
  if (typeof value === "string") {
    if (value.trim() === "") fail(node, "command must not be empty");
    checkArguments(["/bin/sh", "-c", value], node, fail);
    return ["/bin/sh", "-c", value];
  }
  if (!Array.isArray(value) || value.length === 0) {
    fail(node, "command must be a non-empty list of strings, or a string run by /bin/sh -c");
  }
  const args = value as unknown[];
  const bad = args.findIndex((arg) => typeof arg !== "string");
  if (bad >= 0) fail(node, `command[${bad}] must be a string, got ${JSON.stringify(args[bad])}`);
  if (args[0] === "") fail(node, "command[0] (the program) must not be empty");
  checkArguments(args as string[], node, fail);
  return args as string[];
}

/** What exec(2) would refuse: NUL inside an argument, an argument or a command line over the limits. */
function checkArguments(args: string[], node: Node, fail: (node: Node | undefined, reason: string) => never): void {
  const encoder = new TextEncoder();
  let total = 0;
  args.forEach((arg, i) => {
    if (arg.includes("\0")) fail(node, `command[${i}] contains a NUL character`);
    const size = encoder.encode(arg).length;
    if (size > LIMITS.argumentBytes) {
      fail(node, `command argument of ${size} bytes, over the limit of ${LIMITS.argumentBytes}`);
    }
    total += size + 1;
  });
  if (total > LIMITS.commandBytes) fail(node, `command of ${total} bytes, over the limit of ${LIMITS.commandBytes}`);
}

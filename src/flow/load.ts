/**
 * Flow files (YAML or JSON text) into a validated {@link FlowDefinition}. Pure: the caller reads the
 * file; this module only sees its text and name, so every error can name both.
 */
import { isMap, isScalar, isSeq, LineCounter, type Node, parseDocument, type Scalar, type YAMLMap } from "yaml";
import { checkGraph, effectiveWaits } from "./graph.ts";
import { FLOW_FIELDS, type FlowDefinition, STEP_FIELDS, type StepDefinition, type WhenExpr } from "../domain/mod.ts";
import { closestName } from "./suggest.ts";
import { allSucceeded, parseWhen, STEP_ID_PATTERN, WhenSyntaxError } from "./when.ts";
import { quoteBangWhenValues } from "./yaml_bang.ts";

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

/** Parses and validates flow text. `fileName` decides JSON (`.json`) or YAML, and names errors. */
export function loadFlow(text: string, fileName: string): FlowDefinition {
  const { root, at } = parseRoot(text, fileName);
  checkFieldNames(root, FLOW_FIELDS, "field", at);
  const flowIdNode = root.get("flow_id", true) as Node | undefined;
  if (flowIdNode === undefined) throw new FlowError(at(root), 'missing required field "flow_id"');
  const flowId = scalarValue(flowIdNode);
  if (typeof flowId !== "string" || flowId.trim() === "") {
    throw new FlowError(at(flowIdNode), "flow_id must be a non-empty string");
  }
  const { steps, places } = readSteps(root, at);
  const flow: FlowDefinition = { flowId, steps };
  checkFlowGraph(flow, places, fileName);
  return flow;
}

/** The document's root mapping, and how to name a node's place; syntax errors become FlowErrors. */
function parseRoot(text: string, fileName: string): { root: YAMLMap; at: At } {
  const isJson = fileName.toLowerCase().endsWith(".json");
  const lineCounter = new LineCounter();
  const source = isJson ? text : quoteBangWhenValues(text);
  const doc = parseDocument(source, { lineCounter, prettyErrors: false, uniqueKeys: true, strict: true });
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
    const reason = firstError.message.split("\n")[0].replace(/ at line \d+, column \d+:?$/, "");
    throw new FlowError({ file: fileName, line, column: col }, `invalid ${isJson ? "JSON" : "YAML"}: ${reason}`);
  }
  const root = doc.contents;
  if (!isMap(root)) throw new FlowError(at(root), "a flow must be a mapping with flow_id and steps");
  return { root, at };
}

/** Where each step's id, `when` and `depends_on` are, so graph problems can point at them. */
type StepPlaces = Map<string, ReadStep["places"]>;

/** The steps, in order, refusing a duplicate id. */
function readSteps(root: YAMLMap, at: At): { steps: StepDefinition[]; places: StepPlaces } {
  const stepsNode = root.get("steps", true) as Node | undefined;
  if (stepsNode === undefined) throw new FlowError(at(root), 'missing required field "steps"');
  if (!isSeq(stepsNode) || stepsNode.items.length === 0) {
    throw new FlowError(at(stepsNode), "steps must be a non-empty list");
  }
  const steps: StepDefinition[] = [];
  const places: StepPlaces = new Map();
  for (const item of stepsNode.items as Node[]) {
    const step = readStep(item, at);
    const previous = places.get(step.definition.id);
    if (previous) {
      throw new FlowError(
        step.places.id,
        `duplicate step id "${step.definition.id}" (first defined at line ${previous.id.line})`,
      );
    }
    places.set(step.definition.id, step.places);
    steps.push(step.definition);
  }
  return { steps, places };
}

/** Unknown ids, self references and cycles, reported at the field that causes them. */
function checkFlowGraph(flow: FlowDefinition, places: StepPlaces, fileName: string): void {
  const problem = checkGraph(flow);
  if (!problem) return;
  const step = problem.stepId === undefined ? undefined : places.get(problem.stepId);
  const place = problem.field === "when" ? step?.when : problem.field === "depends_on" ? step?.dependsOn : step?.id;
  throw new FlowError(place ?? { file: fileName, stepId: problem.stepId }, problem.reason);
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

function scalarValue(node: Node | undefined): unknown {
  return isScalar(node) ? (node as Scalar).value : node === undefined ? undefined : node.toJSON();
}

type At = (node: Node | null | undefined, stepId?: string) => Place;

function checkFieldNames(map: YAMLMap, allowed: readonly string[], what: string, at: At, stepId?: string): void {
  for (const pair of map.items) {
    const keyNode = pair.key as Node;
    const key = scalarValue(keyNode);
    if (typeof key === "string" && allowed.includes(key)) continue;
    const name = typeof key === "string" ? key : JSON.stringify(key);
    const suggestion = typeof key === "string" ? closestName(key, allowed) : undefined;
    const where = stepId === undefined ? "" : ` in step "${stepId}"`;
    const hint = suggestion ? `; did you mean "${suggestion}"?` : `; expected one of ${allowed.join(", ")}`;
    throw new FlowError(at(keyNode), `unknown ${what} "${name}"${where}${hint}`);
  }
}

interface ReadStep {
  definition: StepDefinition;
  places: { id: Place; when?: Place; dependsOn?: Place };
}

function readStep(item: Node, at: At): ReadStep {
  if (!isMap(item)) throw new FlowError(at(item), "each step must be a mapping with id and command");
  const idNode = item.get("id", true) as Node | undefined;
  if (idNode === undefined) throw new FlowError(at(item), 'step is missing required field "id"');
  const rawId = scalarValue(idNode);
  const id = typeof rawId === "number" ? String(rawId) : rawId;
  if (typeof id !== "string" || !STEP_ID_PATTERN.test(id) || id.length > 128) {
    throw new FlowError(
      at(idNode),
      `invalid step id ${
        JSON.stringify(rawId)
      }: use 1-128 letters, digits, "_", "-" or "." starting with a letter, digit or "_"`,
    );
  }
  checkFieldNames(item, STEP_FIELDS, "field", at, id);
  const fields: StepFields = {
    get: (name) => item.get(name, true) as Node | undefined,
    fail: (node, reason) => {
      throw new FlowError(at(node ?? item, id), reason);
    },
  };
  const commandNode = fields.get("command");
  if (commandNode === undefined) fields.fail(item, 'missing required field "command"');
  const command = readCommand(commandNode!, fields.fail);
  const when = readWhen(fields);
  const dependsOn = readDependsOn(fields);
  const condition = when ?? allSucceeded(dependsOn);
  const definition: StepDefinition = {
    id,
    command,
    condition,
    dependsOn,
    waitsFor: effectiveWaits(dependsOn, condition),
    ...readLimits(fields),
  };
  const whenNode = fields.get("when");
  const dependsNode = fields.get("depends_on");
  return {
    definition,
    places: {
      id: at(idNode, id),
      when: whenNode ? at(whenNode, id) : undefined,
      dependsOn: dependsNode ? at(dependsNode, id) : undefined,
    },
  };
}

/** A step's fields by name, and how to refuse one (naming the file, place and step). */
interface StepFields {
  get(name: string): Node | undefined;
  fail(node: Node | undefined, reason: string): never;
}

function readWhen(fields: StepFields): WhenExpr | null {
  const node = fields.get("when");
  if (node === undefined) return null;
  const text = scalarValue(node);
  if (typeof text !== "string" || text.trim() === "") fields.fail(node, "when must be a non-empty string expression");
  try {
    return parseWhen(text as string);
  } catch (error) {
    if (!(error instanceof WhenSyntaxError)) throw error;
    return fields.fail(node, `invalid when expression ${JSON.stringify(text)}: ${error.message}`);
  }
}

function readDependsOn(fields: StepFields): string[] {
  const node = fields.get("depends_on");
  if (node === undefined) return [];
  const value = scalarValue(node);
  if (!Array.isArray(value) || value.some((v) => typeof v !== "string" || v === "")) {
    fields.fail(node, "depends_on must be a list of step ids");
  }
  return [...new Set(value as string[])];
}

/** Retries, delays, timeouts and strictness, with their defaults. */
function readLimits(fields: StepFields) {
  const number = (name: string, ok: (n: number) => boolean, rule: string, integer = false): number | undefined => {
    const node = fields.get(name);
    if (node === undefined) return undefined;
    const value = scalarValue(node);
    if (typeof value !== "number" || !Number.isFinite(value) || !ok(value) || (integer && !Number.isInteger(value))) {
      fields.fail(node, `${name} must be ${rule}, got ${JSON.stringify(value)}`);
    }
    return value as number;
  };
  const retries = number("retries", (n) => n >= 0, "an integer >= 0", true) ?? 0;
  const retryDelaySec = number("retry_delay_sec", (n) => n >= 0, "a number >= 0") ?? 0;
  const timeoutSec = number("timeout_sec", (n) => n > 0, "a number > 0") ?? null;
  const startTimeoutSec = number("start_timeout_sec", (n) => n > 0, "a number > 0") ?? null;
  const strictNode = fields.get("strict");
  const strict = strictNode === undefined ? true : scalarValue(strictNode);
  if (typeof strict !== "boolean") {
    fields.fail(strictNode, `strict must be true or false, got ${JSON.stringify(strict)}`);
  }
  return { retries, retryDelaySec, timeoutSec, strict: strict as boolean, startTimeoutSec };
}

function readCommand(node: Node, fail: (node: Node | undefined, reason: string) => never): string[] {
  const value = scalarValue(node);
  if (typeof value === "string") {
    if (value.trim() === "") fail(node, "command must not be empty");
    checkExecutable(node, ["/bin/sh", "-c", value], fail);
    return ["/bin/sh", "-c", value];
  }
  if (!Array.isArray(value) || value.length === 0) {
    fail(node, "command must be a non-empty list of strings, or a string run by /bin/sh -c");
  }
  const args = value as unknown[];
  const bad = args.findIndex((arg) => typeof arg !== "string");
  if (bad >= 0) fail(node, `command[${bad}] must be a string, got ${JSON.stringify(args[bad])}`);
  if (args[0] === "") fail(node, "command[0] (the program) must not be empty");
  checkExecutable(node, args as string[], fail);
  return args as string[];
}

/**
 * The most bytes a step's command may take: each argument's UTF-8 bytes plus its terminating NUL,
 * summed. 128 KiB is the longest single argument Linux accepts (MAX_ARG_STRLEN), and well under every
 * POSIX system's total limit (ARG_MAX, at least 256 KiB on macOS, 2 MiB on Linux) with room left for
 * the environment.
 */
export const MAX_COMMAND_BYTES = 128 * 1024;

/** Refuses what no exec can ever run: a NUL byte in an argument, or a command over the size limit. */
function checkExecutable(node: Node, args: string[], fail: (node: Node | undefined, reason: string) => never): void {
  const nul = args.findIndex((arg) => arg.includes("\0"));
  if (nul >= 0) fail(node, `command[${nul}] contains a NUL byte, which no program can receive`);
  const encoder = new TextEncoder();
  const size = args.reduce((total, arg) => total + encoder.encode(arg).length + 1, 0);
  if (size > MAX_COMMAND_BYTES) {
    fail(
      node,
      `command is ${size} bytes, over the limit of ${MAX_COMMAND_BYTES} (arguments with their terminating NULs)`,
    );
  }
}

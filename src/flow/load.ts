/**
 * Flow files (YAML or JSON text) into a validated {@link FlowDefinition}. Pure: the caller reads the
 * file; this module only sees its text and name, so every error can name both.
 */
import type { Document, LineCounter, Node, YAMLMap } from "yaml";
import { isMap, isScalar, isSeq, newLineCounter, parseDocument } from "./yaml_library.ts";
import { checkGraph, effectiveWaits } from "./graph.ts";
import type { FlowDefinition, ParamSpec, RetryBackoff, StepDefinition, WhenExpr } from "../domain/mod.ts";
import {
  checkFieldValue,
  clipped,
  type FieldSpec,
  fieldSpec,
  FLOW_FIELD_TABLE,
  FLOW_FIELDS,
  shown,
  STEP_FIELD_TABLE,
  STEP_FIELDS,
  STRING_COMMAND_SHELL,
} from "./fields.ts";
import { paramReferences } from "./params.ts";
import { recordFieldPlaces } from "./places.ts";
import { allSucceeded, parseWhen, STEP_ID_PATTERN, WhenSyntaxError } from "./when.ts";
import { quoteBangWhenValues } from "./yaml_bang.ts";
import { FlowError, type Place } from "./errors.ts";
import { INVISIBLE_OR_CONTROL, LIMITS } from "./limits.ts";
import { checkFlowText, checkValueCount, decodeFlowBytes } from "./source.ts";
import { type At, Values } from "./values.ts";
import { stepsLayout } from "./step_spans.ts";

export { FlowError, formatPlace, type Place } from "./errors.ts";
export { checkFileSize } from "./source.ts";

/** Loads a flow file's bytes: see {@link loadFlow}; invalid UTF-8 is refused with its position. */
export function loadFlowBytes(bytes: Uint8Array, fileName: string, options: LoadOptions = {}): FlowDefinition {
  return loadFlow(decodeFlowBytes(bytes, fileName), fileName, options);
}

export interface LoadOptions {
  /**
   * Called before each step of a file read in parts: the caller may bound its heap there (the parts'
   * garbage would otherwise pile up until V8 collects it, tens of MiB for 10k steps).
   */
  afterStep?: () => void;
}

/**
 * Files from this many characters on are read one step at a time when their layout allows it
 * ({@link loadFlowInParts}); smaller ones are parsed whole, where that costs little.
 */
const IN_PARTS_FROM_CHARS = 64 * 1024;

/** Parses and validates flow text. `fileName` decides JSON (`.json`) or YAML, and names errors. */
export function loadFlow(text: string, fileName: string, options: LoadOptions = {}): FlowDefinition {
  const flow = text.length >= IN_PARTS_FROM_CHARS ? loadFlowInParts(text, fileName, options) : null;
  return flow ?? loadWholeFlow(text, fileName);
}

/** The flow with its whole document parsed at once: any file can be read so, and every error is reported so. */
export function loadWholeFlow(text: string, fileName: string): FlowDefinition {
  const { root, values } = parseRoot(text, fileName);
  return flowOf(root, values, fileName, (stepsNode, defaults) => readSteps(stepsNode, root, values, defaults));
}

/**
 * The flow with its steps parsed one at a time (src/flow/step_spans.ts finds them), so that a large
 * file's token tree is never held whole: a 10k-step file took a process to 135 MiB as YAML, 174 MiB as JSON. Null when the
 * layout is not one that step_spans.ts knows, or when anything is wrong or unusual (an error, an
 * anchor or alias, which may reach from one step into another): {@link loadWholeFlow} then reads the
 * file, and reports its errors as for any other. A flow read in parts is the same as read whole
 * (tests/flow/load_in_parts_test.ts compares the two on every flow file of the project).
 */
export function loadFlowInParts(text: string, fileName: string, options: LoadOptions = {}): FlowDefinition | null {
  try {
    return readInParts(text, fileName, options.afterStep);
  } catch {
    return null;
  }
}

/** Thrown where reading in parts gives way to reading whole. */
class NotInParts extends Error {}

function readInParts(text: string, fileName: string, afterStep?: () => void): FlowDefinition | null {
  const isJson = fileName.toLowerCase().endsWith(".json");
  const checked = checkFlowText(text, fileName);
  checkValueCount(checked, fileName);
  if (isJson) JSON.parse(checked);
  const source = isJson ? checked : quoteBangWhenValues(checked);
  const layout = stepsLayout(source, isJson);
  if (layout === null) return null;
  const lines = lineCounterOf(source);
  const head = parseChecked(layout.head, fileName, isJson);
  checkYamlVersion(head.doc, layout.head, fileName, head.lineCounter);
  // A %TAG directive names a tag handle for the whole document; a step parsed alone would not know it.
  if (hasTagDirective(head.doc)) return null;
  const { cutAt, shift } = layout;
  const values = new Values(head.doc, placeAt(fileName, lines, (at) => at < cutAt ? at : at + shift));
  const root = values.deref(head.doc.contents);
  if (values.anchored || !isMap(root)) return null;
  return flowOf(root, values, fileName, (stepsNode, defaults) => {
    if (!isSeq(stepsNode) || stepsNode.items.length > 0 || stepsNode.range?.[0] !== layout.placeholderAt) {
      throw new NotInParts("steps is not where the layout put it");
    }
    if (layout.items.length > LIMITS.steps) throw new NotInParts("over the step limit");
    return collectSteps(
      layout.items.map((span) => () => {
        afterStep?.();
        const part = parseChecked(source.slice(span.start, span.end), fileName, isJson);
        const partValues = new Values(part.doc, placeAt(fileName, lines, (at) => span.start + at));
        const contents = partValues.deref(part.doc.contents);
        if (partValues.anchored) throw new NotInParts("anchors or aliases");
        if (isJson) return { item: contents, values: partValues };
        if (!isSeq(contents) || contents.items.length !== 1) throw new NotInParts("not one sequence item");
        return { item: partValues.deref(contents.items[0]), values: partValues };
      }),
      defaults,
    );
  });
}

/** Whether the document's directives name a tag handle other than the default `!!`. */
function hasTagDirective(doc: Document.Parsed): boolean {
  const tags = Object.entries(doc.directives?.tags ?? {});
  return tags.some(([handle, prefix]) => handle !== "!!" || prefix !== "tag:yaml.org,2002:");
}

/** A flow from its root mapping; `readStepsOf` reads the steps from the `steps` field's node. */
function flowOf(
  root: YAMLMap,
  values: Values,
  fileName: string,
  readStepsOf: (stepsNode: Node | undefined, defaults: StepDefaults) => StepsRead,
): FlowDefinition {
  const fields = presentFields(values.fields(root, FLOW_FIELDS), FLOW_FIELD_TABLE, values, root);
  const flowId = readFlowId(fields.get("flow_id"), root, values);
  const { params, maxParallel, defaults } = readFlowSettings(fields, values);
  const { steps, places } = readStepsOf(values.deref(fields.get("steps")), defaults);
  const flow: FlowDefinition = {
    flowId,
    steps,
    params,
    paramValues: null,
    maxParallel,
    ...readExecutorUnavailable(fields.get("executor_unavailable_sec"), values),
  };
  checkFlowGraph(flow, places, fileName);
  return flow;
}

/**
 * A mapping's fields without those set to null (`timeout_sec: null`, `when: ~`, a bare `when:`, JSON
 * `null`): an optional field set to null is absent, so it takes its default, and a null never reaches
 * a reader that could take it for the text "null". A required field set to null is refused by name.
 * Nulls are dropped after merge keys are applied, so a step's own `timeout_sec: null` still wins over
 * a merged `timeout_sec: 5`, as any value of its own would.
 */
function presentFields(
  fields: Map<string, Node>,
  table: readonly FieldSpec[],
  values: Values,
  map: YAMLMap,
  stepId?: string,
): Map<string, Node> {
  for (const [name, node] of fields) {
    const target = values.deref(node);
    if (target !== undefined && !(isScalar(target) && target.value === null)) continue;
    if (fieldSpec(table, name).required) {
      // `{id: a, command}` has no value node: the error points at the mapping.
      throw new FlowError(values.at(target ?? map, stepId), `required field "${name}" is null`);
    }
    fields.delete(name);
  }
  return fields;
}

/** The flow's optional `executor_unavailable_sec`: a number > 0. */
function readExecutorUnavailable(node: Node | undefined, values: Values): { executorUnavailableSec?: number } {
  if (node === undefined) return {};
  const value = values.plain(node);
  if (typeof value !== "number" || !Number.isFinite(value) || value <= 0 || value > LIMITS.seconds) {
    throw new FlowError(values.at(node), `executor_unavailable_sec must be a number > 0 and <= ${LIMITS.seconds}`);
  }
  return { executorUnavailableSec: value };
}

/** The document's root mapping, and its values; syntax errors become FlowErrors. */
function parseRoot(text: string, fileName: string): { root: YAMLMap; values: Values } {
  const isJson = fileName.toLowerCase().endsWith(".json");
  const lineCounter = newLineCounter();
  const checked = checkFlowText(text, fileName);
  checkValueCount(checked, fileName);
  const source = isJson ? checked : quoteBangWhenValues(checked);
  const doc = parseYaml(source, fileName, lineCounter);
  const at = placeAt(fileName, lineCounter);
  if (isJson) checkStrictJson(checked, fileName, lineCounter, doc.errors[0]?.pos[0]);
  checkDocument(doc, fileName, lineCounter, isJson);
  checkYamlVersion(doc, source, fileName, lineCounter);
  checkUniqueKeys(doc, fileName, lineCounter, isJson);
  const values = new Values(doc, at);
  const root = values.deref(doc.contents);
  if (!isMap(root)) throw new FlowError(at(root), "a flow must be a mapping with flow_id and steps");
  return { root, values };
}

function parseYaml(source: string, fileName: string, lineCounter: LineCounter): Document.Parsed {
  try {
    // Unique keys are checked apart, in linear time: the library's own check compares every pair of
    // keys of a mapping (100k keys took minutes).
    return parseDocument(source, { lineCounter, prettyErrors: false, uniqueKeys: false, strict: true });
  } catch (error) {
    // The YAML library composes nested collections recursively.
    if (!(error instanceof RangeError)) throw error;
    throw tooDeep(fileName);
  }
}

/** A parsed text with its syntax and repeated keys checked (a part of a file, or a whole one). */
function parseChecked(source: string, fileName: string, isJson: boolean) {
  const lineCounter = newLineCounter();
  const doc = parseYaml(source, fileName, lineCounter);
  checkDocument(doc, fileName, lineCounter, isJson);
  checkUniqueKeys(doc, fileName, lineCounter, isJson);
  return { doc, lineCounter };
}

/**
 * Where a node is in the file: `lineCounter` counts the file's lines, and `toFile` takes an offset in
 * the text parsed to the file's (the text is a part of the file when read in parts).
 */
function placeAt(fileName: string, lineCounter: LineCounter, toFile: (offset: number) => number = (at) => at): At {
  return (node, stepId) => {
    const offset = node?.range?.[0];
    if (offset === undefined) return { file: fileName, stepId };
    const { line, col } = lineCounter.linePos(toFile(offset));
    return { file: fileName, line, column: col, stepId };
  };
}

/** The lines of `text` as the parser counts them: one begins after each line feed. */
function lineCounterOf(text: string): LineCounter {
  const counter = newLineCounter();
  counter.addNewLine(0);
  for (let at = text.indexOf("\n"); at >= 0; at = text.indexOf("\n", at + 1)) counter.addNewLine(at + 1);
  return counter;
}

/**
 * Refuses a mapping that repeats a key, at the repeated key, as the library's own check would (keys are
 * the same when they are scalars of equal value). Aliases are not followed: their targets are checked
 * where they are written.
 */
function checkUniqueKeys(doc: Document.Parsed, file: string, lineCounter: LineCounter, isJson: boolean): void {
  const pending: unknown[] = [doc.contents];
  for (let node = pending.pop(); node !== undefined; node = pending.pop()) {
    if (isSeq(node)) { for (const item of node.items) pending.push(item); }
    if (!isMap(node)) continue;
    const seen = new Set<string>();
    for (const pair of node.items) {
      pending.push(pair.key, pair.value);
      const key = pair.key;
      if (!isScalar(key)) continue;
      const identity = `${typeof key.value}:${String(key.value)}`;
      if (!seen.has(identity)) {
        seen.add(identity);
        continue;
      }
      const { line, col } = lineCounter.linePos(key.range?.[0] ?? 0);
      throw new FlowError({ file, line, column: col }, `invalid ${isJson ? "JSON" : "YAML"}: Map keys must be unique`);
    }
  }
}

function tooDeep(file: string): FlowError {
  return new FlowError({ file }, `collections nested too deeply to read (limit ${LIMITS.valueNesting})`);
}

/** Syntax errors, a second document, and tags YAML does not know, each at its position. */
function checkDocument(doc: Document.Parsed, file: string, lineCounter: LineCounter, isJson: boolean): void {
  const firstError = doc.errors[0];
  // The library's parser also recurses, and records a stack overflow as a syntax error at whatever
  // offset it reached (which varies from run to run): the same refusal as when composing overflows.
  if (firstError?.message.includes("Maximum call stack size exceeded")) throw tooDeep(file);
  if (firstError) {
    const { line, col } = lineCounter.linePos(firstError.pos[0]);
    if (firstError.code === "MULTIPLE_DOCS") {
      throw new FlowError(
        { file, line, column: col },
        `a flow file holds one YAML document, but a second one starts at line ${line}`,
      );
    }
    const reason = firstError.message.split("\n")[0].replace(/ at line \d+, column \d+:?$/, "");
    throw new FlowError({ file, line, column: col }, `invalid ${isJson ? "JSON" : "YAML"}: ${reason}`);
  }
  const unknownTag = doc.warnings.find((warning) => warning.code === "TAG_RESOLVE_FAILED");
  if (unknownTag) {
    const { line, col } = lineCounter.linePos(unknownTag.pos[0]);
    const tag = /Unresolved tag: (\S+)/.exec(unknownTag.message)?.[1]?.replace(/^tag:yaml\.org,2002:/, "!!") ?? "?";
    throw new FlowError(
      { file, line, column: col },
      `unknown YAML tag ${tag}; quote the value if the text is meant (only "when" may start with an unquoted "!")`,
    );
  }
}

/**
 * Refuses a `%YAML` directive for any version but 1.2: the library reads `%YAML 1.1` with the YAML 1.1
 * schema (yes/no/on/off booleans, 0777 octal, 1:20 base 60), which would undo the strict scalars.
 * Directives precede the first `---`; the last `%YAML` there is the one the library went by.
 */
function checkYamlVersion(doc: Document.Parsed, source: string, file: string, lineCounter: LineCounter): void {
  const unsupported = doc.warnings.some((warning) => /^Unsupported YAML version/.test(warning.message));
  if (!doc.directives?.yaml.explicit || (doc.directives.yaml.version === "1.2" && !unsupported)) return;
  let offset = 0;
  for (const match of source.matchAll(/^(?:%YAML[ \t]|---)/gm)) {
    if (match[0] === "---") break;
    offset = match.index;
  }
  const written = /^%YAML[ \t]+(\S*)/.exec(source.slice(offset, offset + 200))?.[1] ?? "";
  const { line, col } = lineCounter.linePos(offset);
  throw new FlowError(
    { file, line, column: col },
    `%YAML ${clipped(written)} is not supported: flow files are read as YAML 1.2 (yes/no/on/off are text, ` +
      "0777 and 1:20 are not octal or base-60 numbers); remove the directive or write %YAML 1.2",
  );
}

function readFlowId(node: Node | undefined, root: YAMLMap, values: Values): string {
  if (node === undefined) throw new FlowError(values.at(root), 'missing required field "flow_id"');
  const flowId = textAsWritten(node, values.plain(node), values, "flow_id");
  if (typeof flowId !== "string" || flowId.trim() === "") {
    throw new FlowError(values.at(node), "flow_id must be a non-empty string");
  }
  if ([...flowId].length > LIMITS.flowIdChars || INVISIBLE_OR_CONTROL.test(flowId)) {
    throw new FlowError(
      values.at(node),
      `invalid flow_id ${shown(flowId)}: use 1-${LIMITS.flowIdChars} characters ` +
        "without control or invisible characters",
    );
  }
  return flowId;
}

/** Where each step's id, `when` and `depends_on` are, so graph problems can point at them. */
type StepPlaces = Map<string, ReadStep["places"]>;

/** The steps, in order, refusing a duplicate id. */
interface StepsRead {
  steps: StepDefinition[];
  places: StepPlaces;
}

function readSteps(
  stepsNode: Node | undefined,
  root: YAMLMap,
  values: Values,
  defaults: StepDefaults,
): StepsRead {
  const at = values.at;
  if (stepsNode === undefined) throw new FlowError(at(root), 'missing required field "steps"');
  if (!isSeq(stepsNode) || stepsNode.items.length === 0) {
    throw new FlowError(at(stepsNode), "steps must be a non-empty list");
  }
  if (stepsNode.items.length > LIMITS.steps) {
    throw new FlowError(at(stepsNode), `${stepsNode.items.length} steps, over the limit of ${LIMITS.steps}`);
  }
  return collectSteps(
    (stepsNode.items as Node[]).map((item) => () => ({ item: values.deref(item), values })),
    defaults,
  );
}

/** Each step read in turn (`items` give each one's node when called), refusing a repeated id. */
function collectSteps(items: (() => { item: Node | undefined; values: Values })[], defaults: StepDefaults): StepsRead {
  const steps: StepDefinition[] = [];
  const places: StepPlaces = new Map();
  for (const next of items) {
    const { item, values } = next();
    const step = readStep(item, values, defaults);
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
    const position = /position (\d+)/.exec(message)?.[1];
    const offset = position !== undefined ? Number(position) : unexpectedTokenOffset(message, text) ?? yamlErrorAt;
    const place: Place = { file: fileName };
    if (offset !== undefined) {
      const { line, col } = lineCounter.linePos(offset);
      Object.assign(place, { line, column: col });
    }
    throw new FlowError(place, `invalid JSON: ${message.replace(/ \(line \d+ column \d+\)$/, "")}`);
  }
}

/** How much text V8 quotes on either side of an unexpected token. */
const JSON_CONTEXT_CHARACTERS = 10;

/**
 * Where JSON.parse's error lies when its message gives no "position N": at the end of the text, or
 * at an unexpected token, which V8 names with the text from 10 characters before its position to 10
 * after, "..." marking a side cut short (`Unexpected token '}', ..."rict": tru}]}" is not valid JSON`).
 * The quoted text is found in the file to place it; undefined when that cannot be done for sure (a
 * short file quoted whole, or a quote found more than once).
 */
function unexpectedTokenOffset(message: string, text: string): number | undefined {
  if (message.startsWith("Unexpected end of JSON input")) return text.length;
  const match = /^Unexpected token '(.+?)', (\.\.\.)?"(.*)"(\.\.\.)? is not valid JSON$/s.exec(message);
  if (match === null) return undefined;
  const [, token, cutBefore, context, cutAfter] = match;
  if (!cutBefore && !cutAfter) return undefined;
  let start = 0;
  if (cutBefore && !cutAfter) start = text.length - context.length;
  if (cutBefore && cutAfter) {
    start = text.indexOf(context);
    if (text.indexOf(context, start + 1) >= 0) return undefined;
  }
  if (start < 0 || text.slice(start, start + context.length) !== context) return undefined;
  const position = cutAfter ? start + context.length - JSON_CONTEXT_CHARACTERS : start + JSON_CONTEXT_CHARACTERS;
  // V8's position is at the token it names or a character beside it (the end of a broken `tru`).
  return [position, position + 1, position - 1].find((offset) => text[offset] === token) ?? position;
}

interface ReadStep {
  definition: StepDefinition;
  places: { id: Place; when?: Place; dependsOn?: Place };
}

function readStep(item: Node | undefined, values: Values, defaults: StepDefaults): ReadStep {
  const at = values.at;
  if (!isMap(item)) throw new FlowError(at(item), "each step must be a mapping with id and command");
  const { id, node: idNode } = readStepId(item, values);
  const byName = presentFields(values.fields(item, STEP_FIELDS, id), STEP_FIELD_TABLE, values, item, id);
  const fields: StepFields = {
    get: (name) => byName.get(name),
    value: (node) => values.plain(node),
    fail: (node, reason) => {
      throw new FlowError(at(node ?? item, id), reason);
    },
  };
  const commandNode = fields.get("command");
  if (commandNode === undefined) fields.fail(item, 'missing required field "command"');
  const command = readCommand(commandNode!, fields);
  const when = readWhen(fields, values);
  const dependsOn = readDependsOn(fields, values);
  checkTemplates(fields, defaults.params);
  const condition = when ?? allSucceeded(dependsOn);
  const ownEnv = readField(fields, STEP_FIELD_TABLE, "env") as Record<string, string> | undefined;
  const definition: StepDefinition = {
    id,
    command,
    condition,
    dependsOn,
    waitsFor: effectiveWaits(dependsOn, condition),
    ...readStepSettings(fields, defaults, ownEnv),
  };
  const cwdNode = fields.get("cwd");
  const envNode = fields.get("env");
  recordFieldPlaces(definition, {
    command: at(commandNode),
    cwd: cwdNode ? at(cwdNode) : defaults.places.cwd,
    ...(envNode && ownEnv ? { env: at(envNode), envNames: Object.keys(ownEnv) } : {}),
    flowEnv: defaults.places.env,
  });
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

/** A step's fields by name, their values, and how to refuse one (naming the file, place and step). */
interface StepFields {
  get(name: string): Node | undefined;
  value(node: Node): unknown;
  fail(node: Node | undefined, reason: string): never;
}

/**
 * A name's value as the text written: a number that reads back as written (`id: 12`, `flow_id: 2024`)
 * is that text; any other scalar that YAML reads as no string (`007`, `0x1F`, `1e3`, `true`) is refused
 * with a hint to quote it. Other values are returned as they are, for the caller to refuse.
 */
function textAsWritten(node: Node | undefined, value: unknown, values: Values, what: string): unknown {
  const written = isScalar(node) && typeof node.source === "string" ? node.source : undefined;
  if (typeof value === "number" && written === String(value)) return written;
  if (typeof value !== "string" && value !== null && written !== undefined) {
    const key = what === "step id" ? "id" : what;
    throw new FlowError(
      values.at(node),
      `${what} ${clipped(written)} is read by YAML as the ${typeof value} ${
        shown(value)
      }; write it in quotes: ${key}: "${clipped(written)}"`,
    );
  }
  return value;
}

/** The step's id: the text written, so `id: 007` (the number 7 to YAML) is refused with a hint. */
function readStepId(item: YAMLMap, values: Values): { id: string; node: Node | undefined } {
  const pair = item.items.find((pair) => {
    const key = values.deref(pair.key);
    return isScalar(key) && key.value === "id";
  });
  if (pair === undefined) throw new FlowError(values.at(item), 'step is missing required field "id"');
  const node = values.deref(pair.value);
  let id = values.plain(pair.value);
  if (id === null) throw new FlowError(values.at(node ?? item), 'required field "id" of a step is null');
  id = textAsWritten(node, id, values, "step id");
  if (typeof id !== "string" || !STEP_ID_PATTERN.test(id) || id.length > LIMITS.stepIdChars) {
    throw new FlowError(
      values.at(node),
      `invalid step id ${shown(id)}: use 1-${LIMITS.stepIdChars} ASCII letters, digits, "_", "-" or "." ` +
        'starting with a letter, digit or "_"',
    );
  }
  return { id, node };
}

function readWhen(fields: StepFields, values: Values): WhenExpr | null {
  const node = fields.get("when");
  if (node === undefined) return null;
  const text = whenText(values.deref(node)!, fields);
  if (typeof text !== "string" || text.trim() === "") fields.fail(node, "when must be a non-empty string expression");
  if ((text as string).length > LIMITS.whenChars) {
    fields.fail(
      node,
      `when expression of ${(text as string).length} characters, over the limit of ${LIMITS.whenChars}`,
    );
  }
  try {
    return parseWhen(text as string);
  } catch (error) {
    if (!(error instanceof WhenSyntaxError)) throw error;
    return fields.fail(node, `invalid when expression ${shown(text)}: ${error.message}`);
  }
}

/**
 * The text of a `when` value as written. yaml_bang.ts has quoted every plain value that YAML would
 * misread, so a tag still on the node was written around a quoted, block or flow value, or under a
 * key YAML spells differently (`"wh\x65n"`): refused rather than guessed. A plain scalar YAML reads
 * as a number or boolean (`when: 12`) names the step written; a null never gets here (presentFields).
 */
function whenText(node: Node, fields: StepFields): unknown {
  if (isScalar(node) && node.tag !== undefined) {
    const tag = node.tag.replace(/^tag:yaml\.org,2002:/, "!!");
    fields.fail(
      node,
      `when carries the YAML tag ${tag}; write the expression in quotes without a tag, e.g. when: "!a && b"`,
    );
  }
  const value = fields.value(node);
  if (isScalar(node) && node.type === "PLAIN" && typeof value !== "string" && typeof node.source === "string") {
    return node.source;
  }
  return value;
}

/** The ids in `depends_on`; like step ids, `[12]` names the step "12" as written. */
function readDependsOn(fields: StepFields, values: Values): string[] {
  const node = fields.get("depends_on");
  if (node === undefined) return [];
  // fields.value counts aliases against the expansion limit before the items are looked at.
  let value = fields.value(node);
  const list = values.deref(node);
  if (Array.isArray(value) && isSeq(list)) {
    const blank = value.indexOf(null);
    // A null entry names no step: it is not read as a step called "null" (write "null" in quotes for that).
    if (blank >= 0) fields.fail(node, `depends_on[${blank}] is null, not a step id`);
    value = value.map((item, i) => {
      const written = values.deref(list.items[i]);
      return typeof item === "string" || !isScalar(written) || written.type !== "PLAIN" ? item : written.source;
    });
  }
  if (!Array.isArray(value) || value.some((v) => typeof v !== "string" || v === "")) {
    fields.fail(node, "depends_on must be a list of step ids");
  }
  return [...new Set(value as string[])];
}

/** The flow-level fields besides flow_id and steps: parameters, max_parallel, and what steps inherit. */
function readFlowSettings(fields: Map<string, Node>, values: Values) {
  const flowFields: StepFields = {
    get: (name) => fields.get(name),
    value: (node) => values.plain(node),
    fail: (node, reason) => {
      throw new FlowError(values.at(node), reason);
    },
  };
  const value = (name: string) => readField(flowFields, FLOW_FIELD_TABLE, name);
  const declared = value("params") as Record<string, string | null> | undefined;
  const params: ParamSpec[] = Object.entries(declared ?? {}).map(([name, value]) => ({ name, default: value }));
  const place = (name: string) => {
    const node = fields.get(name);
    return node === undefined ? undefined : values.at(node);
  };
  const defaults: StepDefaults = {
    env: (value("env") as Record<string, string> | undefined) ?? {},
    cwd: (value("cwd") as string | undefined) ?? null,
    params: new Set(params.map((param) => param.name)),
    places: { env: place("env"), cwd: place("cwd") },
  };
  checkTemplates(flowFields, defaults.params);
  return { params, maxParallel: (value("max_parallel") as number | undefined) ?? null, defaults };
}

/** What steps inherit from the flow level, and the declared parameter names. */
interface StepDefaults {
  env: Record<string, string>;
  cwd: string | null;
  params: ReadonlySet<string>;
  /** Where the flow's env and cwd are written, for errors in a step that inherits them. */
  places: { env?: Place; cwd?: Place };
}

/** A field's plain value checked against its entry in the field table; undefined when absent. */
function readField(fields: StepFields, table: typeof FLOW_FIELD_TABLE, name: string): unknown {
  const node = fields.get(name);
  if (node === undefined) return undefined;
  const value = fields.value(node);
  const reason = checkFieldValue(fieldSpec(table, name), value);
  if (reason !== null) fields.fail(node, reason);
  return value;
}

/** Every `${params.NAME}` in the command, env values and cwd names a declared parameter. */
function checkTemplates(fields: StepFields, declared: ReadonlySet<string>): void {
  for (const name of ["command", "env", "cwd"]) {
    const node = fields.get(name);
    if (node === undefined) continue;
    const value = fields.value(node);
    const texts = typeof value === "string"
      ? [value]
      : Array.isArray(value)
      ? value
      : value && typeof value === "object"
      ? Object.values(value)
      : [];
    for (const text of texts) {
      if (typeof text !== "string") continue;
      let names: string[] = [];
      try {
        names = paramReferences(text);
      } catch (error) {
        fields.fail(node, `${name}: ${(error as Error).message}`);
      }
      const unknown = names.find((n) => !declared.has(n));
      if (unknown !== undefined) {
        fields.fail(node, `${name} refers to undeclared parameter "${unknown}" (declare it under params)`);
      }
    }
  }
}

type StepSettings = Omit<StepDefinition, "id" | "command" | "condition" | "dependsOn" | "waitsFor">;

/**
 * The fields the table alone checks, with their defaults (and the flow's env and cwd) filled in.
 * `ownEnv` is the step's own env, read by the caller.
 */
function readStepSettings(fields: StepFields, defaults: StepDefaults, ownEnv?: Record<string, string>): StepSettings {
  const value = (name: string) => readField(fields, STEP_FIELD_TABLE, name);
  const exitCodes = value("retry_on_exit_codes") as number[] | undefined;
  return {
    env: { ...defaults.env, ...ownEnv },
    cwd: (value("cwd") as string | undefined) ?? defaults.cwd,
    retries: (value("retries") as number | undefined) ?? 0,
    retryDelaySec: (value("retry_delay_sec") as number | undefined) ?? 0,
    retryBackoff: (value("retry_backoff") as RetryBackoff | undefined) ?? "fixed",
    retryMaxDelaySec: (value("retry_max_delay_sec") as number | undefined) ?? null,
    retryJitter: (value("retry_jitter") as number | undefined) ?? 0,
    retryOnExitCodes: exitCodes === undefined ? null : [...new Set(exitCodes)],
    timeoutSec: (value("timeout_sec") as number | undefined) ?? null,
    strict: (value("strict") as boolean | undefined) ?? true,
    startTimeoutSec: (value("start_timeout_sec") as number | undefined) ?? null,
  };
}

function readCommand(node: Node, fields: StepFields): string[] {
  const value = fields.value(node);
  if (typeof value === "string") {
    if (value.trim() === "") fields.fail(node, "command must not be empty");
    checkArguments([STRING_COMMAND_SHELL, "-c", value], node, fields);
    return [STRING_COMMAND_SHELL, "-c", value];
  }
  if (!Array.isArray(value) || value.length === 0) {
    fields.fail(node, "command must be a non-empty list of strings, or a string run by /bin/sh -c");
  }
  const args = value as unknown[];
  const bad = args.findIndex((arg) => typeof arg !== "string");
  if (bad >= 0) fields.fail(node, `command[${bad}] must be a string, got ${shown(args[bad])}`);
  if (args[0] === "") fields.fail(node, "command[0] (the program) must not be empty");
  if ((args[0] as string).trim() === "") fields.fail(node, "command[0] (the program) must not be only whitespace");
  checkArguments(args as string[], node, fields);
  return args as string[];
}

/** What exec(2) would refuse: NUL inside an argument, an argument or a command line over the limits. */
function checkArguments(args: string[], node: Node, fields: StepFields): void {
  const encoder = new TextEncoder();
  let total = 0;
  args.forEach((arg, i) => {
    if (arg.includes("\0")) fields.fail(node, `command[${i}] contains a NUL character`);
    const size = encoder.encode(arg).length;
    if (size > LIMITS.argumentBytes) {
      fields.fail(node, `command argument of ${size} bytes, over the limit of ${LIMITS.argumentBytes}`);
    }
    total += size + 1;
  });
  if (total > LIMITS.commandBytes) {
    fields.fail(node, `command of ${total} bytes, over the limit of ${LIMITS.commandBytes}`);
  }
}

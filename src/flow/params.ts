/**
 * Run parameters: `${params.NAME}` in a step's command, env and cwd, and binding a loaded flow to the
 * values one run was started with. Only that form is replaced; nothing is evaluated (no shell, no
 * other variables). Pure.
 */
import { byteLength, shown, STRING_COMMAND_SHELL, VARIABLE_NAME_PATTERN } from "./fields.ts";
import { LIMITS } from "./limits.ts";
import { FlowError } from "./errors.ts";
import { fieldPlace } from "./places.ts";
import type { FlowDefinition, StepDefinition } from "../domain/mod.ts";

/** Parameters given to a run that the flow cannot take (unknown, missing, malformed): a usage error. */
export class ParamError extends Error {
  override name = "ParamError";
}

const REFERENCE_START = "${params.";
const REFERENCE = /\$\{params\.([^}]*)\}/g;

/** The parameter names `text` refers to; throws the reason when a reference is malformed. */
export function paramReferences(text: string): string[] {
  const names: string[] = [];
  let from = 0;
  for (;;) {
    const start = text.indexOf(REFERENCE_START, from);
    if (start < 0) return names;
    const end = text.indexOf("}", start);
    const name = end < 0 ? "" : text.slice(start + REFERENCE_START.length, end);
    if (end < 0 || !VARIABLE_NAME_PATTERN.test(name)) {
      const reference = end < 0 ? text.slice(start) : text.slice(start, end + 1);
      throw new Error(`invalid parameter reference ${shown(reference)}: write \${params.NAME}`);
    }
    names.push(name);
    from = end + 1;
  }
}

/** `text` with every `${params.NAME}` replaced by its value (names were checked when loading). */
export function substituteParams(text: string, values: Readonly<Record<string, string>>): string {
  return text.replace(REFERENCE, (whole, name: string) => Object.hasOwn(values, name) ? values[name] : whole);
}

/** Parses `NAME=VALUE` (as given to `--param`). */
export function parseParamArgument(argument: string): [string, string] {
  const eq = argument.indexOf("=");
  const name = eq < 0 ? argument : argument.slice(0, eq);
  if (eq < 0 || !VARIABLE_NAME_PATTERN.test(name)) {
    throw new ParamError(`--param needs NAME=VALUE, got ${shown(argument)}`);
  }
  const value = argument.slice(eq + 1);
  // A value ends up in a command argument or an environment variable: bounded as they are.
  const bytes = byteLength(value);
  if (bytes > LIMITS.argumentBytes) {
    throw new ParamError(`--param ${name}: value of ${bytes} bytes, over the limit of ${LIMITS.argumentBytes}`);
  }
  return [name, value];
}

/**
 * The run's values: the given ones over the declared defaults. An unknown name or a required
 * parameter without a value is a usage error (exit 2).
 */
export function resolveParamValues(
  flow: FlowDefinition,
  given: Readonly<Record<string, string>>,
): Record<string, string> {
  const declared = new Map(flow.params.map((param) => [param.name, param]));
  const unknown = Object.keys(given).filter((name) => !declared.has(name));
  if (unknown.length > 0) {
    const known = flow.params.length ? flow.params.map((p) => p.name).join(", ") : "none";
    throw new ParamError(`unknown parameter ${unknown.map((n) => shown(n)).join(", ")} (declared: ${known})`);
  }
  // Own properties only: a parameter named "constructor" is a name like any other, never Object's;
  // fromEntries defines "__proto__" as a property of its own too.
  const entries: [string, string][] = [];
  const missing: string[] = [];
  for (const param of flow.params) {
    const value = Object.hasOwn(given, param.name) ? given[param.name] : param.default;
    if (value === null) missing.push(param.name);
    else entries.push([param.name, value]);
  }
  const values: Record<string, string> = Object.fromEntries(entries);
  if (missing.length > 0) {
    throw new ParamError(
      `missing required parameter ${missing.map((n) => shown(n)).join(", ")}: give --param ${missing[0]}=VALUE`,
    );
  }
  return values;
}

/**
 * The flow as one run executes it: parameters substituted into commands, env and cwd, and a relative
 * cwd made absolute against `flowDir` (the flow file's directory, absolute). The definition hash is
 * taken over this form, so it covers the values.
 *
 * `unknown` names parameters whose values are not known yet (`validate` without their `--param`);
 * `given` holds "" for them. For the size limits "" is right, the smallest a value can be, so what is
 * refused would be refused whatever the value. A field that refers to one is never refused as empty,
 * though: the value the run gets may fill it.
 */
export function bindFlow(
  flow: FlowDefinition,
  given: Readonly<Record<string, string>>,
  flowDir: string,
  unknown: ReadonlySet<string> = new Set(),
): FlowDefinition {
  const values = resolveParamValues(flow, given);
  const mayBeFilled = (text: string) => unknown.size > 0 && paramReferences(text).some((name) => unknown.has(name));
  // Without parameters only a cwd can change (made absolute): a step without one is kept as it is, not
  // copied (10k copies of steps, commands and envs were ~5 MiB of a foreground start's driver).
  const substituted = flow.params.length > 0;
  const bindStep = (step: StepDefinition): StepDefinition => {
    const cwd = step.cwd === null ? null : substituteParams(step.cwd, values);
    const absoluteCwd = cwd === null ? null : absolutePath(flowDir, cwd);
    const bound = !substituted && absoluteCwd === step.cwd ? step : {
      ...step,
      command: substituted ? step.command.map((arg) => substituteParams(arg, values)) : step.command,
      env: substituted
        ? Object.fromEntries(Object.entries(step.env).map(([k, v]) => [k, substituteParams(v, values)]))
        : step.env,
      cwd: absoluteCwd,
    };
    checkBoundStep(bound, step, { cwd, substituted, mayBeFilled });
    return bound;
  };
  return { ...flow, steps: flow.steps.map(bindStep), paramValues: values };
}

/** `path` made absolute against `dir` (absolute), with `.`, `..` and repeated slashes resolved. */
export function absolutePath(dir: string, path: string): string {
  const parts: string[] = [];
  for (const part of (path.startsWith("/") ? path : `${dir}/${path}`).split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") parts.pop();
    else parts.push(part);
  }
  return `/${parts.join("/")}`;
}

/** How a step was bound: its cwd with the values in (before made absolute), and what the values may change. */
interface Binding {
  cwd: string | null;
  /** Whether the flow has parameters at all: without them only the cwd changed. */
  substituted: boolean;
  /** Whether a written text refers to a parameter whose value is not known (see {@link bindFlow}). */
  mayBeFilled: (text: string) => boolean;
}

/**
 * The limits the loader checks on what a file says, checked again on what a step runs once the
 * values are in: a value can empty the program, the shell command or the directory, or make an
 * argument too long. `written` is the step as the file has it.
 */
function checkBoundStep(step: StepDefinition, written: StepDefinition, binding: Binding): void {
  // `field` is where the file wrote what the values broke: the error names the file and position, as
  // every other error about the file does, when the loader noted them.
  const fail = (what: string, field: string) => {
    const place = fieldPlace(written, field);
    const reason = `with the parameters' values, ${what}`;
    if (place !== undefined) throw new FlowError(place, reason);
    throw new ParamError(`step ${JSON.stringify(step.id)}: ${reason}`);
  };
  const { cwd, mayBeFilled } = binding;
  // Without parameters the command and env are as the loader checked them; only the cwd was made absolute.
  if (binding.substituted) {
    const emptied = emptiedCommand(step.command, written.command, mayBeFilled);
    if (emptied !== null) fail(emptied, "command");
    let total = 0;
    step.command.forEach((arg, i) => {
      const size = byteLength(arg);
      if (size > LIMITS.argumentBytes) {
        fail(`command[${i}] is ${size} bytes, over the limit of ${LIMITS.argumentBytes}`, "command");
      }
      total += size + 1;
    });
    if (total > LIMITS.commandBytes) {
      fail(`the command is ${total} bytes, over the limit of ${LIMITS.commandBytes}`, "command");
    }
    for (const [name, value] of Object.entries(step.env)) {
      const size = byteLength(`${name}=${value}`);
      if (size > LIMITS.argumentBytes) {
        fail(`env.${name} is ${size} bytes, over the limit of ${LIMITS.argumentBytes}`, `env.${name}`);
      }
    }
  }
  if (cwd === "" && !mayBeFilled(written.cwd!)) fail("cwd is empty", "cwd");
  const cwdBytes = step.cwd === null ? 0 : byteLength(step.cwd);
  if (cwdBytes > LIMITS.pathBytes) fail(`cwd is ${cwdBytes} bytes, over the limit of ${LIMITS.pathBytes}`, "cwd");
}

/**
 * What a substituted value left with nothing to run, or null: a program that is empty or only
 * whitespace, or the script of `/bin/sh -c SCRIPT` (what a string command is) emptied by a value
 * (`command: "${params.A}"` with `--param A=` would run `sh -c ""`, which does nothing and succeeds).
 */
function emptiedCommand(
  command: readonly string[],
  written: readonly string[],
  mayBeFilled: (text: string) => boolean,
): string | null {
  if (command[0].trim() === "" && !mayBeFilled(written[0])) {
    return `command[0] (the program) is ${command[0] === "" ? "empty" : "only whitespace"}`;
  }
  const shell = command.length >= 3 && command[0] === STRING_COMMAND_SHELL && command[1] === "-c";
  if (shell && command[2] !== written[2] && command[2].trim() === "" && !mayBeFilled(written[2])) {
    return `the shell command (${STRING_COMMAND_SHELL} -c) is ${command[2] === "" ? "empty" : "only whitespace"}`;
  }
  return null;
}

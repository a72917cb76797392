/**
 * A small declarative argument parser: long options (`--name value`, `--name=value`), short flags,
 * positionals, and an optional remainder (everything after the first positional of a command, or
 * after `--`). Errors are {@link UserError}s with exit code 2. Pure.
 */
import { closestName } from "../flow/mod.ts";
import { UserError } from "./errors.ts";

export interface OptionSpec {
  name: string;
  short?: string;
  /** Absent for boolean flags. */
  value?: "string" | "number";
  metavar?: string;
  help: string;
  /** Allowed values for a string option. */
  choices?: readonly string[];
  /** A string option that may be repeated (and takes comma-separated lists); its value is a string[]. */
  multiple?: boolean;
  /** A string option that may be repeated, each value kept whole (commas and all), as a string[]. */
  repeatable?: boolean;
  /** A string option whose value may be empty (otherwise `--db ""`, an unset variable, is refused). */
  allowEmpty?: boolean;
}

export interface CommandSpec {
  name: string;
  summary: string;
  /** Usage line after the program name, e.g. `start --run-key KEY [-d] FLOW_FILE`. */
  usage: string;
  options: readonly OptionSpec[];
  /** Positional names; a trailing `?` marks one optional. */
  positionals?: readonly string[];
  /** When set, the first positional and everything after it is kept verbatim (orchesjob's `-- CMD…`). */
  remainder?: string;
  hidden?: boolean;
  /** Extra help text after the options. */
  notes?: string;
}

export type OptionValue = string | number | boolean | string[];

export interface ParsedArgs {
  options: Record<string, OptionValue | undefined>;
  positionals: string[];
  remainder: string[];
  help: boolean;
  /**
   * Each number option's value as the operator typed it: errors quote it, not the number it became
   * (`99999999999999999999` is 100000000000000000000 to JavaScript, `1e3` is 1000).
   */
  typed?: Record<string, string>;
}

/**
 * Parses `argv` against `spec`. `--help`/`-h` anywhere before a remainder sets `help`. `extra` options
 * are accepted as well but not shown in the command's help (global options given after the command).
 */
export function parseArgs(spec: CommandSpec, argv: readonly string[], extra: readonly OptionSpec[] = []): ParsedArgs {
  const parsed: ParsedArgs = { options: {}, positionals: [], remainder: [], help: false, typed: {} };
  const all = [...spec.options, ...extra];
  const byLong = new Map(all.map((o) => [o.name, o]));
  const byShort = new Map(all.filter((o) => o.short).map((o) => [o.short!, o]));
  const where = spec.name ? `${spec.name}: ` : "";
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--") {
      if (spec.remainder) parsed.remainder = argv.slice(i + 1);
      else parsed.positionals.push(...argv.slice(i + 1));
      break;
    }
    if (arg === "--help" || arg === "-h") {
      parsed.help = true;
      continue;
    }
    if (/^-[A-Za-z]{2,}$/.test(arg) && [...arg.slice(1)].every((c) => byShort.get(c) && !byShort.get(c)!.value)) {
      // Short flags written together: `-dq` is `-d -q`.
      for (const c of arg.slice(1)) parsed.options[byShort.get(c)!.name] = true;
      continue;
    }
    if (arg.startsWith("-") && arg !== "-") {
      const eq = arg.startsWith("--") ? arg.indexOf("=") : -1;
      const key = eq >= 0 ? arg.slice(2, eq) : arg.startsWith("--") ? arg.slice(2) : arg.slice(1);
      const option = arg.startsWith("--") ? byLong.get(key) : byShort.get(key);
      if (!option) throw unknownOption(spec, all, eq >= 0 ? arg.slice(0, eq) : arg);
      if (!option.value) {
        if (eq >= 0) throw new UserError(`${where}option --${option.name} takes no value`);
        parsed.options[option.name] = true;
        continue;
      }
      if (eq < 0 && i + 1 >= argv.length) throw new UserError(`${where}option --${option.name} needs a value`);
      if (eq < 0 && namesOption(argv[i + 1], byLong, byShort)) {
        // `--run-key --format table`: the value was left out, and taking the next option for it
        // blamed what follows ("unexpected argument table", "no step --follow").
        throw new UserError(
          `${where}option --${option.name} needs a value, got the option ${argv[i + 1]} ` +
            `(for a value written so: --${option.name}=${argv[i + 1]})`,
        );
      }
      // Global options keep "the last one wins", so a wrapper's defaults can be overridden.
      const once = spec.name !== "" && spec.options.includes(option);
      setValue(parsed, option, eq >= 0 ? arg.slice(eq + 1) : argv[++i], where, once);
      continue;
    }
    if (spec.remainder) {
      parsed.remainder = argv.slice(i);
      break;
    }
    parsed.positionals.push(arg);
  }
  if (!parsed.help) checkPositionals(spec, parsed.positionals, where);
  return parsed;
}

/** Whether `arg` is one of the options in the maps (or help): never a value, as written alone. */
function namesOption(
  arg: string,
  byLong: ReadonlyMap<string, OptionSpec>,
  byShort: ReadonlyMap<string, OptionSpec>,
): boolean {
  if (arg === "--help" || arg === "-h") return true;
  if (arg.startsWith("--")) return byLong.has(arg.slice(2).split("=")[0]);
  return /^-[A-Za-z]+$/.test(arg) && [...arg.slice(1)].every((c) => byShort.has(c));
}

function checkPositionals(spec: CommandSpec, positionals: readonly string[], where: string): void {
  const names = spec.positionals ?? [];
  const required = names.filter((n) => !n.endsWith("?")).length;
  if (positionals.length < required) {
    throw new UserError(`${where}missing ${names[positionals.length].replace(/\?$/, "")}`);
  }
  if (positionals.length > names.length) {
    throw new UserError(`${where}unexpected argument ${JSON.stringify(positionals[names.length])}`);
  }
  // `start --run-key k "$FLOW"` with FLOW unset: refused as an empty option value is, not looked up as a
  // file of no name ("cannot read flow file : no such file").
  const empty = positionals.indexOf("");
  if (empty >= 0) throw new UserError(`${where}${names[empty].replace(/\?$/, "")} needs a non-empty value, got ""`);
}

/** The error for an option nobody declared (`written` as typed, without any `=value`). */
function unknownOption(spec: CommandSpec, all: readonly OptionSpec[], written: string): UserError {
  const where = spec.name ? `${spec.name}: ` : "";
  // A short option is not a prefix of a long one: `-d` is not a misspelt `--db`.
  const near = written.startsWith("--") ? suggestName(written.slice(2), all.map((o) => o.name)) : undefined;
  // Before the command only global options are read: `-d start …` means `start -d …`.
  const hint = near ? `; did you mean --${near}?` : spec.name === "" ? " (a command's options go after it)" : "";
  return new UserError(`${where}unknown option ${written}${hint}`);
}

/** Stores a valued option's value; with `once`, different values of a single-valued option are refused. */
function setValue(parsed: ParsedArgs, option: OptionSpec, raw: string, where: string, once: boolean): void {
  const previous = parsed.options[option.name];
  const value = valueOf(option, raw, previous, where);
  if (once && !option.multiple && !option.repeatable && previous !== undefined && previous !== value) {
    // `--run-key a ... --run-key b`: which one was meant is not for us to guess.
    const before = JSON.stringify(parsed.typed?.[option.name] ?? previous);
    throw new UserError(`${where}option --${option.name} given twice (${before} and ${JSON.stringify(raw)})`);
  }
  parsed.options[option.name] = value;
  if (option.value === "number") (parsed.typed ??= {})[option.name] = raw;
}

/** A number option's value as typed, quoted, for an error (the number itself when none was typed). */
function typedValue(parsed: ParsedArgs, name: string): string {
  return JSON.stringify(parsed.typed?.[name] ?? String(parsed.options[name]));
}

/** An option's value from `raw`; a repeatable option adds to what it had (`previous`). */
function valueOf(option: OptionSpec, raw: string, previous: OptionValue | undefined, where: string): OptionValue {
  if (option.repeatable) return [...(previous as string[] | undefined ?? []), raw];
  if (!option.multiple) return convert(option, raw, where);
  const values = raw.split(",").map((v) => v.trim()).filter((v) => v !== "");
  // `--status ,` (or an empty value) names nothing: taken as no filter, it would select everything.
  if (values.length === 0) {
    throw new UserError(`${where}option --${option.name} needs a value, got ${JSON.stringify(raw)}`);
  }
  for (const value of values) convert(option, value, where);
  return [...(previous as string[] | undefined ?? []), ...values];
}

/**
 * The name the user most likely meant: the only candidate that `name` is a prefix of (`stat` →
 * `status`), else the nearest by edit distance when it is a plausible typo (`runkey` → `run-key`).
 */
export function suggestName(name: string, candidates: readonly string[]): string | undefined {
  if (name === "") return undefined;
  const lower = name.toLowerCase();
  const extending = candidates.filter((c) => c.toLowerCase().startsWith(lower));
  if (extending.length === 1) return extending[0];
  const near = closestName(lower, candidates.map((c) => c.toLowerCase()));
  return near === undefined ? undefined : candidates.find((c) => c.toLowerCase() === near);
}

/** A number as people write it: `5`, `-1`, `0.5`, `.5`, `2e3`. */
const DECIMAL = /^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

function convert(option: OptionSpec, raw: string, where: string): OptionValue {
  if (option.value === "number") {
    // Decimal notation only: Number() would also take "0x10", "0b1" and "Infinity".
    const value = DECIMAL.test(raw.trim()) ? Number(raw) : NaN;
    if (!Number.isFinite(value)) {
      throw new UserError(`${where}option --${option.name} needs a number, got ${JSON.stringify(raw)}`);
    }
    return value;
  }
  if (raw === "" && !option.allowEmpty) {
    throw new UserError(`${where}option --${option.name} needs a non-empty value`);
  }
  if (option.choices && !option.choices.includes(raw)) {
    const near = suggestName(raw, option.choices);
    throw new UserError(
      `${where}option --${option.name} must be one of ${option.choices.join(", ")}, got ${JSON.stringify(raw)}` +
        (near ? `; did you mean ${near}?` : ""),
    );
  }
  return raw;
}

/** Help text for one command. */
export function formatHelp(program: string, spec: CommandSpec): string {
  const lines = [`Usage: ${program} ${spec.usage}`, "", spec.summary];
  if (spec.options.length > 0) {
    lines.push("", "Options:");
    const rows = spec.options.map((o) => {
      const flag = `${o.short ? `-${o.short}, ` : "    "}--${o.name}${
        o.value ? ` ${o.metavar ?? o.name.toUpperCase()}` : ""
      }`;
      return [flag, o.help] as const;
    });
    rows.push(["-h, --help", "Show this help."]);
    const width = Math.max(...rows.map(([flag]) => flag.length));
    for (const [flag, help] of rows) lines.push(`  ${flag.padEnd(width)}  ${help}`);
  }
  if (spec.notes) lines.push("", spec.notes.trimEnd());
  return lines.join("\n") + "\n";
}

/**
 * The shortest time, in seconds, that an option of seconds takes other than 0: a loop that sleeps
 * less spins the CPU (`--poll-interval 1e-320` is > 0), and JavaScript writes numbers under 1e-6 in
 * exponent notation (`1e-7`), which would reach orchesjob as such.
 */
export const SHORTEST_SECONDS = 0.01;

/**
 * The longest interval, poll or grace an option takes, in seconds (a day): a loop that sleeps longer
 * would not notice a cancel for days.
 */
export const A_DAY_SEC = 86_400;

/**
 * A number option of seconds: from {@link SHORTEST_SECONDS} (or 0, when `zero` allows it) to `max`,
 * each bound named in the error (`unit` says what `max` is, e.g. "a day").
 */
export function secondsOption(
  parsed: ParsedArgs,
  name: string,
  fallback: number,
  range: { zero?: boolean; max?: number; unit?: string } = {},
): number {
  const value = parsed.options[name];
  if (value === undefined) return fallback;
  const n = value as number;
  if (n === 0 && range.zero) return 0;
  if (n < SHORTEST_SECONDS) {
    throw new UserError(
      `option --${name} must be ${range.zero ? "0 or " : ""}at least ${SHORTEST_SECONDS}, got ${
        typedValue(parsed, name)
      }`,
    );
  }
  if (range.max !== undefined && n > range.max) {
    throw new UserError(
      `option --${name} must be at most ${range.max}${range.unit ? ` (${range.unit})` : ""}, got ${
        typedValue(parsed, name)
      }`,
    );
  }
  return n;
}

/** A number option that must be a whole number >= `min` (and a safe integer: 2^53 and more lose their units). */
export function wholeNumberOption(parsed: ParsedArgs, name: string, fallback: number, min: number): number {
  const value = parsed.options[name];
  if (value === undefined) return fallback;
  const n = value as number;
  if (!Number.isSafeInteger(n)) {
    throw new UserError(`option --${name} must be a whole number, got ${typedValue(parsed, name)}`);
  }
  if (n < min) throw new UserError(`option --${name} must be >= ${min}, got ${typedValue(parsed, name)}`);
  return n;
}

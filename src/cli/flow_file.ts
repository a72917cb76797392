/** Reading a flow file from disk: the I/O half of loading (the pure half is src/flow/load.ts). */
import { ExitCode, UserError } from "./errors.ts";
import {
  bindFlow,
  checkFileSize,
  FlowError,
  LIMITS,
  loadFlowBytes,
  loadYamlLibrary,
  parseParamArgument,
} from "../flow/mod.ts";
import type { FlowDefinition } from "../domain/mod.ts";
import { collectLoadingGarbageEvery, dirname, isAbsolute, keepAll, resolve, within } from "../shared/mod.ts";
import { listenForInterrupt } from "./interrupt.ts";
import type { OptionSpec, ParsedArgs } from "./args.ts";

/** The name a flow read from standard input (`-`) goes by in messages. */
export const STDIN_NAME = "<stdin>";

/** Reads and loads a flow file (`-` reads standard input); the YAML library is imported here, on first need. */
export async function readFlowFile(path: string): Promise<FlowDefinition> {
  await loadYamlLibrary();
  // A large file is read a step at a time; its garbage is collected as it goes.
  const options = { afterStep: collectLoadingGarbageEvery };
  if (path === "-") return loadFlowBytes(await readStdin(), STDIN_NAME, options);
  let bytes: Uint8Array;
  try {
    // The size limit is checked before reading, so a huge file is refused without being loaded.
    const info = Deno.statSync(path);
    if (info.isFile) {
      checkFileSize(info.size, path);
      bytes = Deno.readFileSync(path);
    } else {
      // A device or a pipe (`/dev/zero`, `<(…)`) has no size: read it only up to the limit.
      using file = info.isFifo ? await openFifo(path) : Deno.openSync(path);
      bytes = await readUpToLimit(file, path);
    }
  } catch (error) {
    if (!(error instanceof Error) || error.name === "FlowError") throw error;
    const reason = error instanceof Deno.errors.NotFound
      ? "no such file"
      : error instanceof Deno.errors.IsADirectory
      ? "is a directory"
      : error.message;
    throw new UserError(`cannot read flow file ${path}: ${reason}`);
  }
  return loadFlowBytes(bytes, path, options);
}

/** How long opening a named pipe may wait for a process to open its other end. */
const FIFO_OPEN_WAIT_MS = 5_000;

/**
 * Opens a named pipe for reading. The open waits until a process opens it for writing: `<(…)` has
 * one already, a `mkfifo` that nothing writes to never would, so the wait is bounded (the open is left
 * behind in a worker thread; the process exits all the same).
 */
async function openFifo(path: string): Promise<Deno.FsFile> {
  const file = await within(Deno.open(path), FIFO_OPEN_WAIT_MS / 1000, null);
  if (file === null) {
    throw new Error(`a named pipe that no process opened for writing within ${FIFO_OPEN_WAIT_MS / 1000} s`);
  }
  return file;
}

/** `--param NAME=VALUE`, repeatable (start, validate). */
export const PARAM_OPTION: OptionSpec = {
  name: "param",
  value: "string",
  metavar: "NAME=VALUE",
  repeatable: true,
  help: "Set a run parameter declared under params (repeatable).",
};

/**
 * The `--param` values given on the command line. A name given twice with different values is refused,
 * as any option given twice with different values is (which one was meant is not for us to guess); the
 * same value twice is taken once.
 */
export function givenParams(args: ParsedArgs): Record<string, string> {
  const given = new Map<string, string>();
  for (const [name, value] of ((args.options.param as string[] | undefined) ?? []).map(parseParamArgument)) {
    const previous = given.get(name);
    if (previous !== undefined && previous !== value) {
      throw new UserError(
        `option --param ${name} given twice (${JSON.stringify(previous)} and ${JSON.stringify(value)})`,
      );
    }
    given.set(name, value);
  }
  // fromEntries: `--param __proto__=x` sets a parameter of that name, not the object's prototype.
  return Object.fromEntries(given);
}

/** The flow file's directory, absolute: a relative `cwd` in the file is relative to it. */
export function flowDirectory(path: string): string {
  return dirname(isAbsolute(path) ? resolve(path) : resolve(workingDirectory(), path));
}

/**
 * This process's working directory, where a new run's steps run (and what a relative path or a flow
 * read from stdin is relative to). One removed since the shell entered it has no path: said so (exit
 * 2) before anything is stored, where the NotFound of Deno.cwd() was an internal error (70) of `start`
 * and `validate`, after `start` had opened the state file.
 */
export function workingDirectory(): string {
  try {
    return Deno.cwd();
  } catch (error) {
    throw new UserError(
      `the current directory no longer exists (${error instanceof Error ? error.message : String(error)}): ` +
        "a new run's steps run in the directory it is started from; cd to one that exists and try again",
    );
  }
}

/**
 * The flow as a run executes it: parameters substituted, directories absolute. `unknown`: parameters
 * whose values are not known yet, given as "" (see bindFlow).
 */
export function bindFlowFile(
  flow: FlowDefinition,
  path: string,
  given: Record<string, string>,
  unknown?: ReadonlySet<string>,
): FlowDefinition {
  return bindFlow(flow, given, flowDirectory(path), unknown);
}

async function readStdin(): Promise<Uint8Array> {
  try {
    return await readUpToLimit(Deno.stdin, STDIN_NAME);
  } catch (error) {
    if (error instanceof FlowError || error instanceof UserError) throw error;
    throw new UserError(`cannot read the flow from stdin: ${error instanceof Error ? error.message : error}`);
  }
}

/**
 * Everything `reader` yields, refused with a FlowError once past the file size limit. A stream may
 * wait for its writer for ever, so the read is asynchronous and listens for SIGINT, SIGTERM, SIGHUP
 * and SIGQUIT: any of them ends it with one JSON line and exit 130 (nothing is stored before the flow is
 * read), where a blocking read used to be killed by the signal without a word.
 */
async function readUpToLimit(reader: { read(buffer: Uint8Array): Promise<number | null> }, name: string) {
  let interrupt = () => {};
  const interrupted = new Promise<never>((_, reject) => {
    interrupt = () =>
      reject(new UserError(`interrupted while reading ${name}; nothing was stored`, ExitCode.interrupted));
  });
  using _listening = listenForInterrupt(() => interrupt());
  return await Promise.race([readAll(reader, name), interrupted]);
}

async function readAll(reader: { read(buffer: Uint8Array): Promise<number | null> }, name: string) {
  // Past the size limit, reading stops: the rest of an endless stream is never buffered.
  const kept = keepAll(LIMITS.fileBytes);
  const buffer = new Uint8Array(65536);
  for (let n = await reader.read(buffer); n !== null; n = await reader.read(buffer)) {
    if (!kept.push(buffer.slice(0, n))) {
      throw new FlowError({ file: name }, `flow file is larger than the limit of ${LIMITS.fileBytes} bytes`);
    }
  }
  return kept.bytes();
}

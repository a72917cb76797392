/** The one place that writes to the terminal. Renderers elsewhere return strings. */
import { jsonPieces } from "./json_pieces.ts";

const encoder = new TextEncoder();

/** Why stdout could not be written (a full disk under `>> log`), once that happened; then it is not written again. */
let stdoutLost: string | null = null;
/** Stdout is a pipe nobody reads any more (`| head`). */
let stdoutClosed = false;

/**
 * Writes every byte, or gives up quietly: a closed pipe (`| head`) or a gone terminal means nobody
 * reads. Any other failure (a full disk, an I/O error) must not kill the process either: a driver
 * writing its table or a diagnostic onto a full disk goes on driving. Stderr is given up silently;
 * stdout's loss is remembered, and the CLI reports it once the command is done.
 */
function writeAll(file: typeof Deno.stdout | typeof Deno.stderr, text: string | Uint8Array): void {
  if (file === Deno.stdout && (stdoutLost !== null || stdoutClosed)) return;
  const bytes = typeof text === "string" ? encoder.encode(text) : text;
  let written = 0;
  while (written < bytes.length) {
    try {
      written += file.writeSync(bytes.subarray(written));
    } catch (error) {
      if (file === Deno.stdout && error instanceof Deno.errors.BrokenPipe) stdoutClosed = true;
      else if (file === Deno.stdout) stdoutLost = error instanceof Error ? error.message : String(error);
      return;
    }
  }
}

/** Why the output on stdout is incomplete, or null; `reset` starts a new command (the in-process test CLI). */
export function lostStdout(reset = false): string | null {
  const lost = stdoutLost;
  if (reset) [stdoutLost, stdoutClosed] = [null, false];
  return lost;
}

/**
 * Whether stdout is a pipe nobody reads any more (`| head`): a command that only shows a run may stop.
 * Not a write that failed otherwise (a full disk), which must not stop a driver (see writeAll).
 */
export function stdoutClosedPipe(): boolean {
  return stdoutClosed;
}

/** Whether stdout is gone (a closed pipe, a lost file): a command that follows output may stop. */
export function stdoutGone(): boolean {
  return stdoutClosed || stdoutLost !== null;
}

export function writeStdout(text: string): void {
  writeAll(Deno.stdout, text);
}

/** Raw bytes on stdout (a job's log, verbatim). */
export function writeBytes(bytes: Uint8Array): void {
  writeAll(Deno.stdout, bytes);
}

/** Raw bytes on stderr (a job's stderr, verbatim). */
export function writeStderrBytes(bytes: Uint8Array): void {
  writeAll(Deno.stderr, bytes);
}

export function writeStderr(text: string): void {
  writeAll(Deno.stderr, text);
}

/** Pretty JSON on stdout: the machine-readable answer of most commands. */
export function printJson(value: unknown): void {
  // Written in pieces of 32k characters (at most 96 KiB as UTF-8): a 10k-step run's text is megabytes (json_pieces.ts).
  let pending = "";
  for (const piece of jsonPieces(value)) {
    pending += piece;
    if (pending.length >= WRITE_CHARS) {
      writeStdout(pending);
      pending = "";
    }
  }
  writeStdout(pending + "\n");
}

/** How much JSON text printJson gathers before each write. */
const WRITE_CHARS = 32 * 1024;

/** The single-line JSON error every failure prints on stderr. */
export function printError(message: string, extra: Record<string, unknown> = {}): void {
  writeStderr(JSON.stringify({ error: readable(message), ...extra }) + "\n");
}

/** A single-line JSON notice on stderr for something that is not a failure of this command. */
export function printWarning(message: string, extra: Record<string, unknown> = {}): void {
  writeStderr(JSON.stringify({ warning: readable(message), ...extra }) + "\n");
}

/** Longest message printed whole; the head and tail a longer one keeps. */
const MESSAGE_CHARS = { most: 1000, head: 600, tail: 300 };

/**
 * A message that quotes a huge argument (a 100 kB option value, say) keeps its start, which says what
 * is wrong, and its end, which often says what to do; the middle is left out, with its length.
 */
export function readable(message: string): string {
  const { most, head, tail } = MESSAGE_CHARS;
  if (message.length <= most) return message;
  // Cut between characters, never inside a surrogate pair.
  const end = /[\uD800-\uDBFF]/.test(message[head - 1]) ? head - 1 : head;
  const start = /[\uDC00-\uDFFF]/.test(message[message.length - tail])
    ? message.length - tail + 1
    : message.length - tail;
  return `${message.slice(0, end)}… (${start - end} characters left out) …${message.slice(start)}`;
}

/**
 * Whether `file` is a terminal that acts on escape codes (cursor moves, clearing, colours): not a pipe
 * or a file, and not one that says `TERM=dumb` (Emacs' shell buffer, some CI consoles), which shows
 * them as text: `watch` there printed `^[[H^[[2J` and the whole table at every refresh.
 */
export function escapeCodesWork(file: typeof Deno.stdout | typeof Deno.stderr): boolean {
  return file.isTerminal() && Deno.env.get("TERM") !== "dumb";
}

/** True when stdout is a terminal that shows colours and colour is wanted (NO_COLOR unset or empty). */
export function useColor(): boolean {
  return escapeCodesWork(Deno.stdout) && !(Deno.env.get("NO_COLOR") ?? "");
}

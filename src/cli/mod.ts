/** The command-line interface: `runCli(argv)` returns the exit code; everything printed goes through it. */
export { PROGRAM, runCli } from "./app.ts";
export { VERSION } from "./version.ts";

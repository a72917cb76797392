/** The command-line interface: `runCli(argv)` returns the exit code; everything printed goes through it. */
export { PROGRAM, runCli, VERSION } from "./app.ts";

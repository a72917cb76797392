/** Small helpers every layer may use: time and date formats, waiting and backoff, starting programs. */
export {
  type Clock,
  END_OF_TIME,
  epochNow,
  isoLocal,
  localDateTime,
  localZoneLabel,
  LONGEST_DURATION_SEC,
  nowSeconds,
  parseIsoTime,
  parseTimeArgument,
  systemClock,
  type TimeProblem,
} from "./time.ts";
export { parsePythonIsoTime } from "./py_isoformat.ts";
export { MAX_TIMER_MS, sleep, sleepUnless, timerDelay, within } from "./sleep.ts";
export { type Backoff, nextPause } from "./backoff.ts";
export {
  CLOSE_INHERITED_FDS,
  type Finished,
  isShortage,
  keepAll,
  keepLast,
  type OutputSink,
  runToEnd,
  runToEndSync,
  spawnDetached,
  spawnDetachedChild,
  spawnDetachedWithInput,
  SpawnError,
} from "./process.ts";
export { forEachBounded } from "./bounded.ts";
export { concatBytes } from "./bytes.ts";
export {
  collectGarbageIfGrown,
  collectGarbageIfGrownEvery,
  collectLoadingGarbageEvery,
  releaseGarbage,
} from "./memory.ts";
export { isNoSpace, makeDirectory, pathExists } from "./files.ts";
export { basename, dirname, fileUrlToPath, isAbsolute, join, normalize, resolve } from "./posix_path.ts";
export {
  CRASH_AT_VARIABLE,
  CRASH_LOG_VARIABLE,
  type CrashPoint,
  crashPoint,
  STOP_AT_VARIABLE,
  type StopPoint,
  stopPoint,
} from "./crash_point.ts";
export { readEnv } from "./env.ts";
export { runQueueWaitMs } from "./run_queue.ts";

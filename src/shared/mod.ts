/** Small helpers every layer may use: time and date formats, waiting and backoff, starting programs. */
export { type Clock, epochNow, isoLocal, localDateTime, nowSeconds, systemClock } from "./time.ts";
export { sleep, sleepUnless } from "./sleep.ts";
export { type Backoff, nextPause } from "./backoff.ts";
export { type Finished, runToEnd, runToEndSync, spawnDetached, SpawnError } from "./process.ts";
export { CRASH_AT_VARIABLE, CRASH_LOG_VARIABLE, type CrashPoint, crashPoint } from "./crash_point.ts";

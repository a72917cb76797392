/**
 * Input limits of flow files and run keys (documented in README.md under "Input limits"). Each is
 * checked up front with a clean error naming it, so no input reaches a path whose cost or depth it
 * was not sized for. Pure data.
 */
export const LIMITS = {
  /** Bytes of a flow file. */
  fileBytes: 16 * 1024 * 1024,
  /** Steps in one flow. */
  steps: 100_000,
  /** Characters of a step id (the pattern is in when.ts). */
  stepIdChars: 128,
  /** Characters of flow_id. */
  flowIdChars: 256,
  /** Characters of one `when` expression. */
  whenChars: 1_000_000,
  /** Nesting of `!` and parentheses in a `when` expression (when.ts MAX_NESTING). */
  whenNesting: 64,
  /** Bytes of one command argument (Linux refuses longer single arguments to exec). */
  argumentBytes: 128 * 1024,
  /** Bytes of a whole command line (all arguments). */
  commandBytes: 1024 * 1024,
  /** Nesting of YAML collections inside one field's value. */
  valueNesting: 64,
  /**
   * Values (scalars and aliases, as written) in a flow file, counted before the YAML library reads
   * it: its document tree costs ~500 bytes a value, so 16 MiB of `[x,x,…]` would exhaust memory.
   */
  values: 2_000_000,
  /** YAML nodes that aliases (`*name`) may expand to, in the whole file: defeats alias bombs. */
  aliasExpansion: 1_000_000,
  /** `retries` of a step. */
  retries: 10_000,
  /** Seconds of `retry_delay_sec`, `timeout_sec` and `start_timeout_sec` (one year). */
  seconds: 366 * 24 * 3600,
  /** Entries of an `env` or `params` mapping. */
  mapEntries: 10_000,
  /** Characters of an environment variable or parameter name. */
  variableNameChars: 256,
  /** Bytes of a `cwd` (PATH_MAX). */
  pathBytes: 4096,
  /** Codes in `retry_on_exit_codes`. */
  exitCodes: 512,
  /** Characters (code points) of a run key. */
  runKeyChars: 256,
} as const;

/**
 * Characters refused in flow ids (run keys refuse these and more: run_key.ts): controls (C0, DEL, C1 such as NEL), format
 * characters (bidi overrides and isolates, zero-width spaces and joiners, the BOM), line and
 * paragraph separators, lone surrogates, and U+FFFD (what invalid UTF-8 decodes to). The class's
 * text is shared with the schema's `flow_id` pattern.
 */
export const INVISIBLE_OR_CONTROL_CLASS = "\\p{Cc}\\p{Cf}\\p{Zl}\\p{Zp}\\p{Cs}\\uFFFD";
export const INVISIBLE_OR_CONTROL = new RegExp(`[${INVISIBLE_OR_CONTROL_CLASS}]`, "u");

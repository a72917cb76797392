/**
 * What `--version` reports: the program version (deno.json, which the release workflow checks against
 * the tag), the Deno runtime, the target triple, whether this is a `deno compile` binary, and the git
 * commit. The commit comes from `build_info.json`, which is committed with `"commit": null` and which
 * the workflows overwrite just before `deno compile` (see README "Install on a host"), so `deno run`
 * from a checkout needs nothing generated.
 */
import denoConfig from "../../deno.json" with { type: "json" };
import buildInfo from "./build_info.json" with { type: "json" };

export const VERSION: string = denoConfig.version;

export interface VersionInfo {
  name: string;
  version: string;
  deno: string;
  target: string;
  compiled: boolean;
  commit: string | null;
}

export function versionInfo(name: string): VersionInfo {
  const commit = (buildInfo as { commit: string | null }).commit;
  return {
    name,
    version: VERSION,
    deno: Deno.version.deno,
    target: Deno.build.target,
    compiled: Deno.build.standalone === true,
    commit: typeof commit === "string" && commit !== "" ? commit : null,
  };
}

/** `orchesjob-flow 0.2.0 (deno 2.9.6, x86_64-unknown-linux-gnu, compiled, abc1234)`. Pure. */
export function formatVersion(info: VersionInfo): string {
  const details = [`deno ${info.deno}`, info.target, info.compiled ? "compiled" : "not compiled"];
  if (info.commit !== null) details.push(info.commit);
  return `${info.name} ${info.version} (${details.join(", ")})`;
}

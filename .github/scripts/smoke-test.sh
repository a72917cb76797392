#!/bin/sh
# Smoke test of one orchesjob-flow program on the machine it is built for: --version, example, validate
# (also with LOG_TOKENS set), a foreground start, a detached start followed with watch, and a cancel of a
# detached run.
#
#   smoke-test.sh PROGRAM [compiled]
#
# With "compiled", --version must report a `deno compile` binary. The workflows run this on every binary;
# tests/release/smoke_test.ts runs it against `deno run main.ts` so it is known to work before a tag.
set -eu

program=$1
expect=${2:-}
work=$(mktemp -d "${TMPDIR:-/tmp}/orchesjob-flow-smoke.XXXXXX")
trap 'rm -rf "$work"' EXIT
db=$work/state/orchesjob-flow.sqlite3
ojf() { "$program" --db "$db" --executor builtin --poll-interval 0.2 "$@"; }
step() { printf '\n--- %s\n' "$*"; }
fail() {
  printf 'smoke test failed: %s\n' "$*" >&2
  exit 1
}

step "--version"
"$program" --version
json=$("$program" --version --format json)
printf '%s\n' "$json"
if [ "$expect" = compiled ]; then
  printf '%s' "$json" | grep -q '"compiled": true' || fail "--version does not report a compiled binary"
fi

step "example, validate"
"$program" example > "$work/flow.yaml"
"$program" validate "$work/flow.yaml" > /dev/null

# The package's CommonJS build prints every token to stdout when LOG_TOKENS is set; the ES build the
# program loads (src/flow/yaml_library.ts) does not. So this also shows which one this binary loads.
step "validate with LOG_TOKENS set"
first=$(LOG_TOKENS=1 "$program" validate "$work/flow.yaml" | head -n 1)
[ "$first" = "{" ] || fail "validate with LOG_TOKENS set began with '$first': the YAML library's CommonJS build was loaded"

step "start (foreground)"
ojf start --run-key smoke "$work/flow.yaml" > "$work/smoke.json"
grep -q '"status": "SUCCEEDED"' "$work/smoke.json" || fail "foreground run did not succeed"

step "start -d, then watch"
ojf start -d --run-key smoke-detached "$work/flow.yaml" > "$work/detached.json"
grep -q '"detached": true' "$work/detached.json" || fail "start -d did not detach"
ojf watch --run-key smoke-detached --mode append --interval 0.5

step "start -d of a long step, cancel, then watch exits 4"
cat > "$work/long.yaml" <<'FLOW'
flow_id: smoke-long
steps:
  - id: wait
    command: "sleep 300"
FLOW
ojf start -d --run-key smoke-cancel "$work/long.yaml" > /dev/null
# Wait for the step's job to have a process (not only for the run to be RUNNING, which comes first):
# a cancel before the job starts leaves no job to abort.
tries=0
until ojf status --run-key smoke-cancel | grep -Eq '"target_pid": [0-9]+'; do
  tries=$((tries + 1))
  [ "$tries" -le 600 ] || fail "the long step never started"
  sleep 0.1
done
ojf cancel --run-key smoke-cancel --grace-seconds 2 > /dev/null
rc=0
ojf watch --run-key smoke-cancel --mode append --interval 0.5 || rc=$?
[ "$rc" = 4 ] || fail "watch of a cancelled run exited $rc, expected 4"
ojf status --run-key smoke-cancel --format table

printf '\nsmoke test passed\n'

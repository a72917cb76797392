#!/bin/sh
# hello_step.sh, failing at the end when the step id is listed in HELLO_FAIL_STEPS (space-separated),
# or when --fail is given. Used by branching-hello-failure-flow.yaml.
#   hello_step_maybe_fail.sh --flow-name NAME --step-id ID [--fail]
here=$(dirname "$0")
step_id=
prev=
for arg in "$@"; do
  [ "$prev" = --step-id ] && step_id=$arg
  prev=$arg
done
for failing in ${HELLO_FAIL_STEPS:-}; do
  [ "$failing" = "$step_id" ] && exec /bin/sh "$here/hello_step.sh" "$@" --fail
done
exec /bin/sh "$here/hello_step.sh" "$@"

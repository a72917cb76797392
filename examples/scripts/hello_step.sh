#!/bin/sh
# Prints "Hello <flow-name> from <step-id>" every HELLO_INTERVAL seconds (default 5) for about
# HELLO_DURATION seconds (default 60). POSIX sh, so it runs on a bare edge host.
#   hello_step.sh --flow-name NAME --step-id ID [--fail] [--duration S] [--interval S]
# --fail (or HELLO_FAIL=1) makes the step exit 1 at the end.
flow_name=flow
step_id=step
duration=${HELLO_DURATION:-60}
interval=${HELLO_INTERVAL:-5}
fail=${HELLO_FAIL:-0}
while [ $# -gt 0 ]; do
  case $1 in
    --flow-name) flow_name=$2; shift 2 ;;
    --step-id) step_id=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --interval) interval=$2; shift 2 ;;
    --fail) fail=1; shift ;;
    *) echo "hello_step: unknown argument: $1" >&2; exit 2 ;;
  esac
done
# Whole ticks of the interval, using awk for fractional seconds (sh arithmetic is integer only).
ticks=$(awk -v d="$duration" -v i="$interval" 'BEGIN { n = (i > 0) ? int(d / i + 0.000001) : 0; print (n < 1) ? 1 : n }')
n=0
while [ "$n" -lt "$ticks" ]; do
  n=$((n + 1))
  echo "Hello $flow_name from $step_id ($n/$ticks)"
  sleep "$interval"
done
if [ "$fail" = 1 ]; then
  echo "$step_id: failing on purpose" >&2
  exit 1
fi

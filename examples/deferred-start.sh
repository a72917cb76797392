#!/bin/sh
# Deferred start: hand a run over now and let it begin later on this host (no cron needed for a
# one-off). Run from the repository root with orchesjob-flow on PATH.
#   sh examples/deferred-start.sh            # begins in 10 minutes
#   sh examples/deferred-start.sh 23:30      # begins at 23:30 today, local time
set -eu
day=$(date +%Y-%m-%d)
when=${1:+${day}T$1}
key="params-env-$day"
orchesjob-flow start --run-key "$key" -d --not-before "${when:-+10m}" --param DAY="$day" examples/params-env-flow.yaml
orchesjob-flow status --run-key "$key" --format table    # Status: SCHEDULED ... Begins: ...
orchesjob-flow graph examples/params-env-flow.yaml       # what it will run, as Mermaid
# Changed your mind before it began? Nothing has started yet:
#   orchesjob-flow cancel --run-key "$key"

#!/usr/bin/env bash
# Evaluates a GLUE task in N shards at once on this machine (GNU parallel, one thread per
# shard), merges the shard reports into REPORT (JSON) and prints the merged report (the
# shards' own reports are not printed).
#   parallel-eval.sh DATA REPORT N [eval options, e.g. -m MODEL --limit 500]
set -euo pipefail
data=$1 report=$2 shards=$3
shift 3
parts=$(mktemp -d)
trap 'rm -rf "$parts"' EXIT
parallel -q --halt now,fail=1 -j "$shards" \
  fcabert eval -q --threads 1 --data "$data" --shard {}/"$shards" --json "$parts/shard-{}.json" "$@" \
  ::: $(seq "$shards") >/dev/null
fcabert eval-merge --json "$report" "$parts"/shard-*.json

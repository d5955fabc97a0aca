#!/bin/bash
# Evaluates a GLUE task in N shards as a Slurm job array, then merges the shard reports into
# REPORT (JSON; the text report goes to PARTS_DIR/merge.log) in a job that starts once every
# shard has succeeded. Prints the merge job's id.
#   submit-eval.sh DATA REPORT PARTS_DIR N [eval options]
# DATA, REPORT and PARTS_DIR must be on storage that every node sees; fcabert on PATH.
set -euo pipefail
data=$1 report=$2 parts=$3 shards=$4
shift 4
here=$(dirname "$(readlink -f "$0")")
mkdir -p "$parts"
array=$(sbatch --parsable --array=1-"$shards" --output="$parts/shard-%a.log" \
  "$here/eval-shard.sh" "$data" "$parts" "$@")
sbatch --parsable --dependency=afterok:"$array" --output="$parts/merge.log" \
  --wrap="fcabert eval-merge --json $(printf %q "$report") $(printf %q "$parts")/shard-*.json"

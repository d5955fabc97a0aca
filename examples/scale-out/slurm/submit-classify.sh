#!/bin/bash
# Classifies INPUT in N shards as a Slurm job array, then merges the shard files into OUTPUT
# in a job that starts once every shard has succeeded. Prints the merge job's id.
#   submit-classify.sh INPUT OUTPUT PARTS_DIR N [classify options]
# INPUT, OUTPUT and PARTS_DIR must be on storage that every node sees; fcabert on PATH.
set -euo pipefail
input=$1 output=$2 parts=$3 shards=$4
shift 4
here=$(dirname "$(readlink -f "$0")")
mkdir -p "$parts"
array=$(sbatch --parsable --array=1-"$shards" --output="$parts/shard-%a.log" \
  "$here/classify-shard.sh" "$input" "$parts" "$@")
sbatch --parsable --dependency=afterok:"$array" --output="$parts/merge.log" \
  --wrap="fcabert classify-merge -q -o $(printf %q "$output") $(printf %q "$parts")/part-*.jsonl"

#!/usr/bin/env bash
# Classifies INPUT in N shards at once on this machine (GNU parallel, one thread per shard)
# and merges them into OUTPUT: byte for byte what one `fcabert classify` run prints.
#   parallel-classify.sh INPUT OUTPUT N [classify options, e.g. --format jsonl -m MODEL]
set -euo pipefail
input=$1 output=$2 shards=$3
shift 3
parts=$(mktemp -d)
trap 'rm -rf "$parts"' EXIT
parallel -q --halt now,fail=1 -j "$shards" \
  fcabert classify -q --threads 1 --shard {}/"$shards" -o "$parts/part-{}.jsonl" "$@" "$input" \
  ::: $(seq "$shards")
fcabert classify-merge -q -o "$output" "$parts"/part-*.jsonl

#!/bin/bash
#SBATCH --job-name=fcabert-classify
#SBATCH --cpus-per-task=1
#SBATCH --time=01:00:00
# One shard of `fcabert classify` per task of a job array (submit-classify.sh submits it):
#   sbatch --array=1-N classify-shard.sh INPUT PARTS_DIR [classify options]
set -euo pipefail
input=$1 parts=$2
shift 2
fcabert classify -q --threads "$SLURM_CPUS_PER_TASK" \
  --shard "$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT" \
  -o "$parts/part-$SLURM_ARRAY_TASK_ID.jsonl" "$@" "$input"

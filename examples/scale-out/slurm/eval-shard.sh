#!/bin/bash
#SBATCH --job-name=fcabert-eval
#SBATCH --cpus-per-task=1
#SBATCH --time=01:00:00
# One shard of `fcabert eval` per task of a job array (submit-eval.sh submits it):
#   sbatch --array=1-N eval-shard.sh DATA PARTS_DIR [eval options]
set -euo pipefail
data=$1 parts=$2
shift 2
fcabert eval -q --threads "$SLURM_CPUS_PER_TASK" --data "$data" \
  --shard "$SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT" \
  --json "$parts/shard-$SLURM_ARRAY_TASK_ID.json" "$@"

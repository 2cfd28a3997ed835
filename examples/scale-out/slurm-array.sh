#!/bin/bash
# One Slurm array task per shard: task i trains shard i of 8 (cdas-native reads SLURM_ARRAY_TASK_ID
# and SLURM_ARRAY_TASK_COUNT) into its own folder. Submit from the repository root:
#     sbatch examples/scale-out/slurm-array.sh
# then, when all tasks have ended:
#     dist/bin/cdas-native merge --out-dir runs/concept500/all runs/concept500/shard-*
# A task that failed or was cut off: submit the whole array again. Every task skips the concepts it
# finished and retries the failed ones. (Resubmitting only --array=3 would make that task shard 0 of
# 1; to run one shard by hand, give it explicitly: --shard 3/8.)
#SBATCH --job-name=cdas-concepts
#SBATCH --array=0-7
#SBATCH --gpus-per-task=1
#SBATCH --cpus-per-task=8
#SBATCH --time=12:00:00
#SBATCH --output=logs/cdas-%A_%a.out
set -euo pipefail

MODEL=${MODEL:-models/gemma-2-2b-it}
DATA=${DATA:-data/concept500.parquet}
OUT=${OUT:-runs/concept500}

exec dist/bin/cdas-native train --model "$MODEL" --data "$DATA" --layer 10 --concepts all \
    --out-dir "$OUT/shard-$SLURM_ARRAY_TASK_ID" --device cuda --dtype bf16 --threads "$SLURM_CPUS_PER_TASK"

#!/bin/bash
# Four shards on one machine under torchrun, which sets RANK and WORLD_SIZE in each process
# (nothing of torch.distributed is used: the shards do not talk to each other). --no-python runs
# the command as it is; the shell expands $RANK in each process, so each shard gets its own folder.
# On N nodes, run the same with --nnodes N and a rendezvous (--rdzv-backend c10d --rdzv-endpoint
# HOST:PORT); RANK is then global. Threads: split the cores, e.g. 4 processes on 16 cores -> 4 each.
set -euo pipefail
MODEL=${MODEL:-demo/model}
DATA=${DATA:-java/src/test/resources/data/fanout.jsonl}
OUT=${OUT:-runs/fanout}

torchrun --standalone --nproc_per_node 4 --no-python bash -c \
    'exec dist/bin/cdas-native train --model "$0" --data "$1" --layer 1 --concepts all --out-dir "$2/shard-$RANK" --threads 4' \
    "$MODEL" "$DATA" "$OUT"
dist/bin/cdas-native merge --out-dir "$OUT/all" "$OUT"/shard-*

#!/usr/bin/env bash
# Data parallel on this machine: the same training run (the demo model, fp32) as one process and
# as 2 ranks on 127.0.0.1 (train --distributed, Gloo), each process with --threads 1 so that the
# ranks do not fight over the cores; prints the measured step time, speed-up, efficiency and the
# all-reduce's bytes and time per step, as a Markdown table for benchmarks/RESULTS.md.
#   bash benchmarks/run-data-parallel.sh            (needs dist/: bash scripts/build.sh)
#   CDAS_BENCH_PAIRS=32 CDAS_BENCH_EPOCHS=2 ...     the run's size (default 32 pairs, batch 8, 2 epochs)
#   CDAS_CLI="java -jar ..." ...                   another command than dist/bin/cdas-native
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/env.sh"
cd "$CDAS_ROOT"
read -r -a cli <<<"${CDAS_CLI:-dist/bin/cdas-native}"
[[ -n "${CDAS_CLI:-}" || -x dist/bin/cdas-native ]] || { echo "run bash scripts/build.sh first" >&2; exit 1; }
pairs=${CDAS_BENCH_PAIRS:-32}
epochs=${CDAS_BENCH_EPOCHS:-2}
tmp="$(mktemp -d "${TMPDIR:-/tmp}/cdas-dp-bench.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
head -n "$pairs" demo/data/startrek.jsonl >"$tmp/pairs.jsonl"
args=(train --model demo/model --data "$tmp/pairs.jsonl" --layer 2 --epochs "$epochs" --batch 8 --seed 1
      --max-response-tokens 32 --threads 1 --dtype f32)
load=$(cut -d' ' -f1-3 /proc/loadavg)
"${cli[@]}" "${args[@]}" --out "$tmp/one.safetensors" >"$tmp/one.log" 2>&1 || { cat "$tmp/one.log" >&2; exit 1; }
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
for r in 0 1; do
  MASTER_ADDR=127.0.0.1 MASTER_PORT=$port RANK=$r WORLD_SIZE=2 \
    "${cli[@]}" "${args[@]}" --distributed --out "$tmp/two.safetensors" >"$tmp/two-$r.log" 2>&1 &
  eval "pid$r=\$!"
done
wait "$pid0" || { cat "$tmp/two-0.log" >&2; exit 1; }
wait "$pid1" || { cat "$tmp/two-1.log" >&2; exit 1; }
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
python3 - "$tmp" "$pairs" "$epochs" "$load" "$load_end" "$(nproc)" <<'PY'
import re, sys
tmp, pairs, epochs, load, load_end, cores = sys.argv[1:]
def trained(path):
    text = open(path).read()
    m = re.search(r"trained in ([0-9.]+) s: ([0-9]+) steps", text)
    c = re.search(r"all-reduce: ([0-9]+) steps, ([0-9]+) bytes each, ([0-9.]+) s in all", text)
    return float(m.group(1)), int(m.group(2)), c
t1, steps, _ = trained(f"{tmp}/one.log")
ranks = [trained(f"{tmp}/two-{r}.log") for r in (0, 1)]
t2 = max(r[0] for r in ranks)
bytes_ = int(ranks[0][2].group(2))
comm = max(float(r[2].group(3)) for r in ranks) / steps
s1, s2 = t1 / steps, t2 / steps
print(f"Machine: {cores} cores; load average {load} at start, {load_end} at the end; demo model (GPT-2 shape, "
      f"4 blocks, d=192), fp32, {pairs} pairs, batch 8, {epochs} epochs = {steps} steps, responses cut to 32 tokens, "
      f"layer 2; every process --threads 1.\n")
print("| run | s per step | speed-up | efficiency | all-reduce buffer per step | all-reduce time per step |")
print("|---|---:|---:|---:|---:|---:|")
print(f"| 1 process | {s1:.3f} | 1.00x | 1.00 | - | - |")
print(f"| 2 ranks, Gloo on 127.0.0.1 | {s2:.3f} | {s1 / s2:.2f}x | {s1 / s2 / 2:.2f} | {bytes_} B | {1e3 * comm:.2f} ms |")
PY

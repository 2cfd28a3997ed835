#!/usr/bin/env bash
# One CDAS training step on a GPT-2-124M-shaped model (random weights, V = 50 257): the fused
# LM-head + JSD loss against the same step with the loss composed from libtorch operations, in
# one run: JMH medians (TrainingStepBenchmark; a first-epoch step and a later-epoch step with the
# w-independent states cached), then each step's peak extra memory in a fresh JVM (MemoryProbe),
# then the "training step" table of benchmarks/RESULTS.md. ~15 minutes on 2 quiet cores; the
# model checkpoint (~500 MB) is written once under the temp folder.
#   bash benchmarks/run-train-step.sh
#   CDAS_BENCH_QUICK=1 bash ...    2 pairs, 1 warm-up and 2 measured steps (a smoke run)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
shape=gpt2
jmh_args=(-rf json -rff "$out/train-step.json")
if [[ -n "${CDAS_BENCH_QUICK:-}" ]]; then
  shape=gpt2-small-batch
  jmh_args+=(-wi 1 -i 2)
fi
java -jar "$jar" "${jmh_args[@]}" -p shape="$shape" 'dev.cdas.bench.TrainingStepBenchmark' | tee "$out/train-step.log"
: >"$out/train-step-memory.tsv"
for probe in train-step train-step-cached; do
  for impl in fused torch-composed; do
    line=$(java --enable-native-access=ALL-UNNAMED -cp "$jar" dev.cdas.bench.MemoryProbe "$probe" "$impl" "$shape" 2>/dev/null | tail -n1)
    printf '%s\t%s\t%s\t%s\n' "$probe" "$shape" "$impl" "$line" | tee -a "$out/train-step-memory.tsv"
  done
done
python3 benchmarks/format_results.py --train-step "$out/train-step.json" "$out/train-step-memory.tsv" >"$out/train-step-table.md"
python3 benchmarks/format_results.py --update-train-step benchmarks/RESULTS.md "$out/train-step-table.md"
cat "$out/train-step-table.md"

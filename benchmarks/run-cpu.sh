#!/usr/bin/env bash
# CPU benchmarks in one run: JMH timings of the fused kernels and of the same math composed from
# libtorch operations (same JVM, same inputs), then peak extra memory of each in a fresh JVM,
# then benchmarks/RESULTS.md's CPU table. Takes ~10 minutes on 2 cores.
#   bash benchmarks/run-cpu.sh            all shapes
#   CDAS_BENCH_QUICK=1 bash ...           the small shapes only, short iterations (a smoke run)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
jmh_args=(-rf json -rff "$out/jmh.json")
probe_shapes_lm=(small gpt2)
probe_shapes_dii=(small gpt2 gemma2b)
if [[ -n "${CDAS_BENCH_QUICK:-}" ]]; then
  jmh_args+=(-p shape=small -wi 1 -w 1 -i 2 -r 1)
  probe_shapes_lm=(small)
  probe_shapes_dii=(small)
fi
java -jar "$jar" "${jmh_args[@]}" 'dev.cdas.bench.(LmHeadJsd|Dii)Benchmark' | tee "$out/jmh.log"
: >"$out/memory.tsv"
for shape in "${probe_shapes_lm[@]}"; do
  for impl in fused-chunked torch-composed; do
    line=$(java --enable-native-access=ALL-UNNAMED -cp "$jar" dev.cdas.bench.MemoryProbe lm-head "$impl" "$shape" 2>/dev/null | tail -n1)
    printf 'lm-head\t%s\t%s\t%s\n' "$shape" "$impl" "$line" | tee -a "$out/memory.tsv"
  done
done
for shape in "${probe_shapes_dii[@]}"; do
  for impl in fused torch-composed; do
    line=$(java --enable-native-access=ALL-UNNAMED -cp "$jar" dev.cdas.bench.MemoryProbe dii "$impl" "$shape" 2>/dev/null | tail -n1)
    printf 'dii\t%s\t%s\t%s\n' "$shape" "$impl" "$line" | tee -a "$out/memory.tsv"
  done
done
python3 benchmarks/format_results.py "$out/jmh.json" "$out/memory.tsv" >"$out/cpu-table.md"
python3 benchmarks/format_results.py --update benchmarks/RESULTS.md "$out/cpu-table.md"
cat "$out/cpu-table.md"

#!/usr/bin/env bash
# Concept packing (train --concepts --pack K, docs/scale-out.md) against one-by-one training, in
# one run: the demo model (GPT-2 shape, d = 192, 4 blocks) on CONCEPTS concepts of PAIRS demo
# pairs each (the Star Trek pairs relabelled, so every concept has the same work), each run a
# fresh process of dist/bin/cdas-native timed from start to exit (JVM start, model load, training,
# factors, files: what a user waits for). The settings (K = 1, 2, 4, 8) take turns within each
# repetition, so a burst of other work on the machine hits all of them alike; the table reports the
# median of REPS repetitions and concepts per hour from it. Then checks that every packed vector
# equals the one-by-one vector within 1e-5 (max |difference| in the table).
#   bash benchmarks/run-pack.sh                    8 concepts x 12 pairs, 3 epochs, batch 4, 5 reps
#   CDAS_BENCH_QUICK=1 bash benchmarks/run-pack.sh  2 repetitions, 1 epoch (a smoke run)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/env.sh"
cd "$CDAS_ROOT"
# CDAS_BENCH_CLI: the command to time instead of dist/bin/cdas-native (e.g. java -jar on a build tree's
# jar with CDAS_LIBRARY set), word-split.
if [[ -n "${CDAS_BENCH_CLI:-}" ]]; then
  read -r -a cli <<<"$CDAS_BENCH_CLI"
else
  [[ -x dist/bin/cdas-native && -f dist/lib/libcdas.so ]] || bash scripts/build.sh
  cli=(dist/bin/cdas-native)
fi
out=benchmarks/target/pack
rm -rf "$out" && mkdir -p "$out"
concepts=${CONCEPTS:-8}
pairs=${PAIRS:-12}
reps=${REPS:-5}
epochs=3
dtype=f32
if [[ -n "${CDAS_BENCH_QUICK:-}" ]]; then reps=2; epochs=1; fi
packs=(1 2 4 8)
python3 - "$concepts" "$pairs" demo/data/startrek.jsonl "$out/concepts.jsonl" <<'EOF'
import json, sys
n, per, src, dst = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
rows = [json.loads(l) for l in open(src, encoding="utf-8") if l.strip()]
if n * per > len(rows):
    sys.exit(f"{src} has {len(rows)} pairs, fewer than {n} x {per}")
with open(dst, "w", encoding="utf-8") as f:
    for c in range(n):
        for r in rows[c * per:(c + 1) * per]:
            r = dict(r, concept=f"concept {c + 1}", concept_id=c + 1)
            f.write(json.dumps(r) + "\n")
EOF
load=$(cut -d' ' -f1-3 /proc/loadavg)
: >"$out/times.tsv"
for rep in $(seq 1 "$reps"); do
  for k in "${packs[@]}"; do
    dir="$out/k$k-r$rep"
    start=$(date +%s.%N)
    "${cli[@]}" train --model demo/model --data "$out/concepts.jsonl" --layer 1 --concepts all \
      --out-dir "$dir" --epochs "$epochs" --batch 4 --max-response-tokens 32 --dtype "$dtype" --pack "$k" >"$dir.log" 2>&1 \
      || { cat "$dir.log" >&2; exit 1; }
    end=$(date +%s.%N)
    secs=$(python3 -c "print(f'{$end - $start:.3f}')")
    printf '%s\t%s\t%s\n' "$k" "$rep" "$secs" | tee -a "$out/times.tsv"
  done
done
python3 - "$out" "$concepts" "$pairs" "$epochs" "$reps" "$load" <<'EOF' | tee "$out/pack-table.md"
import json, pathlib, statistics, struct, sys
out, n, per, epochs, reps, load = pathlib.Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]

def vector(path):  # the "w" tensor of a steering-vector safetensors file
    raw = path.read_bytes()
    size = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + size])
    begin, end = header["w"]["data_offsets"]
    data = raw[8 + size + begin:8 + size + end]
    return struct.unpack(f"<{len(data) // 4}f", data)

times = {}
for line in (out / "times.tsv").read_text().splitlines():
    k, rep, secs = line.split("\t")
    times.setdefault(int(k), []).append(float(secs))
base = statistics.median(times[1])
ref = {p.name: vector(p) for p in (out / "k1-r1" / "vectors").glob("*.safetensors")}
print(f"{n} concepts x {per} pairs, {epochs} epochs, batch 4 ({-(-per // 4) * epochs} steps per concept), "
      f"responses cut to 32 tokens, layer 1, --dtype f32; {reps} repetitions; load average at start {load}.")
print()
print("| pack K | median s (min-max) | concepts / hour | vs one by one | max abs diff of w vs K=1 |")
print("|---:|---:|---:|---:|---:|")
for k in sorted(times):
    med = statistics.median(times[k])
    diff = 0.0
    for rep in range(1, reps + 1):
        for name, w in ref.items():
            other = vector(out / f"k{k}-r{rep}" / "vectors" / name)
            diff = max(diff, max(abs(a - b) for a, b in zip(w, other)))
    label = "1 (one by one)" if k == 1 else str(k)
    print(f"| {label} | {med:.2f} ({min(times[k]):.2f}-{max(times[k]):.2f}) | {n / med * 3600:.0f} | {base / med:.2f}x | {diff:.1e} |")
EOF

#!/usr/bin/env bash
# Concept packing (train --concepts --pack K, docs/scale-out.md) against one-by-one training, in
# one run: the demo model (GPT-2 shape, d = 192, 4 blocks) on CONCEPTS concepts of PAIRS demo
# pairs each (the Star Trek pairs relabelled, so every concept has the same work), each run a
# fresh process of dist/bin/cdas-native timed from start to exit (JVM start, model load, training,
# factors, files: what a user waits for), with its CPU time (user + system). The settings (K:P =
# --pack K --pack-padding P; 1:0 is one by one) take turns within each repetition, so a burst of
# other work on the machine hits all of them alike; the table reports the median of REPS
# repetitions, the median of each repetition's own speed-up, and concepts per hour. Then checks
# every packed vector against the one-by-one vector (max |difference| in the table).
#   bash benchmarks/run-pack.sh                    8 concepts x 12 pairs, 2 epochs, batch 4, 3 reps
#   SETTINGS="1:0 8:0 8:256" EPOCHS=3 REPS=5 bash benchmarks/run-pack.sh
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
# TRAIN_ARGS="--threads 1": more train options for every run (one-by-one included), word-split.
# FROM_REP=N: continue an interrupted run at repetition N (keeps the earlier ones' results)
from_rep=${FROM_REP:-1}
if [[ "$from_rep" == 1 ]]; then rm -rf "$out"; fi
mkdir -p "$out"
concepts=${CONCEPTS:-8}
pairs=${PAIRS:-12}
reps=${REPS:-3}
epochs=${EPOCHS:-2}
dtype=f32
if [[ -n "${CDAS_BENCH_QUICK:-}" ]]; then reps=2; epochs=1; fi
read -r -a settings <<<"${SETTINGS:-1:0 4:0 8:0 8:256}"
[[ "${settings[0]}" == 1:0 ]] || { echo "run-pack.sh: SETTINGS must start with 1:0 (the baseline)" >&2; exit 2; }
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
nproc_=$(nproc)
if [[ "$from_rep" == 1 ]]; then : >"$out/times.tsv"; else awk -v r="$from_rep" '$2 < r' "$out/times.tsv" >"$out/times.tmp" && mv "$out/times.tmp" "$out/times.tsv"; fi
for rep in $(seq "$from_rep" "$reps"); do
  rm -rf "$out"/k*-r"$rep" "$out"/k*-r"$rep".*
  for setting in "${settings[@]}"; do
    k=${setting%%:*}
    padding=${setting##*:}
    dir="$out/k$k-p$padding-r$rep"
    extra=()
    [[ "$k" == 1 ]] || extra=(--pack "$k" --pack-padding "$padding")
    read -r -a more <<<"${TRAIN_ARGS:-}"
    extra+=("${more[@]}")
    load=$(cut -d' ' -f1 /proc/loadavg)
    /usr/bin/time -f '%e %U %S' -o "$dir.time" "${cli[@]}" train --model demo/model --data "$out/concepts.jsonl" --layer 1 \
      --concepts all --out-dir "$dir" --epochs "$epochs" --batch 4 --max-response-tokens 32 --dtype "$dtype" "${extra[@]}" \
      >"$dir.log" 2>&1 || { cat "$dir.log" >&2; exit 1; }
    read -r secs user sys <"$dir.time"
    load_end=$(cut -d' ' -f1 /proc/loadavg)
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$setting" "$rep" "$secs" "$(python3 -c "print(f'{$user + $sys:.2f}')")" "$load" "$load_end" \
      | tee -a "$out/times.tsv"
  done
done
python3 - "$out" "$concepts" "$pairs" "$epochs" "$reps" "$nproc_" <<'EOF' | tee "$out/pack-table.md"
import json, pathlib, statistics, struct, sys
out, n, per, epochs, reps, cores = pathlib.Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]

def vector(path):  # the "w" tensor of a steering-vector safetensors file
    raw = path.read_bytes()
    size = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + size])
    begin, end = header["w"]["data_offsets"]
    data = raw[8 + size + begin:8 + size + end]
    return struct.unpack(f"<{len(data) // 4}f", data)

times, cpu, loads, order = {}, {}, [], []
for line in (out / "times.tsv").read_text().splitlines():
    setting, rep, secs, cpus, l0, l1 = line.split("\t")
    if setting not in order:
        order.append(setting)
    times.setdefault(setting, {})[int(rep)] = float(secs)
    cpu.setdefault(setting, {})[int(rep)] = float(cpus)
    loads += [float(l0), float(l1)]
base = "1:0"
ref = {p.name: vector(p) for p in (out / "k1-p0-r1" / "vectors").glob("*.safetensors")}
import os
print(f"{n} concepts x {per} pairs, {epochs} epochs, batch 4 ({-(-per // 4) * epochs} steps per concept), "
      f"responses cut to 32 tokens, layer 1, --dtype f32{(' ' + os.environ['TRAIN_ARGS']) if os.environ.get('TRAIN_ARGS') else ''}; {reps} repetitions, the settings in turn within each; "
      f"{cores} cores, 1-minute load average {min(loads):.1f}-{max(loads):.1f} during the runs (shared machine).")
print()
print("| pack K | --pack-padding | median wall s (min-max) | median CPU s | speed-up vs one by one (median of per-repetition ratios) | concepts / hour (median wall) | max abs diff of w vs one by one |")
print("|---:|---:|---:|---:|---:|---:|---:|")
for setting in order:
    k, padding = setting.split(":")
    t = times[setting]
    med = statistics.median(t.values())
    ratios = [times[base][r] / t[r] for r in t if r in times[base]]
    diff = 0.0
    for rep in t:
        for name, w in ref.items():
            other = vector(out / f"k{k}-p{padding}-r{rep}" / "vectors" / name)
            diff = max(diff, max(abs(a - b) for a, b in zip(w, other)))
    label = "1 (one by one)" if setting == base else k
    pad = "" if setting == base else padding
    print(f"| {label} | {pad} | {med:.1f} ({min(t.values()):.1f}-{max(t.values()):.1f}) | {statistics.median(cpu[setting].values()):.1f} | "
          f"{statistics.median(ratios):.2f}x | {n / med * 3600:.0f} | {diff:.1e} |")
EOF

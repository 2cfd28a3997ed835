#!/usr/bin/env bash
# Concept fan-out on this machine (issue 17): the same concepts trained by one process and by two
# processes started at once as two shards (RANK=0/1, WORLD_SIZE=2, as torchrun would set them),
# every process with --threads 1 and pinned to one core (taskset: the one process to core 0, the
# shards to cores 0 and 1), so that the shards do not fight over the cores and the JVM's own
# threads (JIT compiler, GC) count against the process that runs them. Wall time of each
# run from start to the last process's exit (JVM start, model load, training, clamp factors, files
# all included). Efficiency = (one-process time) / (2 x two-shard time). Also checks that the
# two shards' vectors, once merged, equal the one-process vectors byte for byte.
#   bash benchmarks/run-fanout.sh                 (needs dist/: bash scripts/build.sh)
#   CDAS_BENCH_CONCEPTS=12 CDAS_BENCH_PAIRS=15 CDAS_BENCH_EPOCHS=8 ...  concepts, pairs per concept, epochs
#   (AxBench's size: CDAS_BENCH_CONCEPTS=4 CDAS_BENCH_PAIRS=72 CDAS_BENCH_EPOCHS=18, 72 pairs per concept as in
#   Concept500, train's default epochs; the demo's pairs are reused when a run needs more than it has)
#   CDAS_BENCH_REPS=3 ...                         repetitions (the table gives each and the median)
#   CDAS_CLI="java -jar ..." ...                  another command than dist/bin/cdas-native
#   CDAS_AOT_CACHE=off ...                        without the launcher's start-up cache (README)
# Each repetition also runs shard 0 alone (pinned to core 0, the other core idle): against it, the two
# shards at once show what running side by side costs (shared cache, memory), and the one process
# what the fixed per-process cost does. And it measures the machine's own ceiling, with no JVM and no
# start at all: the LM-head + JSD kernel at the demo's shape on one thread ($CDAS_BUILD_DIR/
# cdas_bench_lm_head_jsd, built by scripts/build.sh), alone on core 0, alone on core 1, then on both
# at once. (core 0 alone) / (the slower of the two at once) is the efficiency a job split perfectly
# in two would reach on these two cores at that moment: a shared or throttled host core shows here
# (on a VM, core 1 was 8-13% slower than core 0 for a while, then not).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/env.sh"
cd "$CDAS_ROOT"
read -r -a cli <<<"${CDAS_CLI:-dist/bin/cdas-native}"
[[ -n "${CDAS_CLI:-}" || -x dist/bin/cdas-native ]] || { echo "run bash scripts/build.sh first" >&2; exit 1; }
concepts=${CDAS_BENCH_CONCEPTS:-12}
per=${CDAS_BENCH_PAIRS:-15}
epochs=${CDAS_BENCH_EPOCHS:-8}
reps=${CDAS_BENCH_REPS:-3}
tmp="$(mktemp -d "${TMPDIR:-/tmp}/cdas-fanout-bench.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
# An AxBench-style file: the demo pairs, relabelled as `concepts` concepts of `per` pairs each (the
# timing depends on the number and length of pairs, not on what the concepts mean).
python3 - "$concepts" "$per" >"$tmp/concepts.jsonl" <<'PY'
import json, sys
concepts, per = int(sys.argv[1]), int(sys.argv[2])
rows = [json.loads(l) for l in open("demo/data/startrek.jsonl") if l.strip()]
# Concept c takes the next `per` pairs of the demo file, from its start again when it runs out (AxBench-sized
# concepts, 72 pairs each, need more pairs than the demo has).
for c in range(concepts):
    for i in range(c * per, (c + 1) * per):
        r = dict(rows[i % len(rows)], concept=f"demo concept {c}", concept_id=100 + c)
        print(json.dumps(r))
PY
pin=()
command -v taskset >/dev/null && [[ $(nproc) -ge 2 ]] && pin=(taskset -c)
core() { [[ ${#pin[@]} -gt 0 ]] && echo "${pin[@]} $1"; }
args=(train --model demo/model --data "$tmp/concepts.jsonl" --concepts all --layer 2 --epochs "$epochs" --batch 8 --seed 1
      --max-response-tokens 32 --threads 1 --dtype f32)
export CDAS_PROGRESS=off   # the logs are not read; no progress lines in them
now() { python3 -c 'import time; print(time.monotonic())'; }
kernel="$CDAS_BUILD_DIR/cdas_bench_lm_head_jsd"
[[ -x "$kernel" ]] || echo "run-fanout.sh: $kernel is missing (bash scripts/build.sh builds it): no machine ceiling" >&2
results=()
for rep in $(seq 1 "$reps"); do
  load=$(cut -d' ' -f1 /proc/loadavg)
  t0=$(now)
  $(core 0) "${cli[@]}" "${args[@]}" --out-dir "$tmp/one-$rep" >"$tmp/one-$rep.log" 2>&1 || { cat "$tmp/one-$rep.log" >&2; exit 1; }
  t1=$(now)
  for r in 0 1; do
    RANK=$r WORLD_SIZE=2 $(core $r) "${cli[@]}" "${args[@]}" --out-dir "$tmp/two-$rep-$r" >"$tmp/two-$rep-$r.log" 2>&1 &
    eval "pid$r=\$!"
  done
  wait "$pid0" || { cat "$tmp/two-$rep-0.log" >&2; exit 1; }
  wait "$pid1" || { cat "$tmp/two-$rep-1.log" >&2; exit 1; }
  t2=$(now)
  RANK=0 WORLD_SIZE=2 $(core 0) "${cli[@]}" "${args[@]}" --out-dir "$tmp/alone-$rep" >"$tmp/alone-$rep.log" 2>&1 \
      || { cat "$tmp/alone-$rep.log" >&2; exit 1; }
  t3=$(now)
  ceiling="- - - - -"
  if [[ -x "$kernel" && ${#pin[@]} -gt 0 ]]; then
    kms() { "${pin[@]}" "$1" "$kernel" 256 192 4096 200 0 0 0 1 | awk '$1 == "cdas" {print $3}'; }
    k0=$(kms 0); k1=$(kms 1)
    kms 0 >"$tmp/k0" & kpid=$!
    kms 1 >"$tmp/k1"
    wait "$kpid"
    ceiling="$k0 $k1 $(cat "$tmp/k0") $(cat "$tmp/k1") $(python3 -c "print(f'{$k0 / max($(cat "$tmp/k0"), $(cat "$tmp/k1")):.2f}')")"
  fi
  load_end=$(cut -d' ' -f1 /proc/loadavg)
  "${cli[@]}" merge --out-dir "$tmp/merged-$rep" "$tmp/two-$rep-0" "$tmp/two-$rep-1" >"$tmp/merge-$rep.log" 2>&1 \
      || { cat "$tmp/merge-$rep.log" >&2; exit 1; }
  same=yes
  for f in "$tmp/one-$rep"/vectors/*.safetensors; do
    cmp -s "$f" "$tmp/merged-$rep/vectors/$(basename "$f")" || same=no
  done
  sec() { python3 -c 'import json,sys; print(sum(json.loads(l)["seconds"] for f in sys.argv[1:] for l in open(f) if l.strip()))' "$@"; }
  c1=$(sec "$tmp/one-$rep/manifest.jsonl")
  c2=$(python3 -c "print(max($(sec "$tmp/two-$rep-0/manifest.jsonl"), $(sec "$tmp/two-$rep-1/manifest.jsonl")))")
  results+=("$rep $t0 $t1 $t2 $load $load_end $same $c1 $c2 $t3 $ceiling")
  echo "repetition $rep: one process $(python3 -c "print(f'{$t1-$t0:.1f}')") s, two shards $(python3 -c "print(f'{$t2-$t1:.1f}')") s" >&2
done
printf '%s\n' "${results[@]}" | python3 -c '
import statistics, sys
rows = [l.split() for l in sys.stdin if l.strip()]
concepts, per, cores, epochs, pinned = sys.argv[1:6]
print(f"Machine: {cores} cores; demo model (GPT-2 shape, 4 blocks, d=192), fp32; {concepts} concepts x {per} pairs, "
      f"{epochs} epochs, batch 8, responses cut to 32 tokens, layer 2; every process --threads 1{pinned}; wall time from "
      f"start to the last exit, JVM start and model load included.\n")
print("| repetition | load at start / end | one process, s | two shards at once, s | speed-up | efficiency | concept seconds: one process / slower shard | efficiency without process start | shard 0 alone, s | efficiency if the shards ran as fast as alone | kernel ms: core 0, core 1 alone; both at once | machine ceiling | merged vectors = one process |")
print("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---|")
sp, ss, sa, sc = [], [], [], []
for rep, t0, t1, t2, l0, l1, same, c1, c2, t3, k0, k1, p0, p1, ceil in rows:
    kernel = "not measured" if k0 == "-" else f"{k0}, {k1}; {p0}, {p1}"
    if ceil != "-":
        sc.append(float(ceil))
    one, two, c1, c2, alone = float(t1) - float(t0), float(t2) - float(t1), float(c1), float(c2), float(t3) - float(t2)
    sp.append(one / two)
    ss.append(c1 / c2)
    sa.append(one / alone)
    print(f"| {rep} | {l0} / {l1} | {one:.1f} | {two:.1f} | {one / two:.2f}x | {one / two / 2:.2f} | {c1:.1f} / {c2:.1f} | {c1 / c2 / 2:.2f} | {alone:.1f} | {one / alone / 2:.2f} | {kernel} | {ceil} | {same} |")
m, n, a = statistics.median(sp), statistics.median(ss), statistics.median(sa)
print(f"\nMedian speed-up {m:.2f}x, efficiency {m / 2:.2f} (target: at least 0.9); from the seconds of each concept in the "
      f"manifests (training, factors and files, without JVM start and model load), efficiency {n / 2:.2f}; had each shard "
      f"run as fast as shard 0 alone (the cost of the fixed per-process work only), efficiency {a / 2:.2f}" +
      (f"; the machine ceiling (the kernel on one thread, core 0 alone against both cores at once) "
       f"{statistics.median(sc):.2f}." if sc else "."))
' "$concepts" "$per" "$(nproc)" "$epochs" "$([[ ${#pin[@]} -gt 0 ]] && echo ', pinned to one core each (taskset)')"

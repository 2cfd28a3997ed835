#!/usr/bin/env bash
# The concept fan-out with real processes (run by scripts/test.sh after the build): the concepts
# 7, 11 and 20 of the test fixture java/src/test/resources/data/fanout.jsonl trained by one
# process, and by two processes started at once with torchrun's RANK=0/1, WORLD_SIZE=2, then
# merged; the vectors and loss curves must be equal byte for byte. CDAS_CLI overrides the command
# (default dist/bin/cdas-native).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$CDAS_ROOT"
fail() { echo "test-fanout: FAILED: $*" >&2; exit 1; }
read -r -a cli <<<"${CDAS_CLI:-dist/bin/cdas-native}"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/cdas-fanout-test.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
train() {
  "${cli[@]}" train --model demo/model --data java/src/test/resources/data/fanout.jsonl --layer 1 --concepts 7,11,20 \
      --epochs 1 --batch 8 --max-response-tokens 8 --threads 1 "$@"
}
echo "== concept fan-out: one process, then two shards (RANK=0/1, WORLD_SIZE=2) at once and merge" >&2
start=$(date +%s)
train --out-dir "$tmp/one" >"$tmp/one.log" 2>&1 || { cat "$tmp/one.log" >&2; fail "one process"; }
RANK=0 WORLD_SIZE=2 train --out-dir "$tmp/shard-0" >"$tmp/shard-0.log" 2>&1 & pid0=$!
RANK=1 WORLD_SIZE=2 train --out-dir "$tmp/shard-1" >"$tmp/shard-1.log" 2>&1 & pid1=$!
wait $pid0 || { cat "$tmp/shard-0.log" >&2; fail "shard 0"; }
wait $pid1 || { cat "$tmp/shard-1.log" >&2; fail "shard 1"; }
grep -q "shard 1/2 (torchrun: RANK=1, WORLD_SIZE=2)" "$tmp/shard-1.log" || { cat "$tmp/shard-1.log" >&2; fail "shard 1 did not say where its shard came from"; }
"${cli[@]}" merge --out-dir "$tmp/merged" "$tmp/shard-0" "$tmp/shard-1" >"$tmp/merge.log" 2>&1 || { cat "$tmp/merge.log" >&2; fail "merge"; }
n=0
for f in "$tmp"/one/vectors/*; do
  cmp -s "$f" "$tmp/merged/vectors/$(basename "$f")" || fail "$(basename "$f") differs between one process and the merged shards"
  n=$((n + 1))
done
[[ $n == 9 ]] || fail "expected 3 concepts x (vector, loss csv, loss png) = 9 files, found $n"
echo "   3 concepts, 9 files equal byte for byte ($(( $(date +%s) - start )) s)" >&2

#!/usr/bin/env bash
# Trains every steering method this build knows on the bundled demo and prints one comparison
# table (demo/README.md, "Every method on the demo"): eval's measures on the 45 held-out pairs at
# m = 1. A method the build does not know is skipped with a line saying so, so the table can be
# rerun as methods are added.
#
#   bash scripts/compare-methods.sh [METHOD ...]       (default: all rows of the README's table)
#
# Environment:
#   CDAS_CLI          the command to run (default: dist/bin/cdas-native; build it with scripts/build.sh)
#   CDAS_COMPARE_DIR  where vectors, eval reports and logs go (default: $TMPDIR/cdas-compare)
#   CDAS_JUDGE_URL, CDAS_JUDGE_MODEL  the judge for diffmean-tuned's factor selection (evaluate
#                     --judge-url/--judge-model; the key from OPENAI_API_KEY). Without them the demo
#                     model judges itself with the demo's short templates; it is no instruct model,
#                     rates almost nothing, and then no factor can be tuned (the row says so).
#   CDAS_TUNE_FACTORS the grid for diffmean-tuned (default 0.125,0.25,0.5,1)
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CLI="${CDAS_CLI:-$ROOT/dist/bin/cdas-native}"
OUT="${CDAS_COMPARE_DIR:-${TMPDIR:-/tmp}/cdas-compare}"
GRID="${CDAS_TUNE_FACTORS:-0.125,0.25,0.5,1}"
METHODS=("$@")
if [[ ${#METHODS[@]} -eq 0 ]]; then
  METHODS=(cdas das diffmean diffmean-tuned prompt reps bipo loreft)
fi
if [[ ! -x "$CLI" ]] && ! command -v "$CLI" >/dev/null 2>&1; then
  echo "compare-methods: $CLI not found; run scripts/build.sh first or set CDAS_CLI" >&2
  exit 2
fi
mkdir -p "$OUT"
MODEL="$ROOT/demo/model"
HELDOUT="$ROOT/demo/data/startrek.heldout.jsonl"
ROWS="$OUT/rows.tsv"
: > "$ROWS"

# Trains METHOD with the demo's settings (train with no arguments), echoes the vector's path.
train() {
  local method=$1 log="$OUT/$1.train.log"
  if ! TMPDIR="$OUT" "$CLI" train --method "$method" > "$log" 2> "$log.err"; then
    if grep -q -- "--method must be one of" "$log.err"; then
      echo "skipped $method: this build does not know it ($(grep -m1 -- '--method must be one of' "$log.err" | sed 's/^error: //'))" >&2
      return 3
    fi
    echo "failed $method: train exited non-zero; see $log.err" >&2
    return 1
  fi
  sed -n 's/^wrote //p' "$log" | head -1
}

# Runs eval on the held-out pairs and appends a row for LABEL.
evaluate_row() {
  local label=$1 vector=$2
  if ! "$CLI" eval --model "$MODEL" --vector "$vector" --data "$HELDOUT" --out "$OUT/$label.eval.json" \
      > "$OUT/$label.eval.log" 2>&1; then
    echo "failed $label: eval exited non-zero; see $OUT/$label.eval.log" >&2
    printf '%s\tfailed\t\t\t\n' "$label" >> "$ROWS"
    return
  fi
  python3 - "$label" "$OUT/$label.eval.json" >> "$ROWS" <<'EOF'
import json, sys
label, path = sys.argv[1], sys.argv[2]
j = json.load(open(path))
def fmt(v): return ",".join("%.2f" % x for x in v)
how = {"clamp": "a", "add": "f", "prompt": "s"}[j["intervention"]]
kind = {"clamp": "clamp", "add": "added", "prompt": "sign: instruction"}[j["intervention"]]
factors = "%s+ %s, %s- %s (%s)" % (how, fmt(j["factor_positive"]), how, fmt(j["factor_negative"]), kind)
c, n, d = j["concept_responses"], j["neutral_responses"], j["neutral_prompts"]
print("\t".join([label, factors, "%+.3f" % c["delta"], "%+.3f" % n["delta"],
                 "%.3f / %.3f" % (d["inject"]["kl"], d["suppress"]["kl"])]))
EOF
}

declare -A VECTOR
for method in "${METHODS[@]}"; do
  echo "== $method" >&2
  if [[ $method == diffmean-tuned ]]; then
    dm="${VECTOR[diffmean]:-}"
    if [[ -z $dm ]]; then
      dm=$(train diffmean) || { echo "skipped diffmean-tuned: no diffmean vector" >&2; continue; }
      VECTOR[diffmean]=$dm
    fi
    judge=(--judge-model-dir "$MODEL" --judge-max-tokens 8
           --judge-template-concept "$ROOT/demo/data/judge-short-concept.txt"
           --judge-template-instruction "$ROOT/demo/data/judge-short-instruction.txt"
           --judge-template-fluency "$ROOT/demo/data/judge-short-fluency.txt")
    if [[ -n ${CDAS_JUDGE_URL:-} && -n ${CDAS_JUDGE_MODEL:-} ]]; then
      judge=(--judge-url "$CDAS_JUDGE_URL" --judge-model "$CDAS_JUDGE_MODEL")
    fi
    tuned="$OUT/diffmean-tuned.safetensors"
    "$CLI" evaluate --model "$MODEL" --vector "$dm" --instructions "$ROOT/demo/data/eval.instructions.jsonl" \
        --factors "$GRID" --max-new-tokens 32 "${judge[@]}" --out-dir "$OUT/diffmean-tuned.evaluate" \
        --write-vector "$tuned" > "$OUT/diffmean-tuned.evaluate.log" 2>&1
    rc=$?
    if [[ $rc -eq 2 ]] && grep -q "Unknown option: '--write-vector'" "$OUT/diffmean-tuned.evaluate.log"; then
      echo "skipped diffmean-tuned: this build's evaluate has no --write-vector" >&2
      continue
    fi
    if [[ $rc -eq 1 ]]; then
      echo "diffmean-tuned: no tuned factor (see $OUT/diffmean-tuned.evaluate.log)" >&2
      printf '%s\tno tuned factor: the judge rated no validation reply\t\t\t\n' "diffmean-tuned" >> "$ROWS"
      continue
    elif [[ $rc -ne 0 ]]; then
      echo "failed diffmean-tuned: evaluate exited $rc; see $OUT/diffmean-tuned.evaluate.log" >&2
      printf '%s\tfailed\t\t\t\n' "diffmean-tuned" >> "$ROWS"
      continue
    fi
    evaluate_row diffmean-tuned "$tuned"
    continue
  fi
  v=$(train "$method")
  case $? in
    0) VECTOR[$method]=$v; evaluate_row "$method" "$v" ;;
    3) ;;
    *) printf '%s\tfailed\t\t\t\n' "$method" >> "$ROWS" ;;
  esac
done

echo
echo "eval on demo/data/startrek.heldout.jsonl (45 pairs) at m = 1: change in mean log-likelihood per"
echo "response token (128 tokens) of the concept responses injected and of the neutral responses"
echo "suppressed; KL per token on the neutral prompts' greedy continuations. Files: $OUT"
echo
echo "| method | factors | concept responses, injected | neutral responses, suppressed | KL inject / suppress |"
echo "|---|---|---|---|---|"
while IFS=$'\t' read -r label factors inj sup kl; do
  echo "| $label | $factors | $inj | $sup | $kl |"
done < "$ROWS"

#!/usr/bin/env bash
# Trains every steering method this build knows on the bundled demo and prints one comparison
# table (demo/README.md, "Every method on the demo"):
#   * eval's log-likelihood measures on the 45 held-out pairs at m = 1 (concept responses
#     injected, neutral responses suppressed, KL on the neutral prompts);
#   * evaluate's judged steering scores (--mode inject) on the demo's held-out instructions at the
#     unit factor and at the factor tuned on their validation half.
# diffmean-tuned is diffmean with its factor multiplied by the m that evaluate --write-vector tunes.
# A method the build does not know is skipped with a line saying so.
#
#   bash scripts/compare-methods.sh [METHOD ...]       (default: all rows of the README's table)
#
# Environment:
#   CDAS_CLI           the command to run (default: dist/bin/cdas-native; build it with scripts/build.sh)
#   CDAS_COMPARE_DIR   where vectors, reports and logs go (default: $TMPDIR/cdas-compare)
#   CDAS_COMPARE_REUSE 1: a method whose vector this script already trained in CDAS_COMPARE_DIR
#                      (its train log names it and the file is there) is not trained again
#   CDAS_JUDGE_URL, CDAS_JUDGE_MODEL  judge with an OpenAI-compatible endpoint (evaluate
#                      --judge-url/--judge-model; the key from OPENAI_API_KEY). Without them the demo
#                      model judges itself offline with the demo's short templates and
#                      --judge-scoring loglik (the most likely of "Rating: 0/1/2"): a 2.6 M-parameter
#                      quote generator is no judge, so those scores show that the pipeline runs, not
#                      how good a method is.
#   CDAS_EVAL_FACTORS  evaluate's factor grid (default 0.25,0.5,1,2; 1 is always in it)
#   CDAS_EVAL_TOKENS   tokens per judged reply (default 32)
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CLI="${CDAS_CLI:-$ROOT/dist/bin/cdas-native}"
OUT="${CDAS_COMPARE_DIR:-${TMPDIR:-/tmp}/cdas-compare}"
GRID="${CDAS_EVAL_FACTORS:-0.25,0.5,1,2}"
TOKENS="${CDAS_EVAL_TOKENS:-32}"
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
INSTRUCTIONS="$ROOT/demo/data/eval.instructions.jsonl"
ROWS="$OUT/rows.tsv"
: > "$ROWS"
STARTED=$(date +%s)

if [[ -n ${CDAS_JUDGE_URL:-} && -n ${CDAS_JUDGE_MODEL:-} ]]; then
  JUDGE=(--judge-url "$CDAS_JUDGE_URL" --judge-model "$CDAS_JUDGE_MODEL")
  JUDGE_NAME="$CDAS_JUDGE_MODEL at $CDAS_JUDGE_URL"
else
  JUDGE=(--judge-model-dir "$MODEL" --judge-scoring loglik
         --judge-template-concept "$ROOT/demo/data/judge-short-concept.txt"
         --judge-template-instruction "$ROOT/demo/data/judge-short-instruction.txt"
         --judge-template-fluency "$ROOT/demo/data/judge-short-fluency.txt")
  JUDGE_NAME="the demo model itself, --judge-scoring loglik, the demo's short templates"
fi

# Trains METHOD with the demo's settings (train with no arguments), echoes the vector's path.
train() {
  local method=$1 log="$OUT/$1.train.log" v
  if [[ ${CDAS_COMPARE_REUSE:-0} == 1 && -f $log ]]; then
    v=$(sed -n 's/^wrote //p' "$log" | head -1)
    if [[ -n $v && -f $v ]]; then
      echo "reusing $v (CDAS_COMPARE_REUSE=1)" >&2
      echo "$v"
      return 0
    fi
  fi
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

# Runs eval on the held-out pairs; writes LABEL's log-likelihood columns (tab-separated) to stdout.
eval_columns() {
  local label=$1 vector=$2
  if ! "$CLI" eval --model "$MODEL" --vector "$vector" --data "$HELDOUT" --out "$OUT/$label.eval.json" \
      > "$OUT/$label.eval.log" 2>&1; then
    echo "failed $label: eval exited non-zero; see $OUT/$label.eval.log" >&2
    printf 'eval failed\t\t\t'
    return
  fi
  python3 - "$OUT/$label.eval.json" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
def fmt(v): return ",".join("%.2f" % x for x in v)
how = {"clamp": "a", "add": "f", "prompt": "s", "loreft": "edit", "null_out": "f"}.get(j["intervention"], "m")
kind = {"clamp": "clamp", "add": "added", "prompt": "sign: instruction", "loreft": "sign: edit"}.get(j["intervention"], j["intervention"])
factors = "%s+ %s, %s- %s (%s)" % (how, fmt(j["factor_positive"]), how, fmt(j["factor_negative"]), kind)
c, n, d = j["concept_responses"], j["neutral_responses"], j["neutral_prompts"]
sys.stdout.write("\t".join([factors, "%+.3f" % c["delta"], "%+.3f" % n["delta"],
                            "%.3f / %.3f" % (d["inject"]["kl"], d["suppress"]["kl"])]))
EOF
}

# Runs evaluate --mode inject on the held-out instructions; writes the judged columns to stdout.
# Extra arguments go to evaluate (--write-vector FILE).
judged_columns() {
  local label=$1 vector=$2 grid=$GRID
  shift 2
  # a prompt file's factors are only signs: every m > 0 gives the same replies (docs/evaluation.md)
  [[ $label == prompt ]] && grid=1
  "$CLI" evaluate --model "$MODEL" --vector "$vector" --instructions "$INSTRUCTIONS" --mode inject \
      --factors "$grid" --max-new-tokens "$TOKENS" "${JUDGE[@]}" --out-dir "$OUT/$label.evaluate" "$@" \
      > "$OUT/$label.evaluate.log" 2>&1
  local rc=$?
  if [[ $rc -ne 0 && $rc -ne 1 ]] || [[ ! -f $OUT/$label.evaluate/report.json ]]; then
    echo "failed $label: evaluate exited $rc; see $OUT/$label.evaluate.log" >&2
    printf 'evaluate failed\t\t'
    return
  fi
  python3 - "$OUT/$label.evaluate/report.json" <<'EOF'
import json, math, sys
j = json.load(open(sys.argv[1]))
def cell(s):
    def f(k):
        v = s.get(k)
        return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else "%.2f" % v
    return "%s / %s / %s / %s" % (f("concept"), f("instruction"), f("fluency"), f("harmonic"))
unit = cell(j["result"]["unit"]["test"])
t = j["result"]["tuned"]
tuned = ("m = %g: %s" % (t["factor"], cell(t["test"]))) if t.get("factor") is not None else "none tuned"
sys.stdout.write(unit + "\t" + tuned)
EOF
}

declare -A VECTOR
for method in "${METHODS[@]}"; do
  echo "== $method" >&2
  t0=$(date +%s)
  if [[ $method == diffmean-tuned ]]; then
    dm="${VECTOR[diffmean]:-}"
    if [[ -z $dm ]]; then
      dm=$(train diffmean) || { echo "skipped diffmean-tuned: no diffmean vector" >&2; continue; }
      VECTOR[diffmean]=$dm
    fi
    tuned="$OUT/diffmean-tuned.safetensors"
    rm -f "$tuned"
    # diffmean's own evaluate (same grid, judge and out-dir) tunes m and writes the tuned vector;
    # its replies and judgements are reused when the diffmean row ran first
    judged_columns diffmean "$dm" --write-vector "$tuned" > /dev/null
    if [[ ! -f $tuned ]]; then
      echo "diffmean-tuned: no tuned factor (see $OUT/diffmean.evaluate.log)" >&2
      printf '%s\tno tuned factor: the judge rated no validation reply\t\t\t\t\t\t%s\n' "diffmean-tuned" $(( $(date +%s) - t0 )) >> "$ROWS"
      continue
    fi
    e=$(eval_columns diffmean-tuned "$tuned")
    g=$(judged_columns diffmean-tuned "$tuned")
    printf '%s\t%s\t%s\t%s\n' "diffmean-tuned" "$e" "$g" $(( $(date +%s) - t0 )) >> "$ROWS"
    continue
  fi
  v=$(train "$method")
  case $? in
    0) VECTOR[$method]=$v
       e=$(eval_columns "$method" "$v")
       g=$(judged_columns "$method" "$v")
       printf '%s\t%s\t%s\t%s\n' "$method" "$e" "$g" $(( $(date +%s) - t0 )) >> "$ROWS" ;;
    3) ;;
    *) printf '%s\ttrain failed\t\t\t\t\t\t%s\n' "$method" $(( $(date +%s) - t0 )) >> "$ROWS" ;;
  esac
done

echo
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -m), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg);"
echo "$(( $(date +%s) - STARTED )) s in all. Files: $OUT"
echo "Log-likelihood columns: eval on demo/data/startrek.heldout.jsonl (45 pairs) at m = 1, change in mean"
echo "log-likelihood per response token (128 tokens) of the concept responses injected and of the neutral"
echo "responses suppressed; KL per token on the neutral prompts' greedy continuations."
echo "Judged columns: evaluate --mode inject on demo/data/eval.instructions.jsonl (6 instructions, 3 for"
echo "validation, 3 for test), m in {$GRID}, $TOKENS greedy tokens per reply; test means of concept /"
echo "instruction / fluency (0-2) / per-reply harmonic mean, at m = 1 and at the m tuned on validation."
echo "Judge: $JUDGE_NAME."
echo
echo "| method | factors | concept responses, injected | neutral responses, suppressed | KL inject / suppress | judged at m = 1 (C / I / F / H) | judged at the tuned m | seconds |"
echo "|---|---|---|---|---|---|---|---|"
while IFS=$'\t' read -r label factors inj sup kl unit tuned secs; do
  echo "| $label | $factors | $inj | $sup | $kl | $unit | $tuned | $secs |"
done < "$ROWS"

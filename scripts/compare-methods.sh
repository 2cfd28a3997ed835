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
#   CDAS_COMPARE_REUSE 1: reuse what an earlier run of this script left in CDAS_COMPARE_DIR: a
#                      vector its train log names (not trained again) and an eval report newer than
#                      the vector (not run again); evaluate reuses its replies and judgements anyway.
#                      Runs for different methods may go on at the same time in one folder.
#   CDAS_COMPARE_TABLE_ONLY  1: run nothing, print the table from the rows that runs (possibly several
#                      at once, for different methods) left in CDAS_COMPARE_DIR
#   CDAS_TRAIN_ARGS    extra options for train of the optimised methods (cdas, das, reps, bipo,
#                      loreft), e.g. "--epochs 2 --max-response-tokens 32" for a quicker table; the
#                      demo's own settings (no arguments) are used otherwise
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
mkdir -p "$OUT/rows"
read -r -a TRAIN_ARGS <<< "${CDAS_TRAIN_ARGS:-}"
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
  local extra=()
  [[ $method != diffmean && $method != prompt ]] && extra=("${TRAIN_ARGS[@]}")
  local t0
  t0=$(date +%s)
  if ! TMPDIR="$OUT" "$CLI" train --method "$method" "${extra[@]}" > "$log" 2> "$log.err"; then
    if grep -q -- "--method must be one of" "$log.err"; then
      echo "skipped $method: this build does not know it ($(grep -m1 -- '--method must be one of' "$log.err" | sed 's/^error: //'))" >&2
      return 3
    fi
    echo "failed $method: train exited non-zero; see $log.err" >&2
    return 1
  fi
  echo $(( $(date +%s) - t0 )) > "$OUT/$method.train.seconds"
  sed -n 's/^wrote //p' "$log" | head -1
}

# Runs eval on the held-out pairs; writes LABEL's log-likelihood columns (tab-separated) to stdout.
eval_columns() {
  local label=$1 vector=$2
  if [[ ${CDAS_COMPARE_REUSE:-0} == 1 && -f $OUT/$label.eval.json && $OUT/$label.eval.json -nt $vector ]]; then
    echo "reusing $OUT/$label.eval.json (CDAS_COMPARE_REUSE=1)" >&2
  elif ! "$CLI" eval --model "$MODEL" --vector "$vector" --data "$HELDOUT" --out "$OUT/$label.eval.json" \
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
    printf 'evaluate failed\t'
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

# The seconds train took for METHOD in the run that trained it.
train_seconds() {
  cat "$OUT/$1.train.seconds" 2>/dev/null || echo "?"
}

declare -A VECTOR
for method in "${METHODS[@]}"; do
  # CDAS_COMPARE_TABLE_ONLY=1: only print the table from the rows earlier runs left in CDAS_COMPARE_DIR
  [[ ${CDAS_COMPARE_TABLE_ONLY:-0} == 1 ]] && break
  echo "== $method" >&2
  if [[ $method == diffmean-tuned ]]; then
    dm="${VECTOR[diffmean]:-}"
    if [[ -z $dm ]]; then
      dm=$(train diffmean) || { echo "skipped diffmean-tuned: no diffmean vector" >&2; continue; }
      VECTOR[diffmean]=$dm
    fi
    tuned="$OUT/diffmean-tuned.safetensors"
    # diffmean's own evaluate (same grid, judge and out-dir) tunes m and writes the tuned vector;
    # its replies and judgements are reused when the diffmean row ran first
    rm -f "$tuned.new"
    judged_columns diffmean "$dm" --write-vector "$tuned.new" > /dev/null
    if [[ ! -f $tuned.new ]]; then
      echo "diffmean-tuned: no tuned factor (see $OUT/diffmean.evaluate.log)" >&2
      printf '%s\tno tuned factor: the judge rated no validation reply\t\t\t\t\t\t%s\n' "diffmean-tuned" "$(train_seconds diffmean)" > "$OUT/rows/$method.tsv"
      continue
    fi
    # keep the older file (and so the reuse of its eval report) when the tuning did not change
    if [[ -f $tuned ]] && cmp -s "$tuned" "$tuned.new"; then rm -f "$tuned.new"; else mv -f "$tuned.new" "$tuned"; fi
    e=$(eval_columns diffmean-tuned "$tuned")
    g=$(judged_columns diffmean-tuned "$tuned")
    printf '%s\t%s\t%s\t%s\n' "diffmean-tuned" "$e" "$g" "$(train_seconds diffmean)" > "$OUT/rows/$method.tsv"
    continue
  fi
  v=$(train "$method")
  case $? in
    0) VECTOR[$method]=$v
       e=$(eval_columns "$method" "$v")
       g=$(judged_columns "$method" "$v")
       printf '%s\t%s\t%s\t%s\n' "$method" "$e" "$g" "$(train_seconds "$method")" > "$OUT/rows/$method.tsv" ;;
    3) ;;
    *) printf '%s\ttrain failed\t\t\t\t\t\t\n' "$method" > "$OUT/rows/$method.tsv" ;;
  esac
done

echo
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(uname -m), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg);"
echo "$(( $(date +%s) - STARTED )) s in all (this run). Files: $OUT"
if [[ -n ${CDAS_TRAIN_ARGS:-} ]]; then
  echo "Training: train --method M $CDAS_TRAIN_ARGS for cdas, das, reps, bipo, loreft (the demo's settings otherwise)."
fi
echo "Log-likelihood columns: eval on demo/data/startrek.heldout.jsonl (45 pairs) at m = 1, change in mean"
echo "log-likelihood per response token (128 tokens) of the concept responses injected and of the neutral"
echo "responses suppressed; KL per token on the neutral prompts' greedy continuations."
echo "Judged columns: evaluate --mode inject on demo/data/eval.instructions.jsonl (6 instructions, 3 for"
echo "validation, 3 for test), m in {$GRID} (prompt: 1), $TOKENS greedy tokens per reply; test means of"
echo "concept / instruction / fluency (0-2) / per-reply harmonic mean, at m = 1 and at the m tuned on validation."
echo "Judge: $JUDGE_NAME."
echo
echo "| method | factors | concept responses, injected | neutral responses, suppressed | KL inject / suppress | judged at m = 1 (C / I / F / H) | judged at the tuned m | training, s |"
echo "|---|---|---|---|---|---|---|---|"
for method in "${METHODS[@]}"; do
  [[ -f $OUT/rows/$method.tsv ]] || continue
  while IFS=$'\t' read -r label factors inj sup kl unit tuned secs; do
    echo "| $label | $factors | $inj | $sup | $kl | $unit | $tuned | $secs |"
  done < "$OUT/rows/$method.tsv"
done

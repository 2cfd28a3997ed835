#!/usr/bin/env bash
# Trains RePS, BiPO and LoReFT on the bundled demo (train --method M with no other arguments: the
# demo's pairs, layer, settings and seed) and prints the "RePS, BiPO, LoReFT" table of
# demo/README.md: eval on the 45 held-out pairs at m = 1, the change of the mean log-likelihood
# per response token (128 tokens) and the KL of the next-token distributions on the neutral
# prompts, as eval reports them. Usage: tools/demo_baselines.sh [DIST]  (default: dist, after
# scripts/build.sh). Writes its vectors and eval results under ${TMPDIR:-/tmp}/cdas-demo.
set -euo pipefail
dist="${1:-dist}"
cli="$dist/bin/cdas-native"
out="${TMPDIR:-/tmp}/cdas-demo"
mkdir -p "$out"
echo "| method | factors | concept responses, injected | neutral responses, suppressed | KL inject / suppress | training |"
echo "|---|---|---|---|---|---|"
for m in reps bipo loreft; do
  start=$(date +%s)
  "$cli" train --method "$m" >"$out/train-$m.log" 2>&1
  secs=$(( $(date +%s) - start ))
  vector="$out/startrek-$m.safetensors"
  "$cli" eval --model "$dist/demo/model" --vector "$vector" --data "$dist/demo/data/startrek.heldout.jsonl" \
    --out "$out/eval-$m.json" >/dev/null
  python3 - "$m" "$out/eval-$m.json" "$secs" "$out/train-$m.log" <<'EOF'
import json, re, sys
m, path, secs, log = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
e = json.load(open(path))
fp, fn = e["factor_positive"], e["factor_negative"]
factors = {"reps": "f+ %.2f added, null-out to suppress" % fp[0],
           "bipo": "f± ±%.2f (added)" % fp[0],
           "loreft": "edit ± (rank %d)" % len(fp)}[m]
c = e["concept_responses"]["delta"]
n = e["neutral_responses"]["delta"]
ki = e["neutral_prompts"]["inject"]["kl"]
ks = e["neutral_prompts"]["suppress"]["kl"]
last = [l for l in open(log) if l.startswith("trained in")]
loss = re.search(r"first step ([0-9.]+), last step ([0-9.]+)", last[-1]) if last else None
tr = "%s s, loss %s -> %s" % (secs, loss.group(1), loss.group(2)) if loss else "%s s" % secs
print("| %s | %s | %+.3f | %+.3f | %.3f / %.3f | %s |" % (m, factors, c, n, ki, ks, tr))
EOF
done

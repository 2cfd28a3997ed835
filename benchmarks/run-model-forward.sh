#!/usr/bin/env bash
# Forward tokens/s of the native model runtime against transformers on a GPT-2-124M-shaped
# checkpoint, both in one Python process (benchmarks/model/forward_vs_transformers.py), then the
# "Model runtime" table of benchmarks/RESULTS.md. Needs a Python with torch and transformers:
# CDAS_PYTHON, else .deps/pyenv/bin/python (tools/README.md sets it up), else python3.
#   bash benchmarks/run-model-forward.sh [--threads N] [--repeat N]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${CDAS_BUILD_DIR:-$root/build}"
library="${CDAS_LIBRARY:-}"
for candidate in "$build/libcdas.so" "$root/dist/lib/libcdas.so"; do
  [[ -z "$library" && -f "$candidate" ]] && library="$candidate"
done
[[ -n "$library" ]] || { echo "no libcdas.so: run scripts/build.sh first (or set CDAS_LIBRARY)" >&2; exit 1; }
python="${CDAS_PYTHON:-}"
[[ -z "$python" && -x "$root/.deps/pyenv/bin/python" ]] && python="$root/.deps/pyenv/bin/python"
python="${python:-python3}"
exec "$python" "$root/benchmarks/model/forward_vs_transformers.py" --library "$library" \
  --results "$root/benchmarks/RESULTS.md" "$@"

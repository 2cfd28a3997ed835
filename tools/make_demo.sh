#!/usr/bin/env bash
# Rebuilds the bundled demo (demo/model, demo/data) from the Debian `fortunes` packages.
# The packages are fetched with apt-get download and unpacked with dpkg -x into a scratch folder
# (nothing is installed, nothing from it is committed). Extra arguments go to make_demo.py,
# e.g. `bash tools/make_demo.sh --minutes 12` or `bash tools/make_demo.sh --data-only`.
# Needs a Python with torch, transformers and tokenizers (default: .deps/pyenv, see tools/README.md).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-$ROOT/.deps/pyenv/bin/python}"
SCRATCH="${CDAS_DEMO_SCRATCH:-$(mktemp -d)}"
mkdir -p "$SCRATCH/debs"
( cd "$SCRATCH/debs" && apt-get download fortunes fortunes-min >/dev/null )
for deb in "$SCRATCH"/debs/*.deb; do dpkg -x "$deb" "$SCRATCH/root"; done
exec nice -n 19 "$PY" "$ROOT/tools/make_demo.py" --fortunes "$SCRATCH/root/usr/share/games/fortunes" \
    --out "$ROOT/demo" "$@"

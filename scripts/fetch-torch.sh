#!/usr/bin/env bash
# Unpacks the libtorch that the torch CPU wheel carries (headers, libraries, CMake config) into
# $1/torch, without installing anything into any Python environment. The wheel comes from pip's
# configured index (offline mirrors included); a libtorch already there is kept.
set -euo pipefail
deps_dir="${1:?usage: fetch-torch.sh DEPS_DIR}"
version="${CDAS_TORCH_VERSION:-2.13.0+cpu}"
if [[ -f "$deps_dir/torch/share/cmake/Torch/TorchConfig.cmake" ]]; then
  exit 0
fi
source "$(dirname "${BASH_SOURCE[0]}")/pip-index.sh"
mkdir -p "$deps_dir/wheels"
echo "cdas: fetching torch==$version (CPU wheel, for libtorch) into $deps_dir" >&2
python3 -m pip download --quiet --no-deps "${CDAS_PIP_INDEX_ARGS[@]}" \
  --only-binary=:all: -d "$deps_dir/wheels" "torch==$version"
wheel=$(ls -t "$deps_dir"/wheels/torch-*.whl | head -n1)
tmp="$deps_dir/torch.partial"
rm -rf "$tmp"
python3 - "$wheel" "$tmp" <<'PY'
import sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z:
    for name in z.namelist():
        if name.startswith(("torch/include/", "torch/lib/", "torch/share/")):
            z.extract(name, dest)
PY
rm -rf "$deps_dir/torch"
mv "$tmp/torch" "$deps_dir/torch"
rm -rf "$tmp"

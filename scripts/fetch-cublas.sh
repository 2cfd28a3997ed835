#!/usr/bin/env bash
# Unpacks cuBLAS (headers and the libcublas/libcublasLt shared libraries) from the nvidia-cublas
# wheel into $1/cublas/{include,lib}, without installing anything into any Python environment.
# Used by cmake/CdasCuda.cmake when the CUDA toolkit has no cuBLAS of its own. A wheel already in
# $1/wheels is used as is; otherwise it comes from pip's configured index (offline mirrors
# included). An unpacked cuBLAS already there is kept.
set -euo pipefail
deps_dir="${1:?usage: fetch-cublas.sh DEPS_DIR}"
version="${CDAS_CUBLAS_VERSION:-13.1.1.3}"
dest="$deps_dir/cublas"
if [[ -f "$dest/include/cublas_v2.h" && -e "$dest/lib/libcublas.so" ]]; then
  exit 0
fi
mkdir -p "$deps_dir/wheels"
wheel=$(ls -t "$deps_dir"/wheels/nvidia_cublas-*.whl 2>/dev/null | head -n1 || true)
if [[ -z "$wheel" ]]; then
  source "$(dirname "${BASH_SOURCE[0]}")/pip-index.sh"
  echo "cdas: fetching nvidia-cublas==$version into $deps_dir/wheels" >&2
  python3 -m pip download --quiet --no-deps "${CDAS_PIP_INDEX_ARGS[@]}" \
    --only-binary=:all: -d "$deps_dir/wheels" "nvidia-cublas==$version"
  wheel=$(ls -t "$deps_dir"/wheels/nvidia_cublas-*.whl | head -n1)
fi
echo "cdas: unpacking cuBLAS from $(basename "$wheel") into $dest" >&2
tmp="$deps_dir/cublas.partial"
rm -rf "$tmp"
python3 - "$wheel" "$tmp" <<'PY'
import os, re, shutil, sys, zipfile
wheel, dest = sys.argv[1], sys.argv[2]
# The wheel lays cuBLAS out as nvidia/cu<major>/{include,lib}/ (nvidia/cublas/ in older ones).
wanted = re.compile(r"^nvidia/[^/]+/(include/.+\.h|lib/libcublas(Lt)?\.so[.0-9]*)$")
found = 0
with zipfile.ZipFile(wheel) as z:
    for info in z.infolist():
        m = wanted.match(info.filename)
        if not m:
            continue
        out = os.path.join(dest, m.group(1))
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with z.open(info) as src, open(out, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 22)
        found += 1
if found == 0:
    sys.exit("cdas: no cuBLAS headers or libraries found in " + wheel)
PY
# Unversioned names for the linker; the SONAMEs (libcublas.so.13) stay what the loader looks for.
for lib in libcublas libcublasLt; do
  real=$(cd "$tmp/lib" && ls "$lib".so.* | sort | head -n1)
  ln -sf "$real" "$tmp/lib/$lib.so"
done
test -f "$tmp/include/cublas_v2.h"
rm -rf "$dest"
mv "$tmp" "$dest"

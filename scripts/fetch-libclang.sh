#!/usr/bin/env bash
# Puts the libclang Python package (with its own libclang.so) into $1/pyclang for the bindings
# generator, without touching any Python environment.
set -euo pipefail
deps_dir="${1:?usage: fetch-libclang.sh DEPS_DIR}"
[[ -d "$deps_dir/pyclang/clang" ]] && exit 0
source "$(dirname "${BASH_SOURCE[0]}")/pip-index.sh"
python3 -m pip install --quiet --no-deps "${CDAS_PIP_INDEX_ARGS[@]}" --target "$deps_dir/pyclang.partial" "libclang==18.1.1"
rm -rf "$deps_dir/pyclang" && mv "$deps_dir/pyclang.partial" "$deps_dir/pyclang"

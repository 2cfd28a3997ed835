#!/usr/bin/env bash
# Builds everything and runs every test: the native C++ tests (ctest), then the Java tests
# (JUnit, including the check that the committed bindings match native/include/cdas.h).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$CDAS_ROOT"
bash scripts/build.sh
bash scripts/fetch-libclang.sh "$CDAS_ROOT/.deps"
echo "== native tests" >&2
ctest --test-dir "$CDAS_BUILD_DIR" --output-on-failure
echo "== java tests" >&2
"${MVN[@]}" -Dcdas.libclang.path="$CDAS_ROOT/.deps/pyclang" verify
echo "== all tests passed" >&2

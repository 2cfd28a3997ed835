#!/usr/bin/env bash
# Builds everything and runs every test: dist/ moved elsewhere and run through its launcher
# (scripts/test-dist.sh), the native C++ tests (ctest), then the Java tests
# (JUnit, including the check that the committed bindings match native/include/cdas.h), then
# compiles and links the library against a CUDA build of libtorch (scripts/build-cuda-torch.sh,
# build-cuda/; nothing CUDA runs). CDAS_SKIP_CUDA_TORCH_BUILD=1 leaves that last step out.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$CDAS_ROOT"
bash scripts/build.sh
echo "== the distribution, copied away from the checkout (scripts/test-dist.sh)" >&2
bash scripts/test-dist.sh
bash scripts/fetch-libclang.sh "$CDAS_ROOT/.deps"
echo "== native tests, and the CUDA kernels executed on the CPU emulation (ctest label cuda-emulated)" >&2
ctest --test-dir "$CDAS_BUILD_DIR" --output-on-failure -j "$CDAS_JOBS"
echo "== java tests" >&2
"${MVN[@]}" -Dcdas.libclang.path="$CDAS_ROOT/.deps/pyclang" verify
bash scripts/build-cuda-torch.sh
echo "== all tests passed" >&2

#!/usr/bin/env bash
# Builds everything and runs every test: dist/ packed (scripts/package.sh), unpacked elsewhere and
# run through its launcher (scripts/test-dist.sh), the concept fan-out as two real shard processes
# plus merge against one process (scripts/test-fanout.sh), data-parallel training as two processes by
# hand and under torchrun against one process (scripts/test-distributed.sh), the native C++ tests (ctest), then the
# Java tests (JUnit, including the check that the committed bindings match native/include/cdas.h, the
# published chat templates of four model families against transformers, fetched at test time by
# scripts/fetch-published-templates.sh, and the API's Javadoc with doclint), the library as a module on the module path (scripts/test-module.sh), the
# example project that links the library (examples/steer-demo), then
# compiles and links the library against a CUDA build of libtorch (scripts/build-cuda-torch.sh,
# build-cuda/; nothing CUDA runs). CDAS_SKIP_CUDA_TORCH_BUILD=1 leaves that last step out.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$CDAS_ROOT"
# Gloo's headers for the data-parallel process group (apt-get install libgloo-dev when root with apt)
bash scripts/install-gloo-headers.sh
bash scripts/build.sh
echo "== the distribution, copied away from the checkout (scripts/test-dist.sh)" >&2
bash scripts/test-dist.sh
bash scripts/test-fanout.sh
bash scripts/test-distributed.sh
bash scripts/fetch-libclang.sh "$CDAS_ROOT/.deps"
echo "== native tests, and the CUDA kernels executed on the CPU emulation (ctest label cuda-emulated)" >&2
ctest --test-dir "$CDAS_BUILD_DIR" --output-on-failure -j "$CDAS_JOBS"
echo "== the published chat templates and transformers, for TransformersChatTemplateTest (scripts/fetch-published-templates.sh)" >&2
# A failed fetch fails the test command here: the comparison with transformers is never skipped.
published_env="$(bash scripts/fetch-published-templates.sh)"
while IFS='=' read -r name value; do
  [[ "$name" == CDAS_PUBLISHED_TEMPLATES || "$name" == CDAS_PYTHON ]] && export "$name=$value"
done <<<"$published_env"
[[ -n "${CDAS_PUBLISHED_TEMPLATES:-}" && -n "${CDAS_PYTHON:-}" ]] \
  || { echo "scripts/fetch-published-templates.sh named no templates or Python" >&2; exit 1; }
echo "== java tests" >&2
"${MVN[@]}" -Dcdas.libclang.path="$CDAS_ROOT/.deps/pyclang" verify
echo "== the library jar as JPMS module dev.cdas, from the module path (scripts/test-module.sh)" >&2
bash scripts/test-module.sh
echo "== another Maven project linking the library (examples/steer-demo): trains and steers on the demo" >&2
example_out="$(mktemp -d)"
CDAS_LIBRARY="$CDAS_ROOT/dist/lib/libcdas.so" mvn -B -ntp -q -f examples/steer-demo/pom.xml compile \
    org.codehaus.mojo:exec-maven-plugin:3.5.1:java \
    -Dexec.args="$CDAS_ROOT/demo $example_out/startrek.safetensors"
[[ -s "$example_out/startrek.safetensors" ]] || { echo "examples/steer-demo wrote no vector" >&2; exit 1; }
rm -rf "$example_out"
bash scripts/build-cuda-torch.sh
echo "== all tests passed" >&2

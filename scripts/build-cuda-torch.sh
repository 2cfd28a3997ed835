#!/usr/bin/env bash
# Compiles and links the whole native library against a CUDA build of libtorch, in its own build
# folder (build-cuda/): libcdas.so (the C ABI, the model runtime, the libtorch glue) and
# libcdas_cuda.so (the kernels). Nothing is run: this machine needs nvcc, not a GPU. The CPU build
# (scripts/build.sh, build/) is not touched.
#
# What it fetches (pip's configured index or mirror; nothing is installed into any Python
# environment), unpacked in the layout of a site-packages folder so libtorch's own RUNPATH
# ($ORIGIN/../../nvidia/cu13/lib) finds what is there:
#   .deps/torch-cuda/torch/{include,lib,share}   the torch CUDA wheel's libtorch (torch==2.14.1)
#   .deps/torch-cuda/nvidia/cu13/lib/libnvrtc*   nvidia-cuda-nvrtc: TorchConfig.cmake links NVRTC
#                                                 and the CUDA toolkit here has none
#   .deps/torch-cuda/nvidia/nccl/include/         nvidia-nccl-cu13's headers (nccl.h): the torch wheel
#                                                 ships ProcessGroupNCCL.hpp, which needs them, but not
#                                                 them; with them cmake/CdasDist.cmake compiles the
#                                                 c10d NCCL backend of train --distributed
#   .deps/torch-cuda/nvidia/cu13/include/         cuSPARSE's and cuSOLVER's headers, which
#                                                 ProcessGroupNCCL.hpp includes through ATen's
#                                                 CUDAContextLight.h (headers only)
#   .deps/cublas                                  cuBLAS for libcdas_cuda.so (scripts/fetch-cublas.sh,
#                                                 shared with the CPU build, which fetches it too)
# The CUDA toolkit (nvcc, cudart and headers) is the local one: CUDA_HOME, or the one nvcc belongs to.
# cuDNN, NCCL's library, cuFFT, cuRAND, cuSPARSE(Lt), cuFile and NVSHMEM are needed only to run libtorch,
# not to link against it, so they are not fetched: on a GPU machine build against its own torch
# (README, "Building on a GPU machine").
#
# Environment:
#   CDAS_SKIP_CUDA_TORCH_BUILD=1     do nothing (for local runs of scripts/test.sh)
#   CDAS_REQUIRE_CUDA_TORCH_BUILD=1  fail instead of skipping when no nvcc is found (.ci/run sets it)
#   CDAS_CUDA_TORCH_VERSION          torch wheel version (default 2.14.1, a CUDA 13 build)
#   CDAS_CUDA_NVRTC_VERSION          nvidia-cuda-nvrtc version (default 13.0.88, the one torch pins)
#   CDAS_CUDA_NCCL_VERSION           nvidia-nccl-cu13 version for nccl.h (default 2.30.7)
#   CDAS_CUDA_CUSPARSE_VERSION, CDAS_CUDA_CUSOLVER_VERSION  their headers' wheels (12.6.3.3, 12.0.4.66)
#   CDAS_CUDA_BUILD_DIR              build folder (default build-cuda)
#   CDAS_JOBS                        parallel compile jobs
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$CDAS_ROOT"

if [[ "${CDAS_SKIP_CUDA_TORCH_BUILD:-0}" == 1 ]]; then
  echo "== CUDA-libtorch build skipped (CDAS_SKIP_CUDA_TORCH_BUILD=1)" >&2
  exit 0
fi

# ---- the local CUDA toolkit -------------------------------------------------------------------
# The first folder with bin/nvcc and the runtime headers: CUDA_HOME, CUDA_PATH, the folder above
# the nvcc on PATH followed through links (/usr/local/bin/nvcc may be a wrapper), /usr/local/cuda.
cuda_home=""
nvcc_path=$(command -v nvcc || true)
for candidate in "${CUDA_HOME:-}" "${CUDA_PATH:-}" \
                 ${nvcc_path:+"$(dirname "$(dirname "$(readlink -f "$nvcc_path")")")"} /usr/local/cuda; do
  if [[ -n "$candidate" && -x "$candidate/bin/nvcc" && -f "$candidate/include/cuda_runtime_api.h" ]]; then
    cuda_home="$candidate"
    break
  fi
done
if [[ -z "$cuda_home" ]]; then
  if [[ "${CDAS_REQUIRE_CUDA_TORCH_BUILD:-0}" == 1 ]]; then
    echo "cdas: CDAS_REQUIRE_CUDA_TORCH_BUILD=1 but no CUDA toolkit (nvcc) found; set CUDA_HOME" >&2
    exit 1
  fi
  echo "== CUDA-libtorch build skipped: no nvcc found (set CUDA_HOME to build it)" >&2
  exit 0
fi

deps="$CDAS_ROOT/.deps"
dest="$deps/torch-cuda"
build_dir="${CDAS_CUDA_BUILD_DIR:-$CDAS_ROOT/build-cuda}"
torch_version="${CDAS_CUDA_TORCH_VERSION:-2.14.1}"
nvrtc_version="${CDAS_CUDA_NVRTC_VERSION:-13.0.88}"
nccl_version="${CDAS_CUDA_NCCL_VERSION:-2.30.7}"
cusparse_version="${CDAS_CUDA_CUSPARSE_VERSION:-12.6.3.3}"
cusolver_version="${CDAS_CUDA_CUSOLVER_VERSION:-12.0.4.66}"
start=$(date +%s)

# ---- fetch and unpack (kept between runs; a changed version fetches again) ----------------------
fetched_bytes=0
fetch_wheel() {  # fetch_wheel REQUIREMENT GLOB PYTHON_FILTER
  local requirement=$1 glob=$2 filter=$3 wheels="$deps/torch-cuda.wheels" t0 wheel
  rm -rf "$wheels" && mkdir -p "$wheels"
  t0=$(date +%s)
  python3 -m pip download --quiet --no-deps "${CDAS_PIP_INDEX_ARGS[@]}" --only-binary=:all: \
    -d "$wheels" "$requirement"
  wheel=$(ls "$wheels"/$glob | head -n1)
  local size; size=$(stat -c %s "$wheel")
  fetched_bytes=$((fetched_bytes + size))
  echo "cdas: $requirement: $((size / 1048576)) MB in $(( $(date +%s) - t0 )) s; unpacking" >&2
  python3 - "$wheel" "$dest.partial" "$filter" <<'PY'
import re, shutil, sys, zipfile
wheel, out, pattern = sys.argv[1], sys.argv[2], re.compile(sys.argv[3])
import os
n = 0
with zipfile.ZipFile(wheel) as z:
    for info in z.infolist():
        if info.is_dir() or not pattern.match(info.filename):
            continue
        target = os.path.join(out, info.filename)
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with z.open(info) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 22)
        n += 1
if n == 0:
    sys.exit(f"cdas: nothing matching {pattern.pattern} in {wheel}")
PY
  rm -rf "$wheels"
}

stamp="torch==$torch_version nvidia-cuda-nvrtc==$nvrtc_version nvidia-nccl-cu13==$nccl_version nvidia-cusparse==$cusparse_version nvidia-cusolver==$cusolver_version"
if [[ "$(cat "$dest/.fetched" 2>/dev/null)" != "$stamp" ]]; then
  source "$CDAS_ROOT/scripts/pip-index.sh"
  rm -rf "$dest.partial"
  echo "== fetching the CUDA libtorch ($stamp) into $dest" >&2
  t_fetch=$(date +%s)
  # libtorch: headers, libraries (not the Python extension) and the CMake config.
  fetch_wheel "torch==$torch_version" 'torch-*.whl' \
    '^torch/(include/|share/cmake/|lib/(?!libtorch_python\.so))'
  # NVRTC: TorchConfig.cmake adds it to TORCH_LIBRARIES (libcdas links with --as-needed and drops it).
  fetch_wheel "nvidia-cuda-nvrtc==$nvrtc_version" 'nvidia_cuda_nvrtc-*.whl' \
    '^nvidia/[^/]+/(include/nvrtc\.h|lib/libnvrtc\.so\.[0-9]+)$'
  # NCCL: its headers only (compiling ProcessGroupNCCL's users); libtorch_cuda brings the library at run time.
  fetch_wheel "nvidia-nccl-cu13==$nccl_version" 'nvidia_nccl_cu13-*.whl' '^nvidia/nccl/include/'
  fetch_wheel "nvidia-cusparse==$cusparse_version" 'nvidia_cusparse-*.whl' '^nvidia/[^/]+/include/cusparse[^/]*\.h$'
  fetch_wheel "nvidia-cusolver==$cusolver_version" 'nvidia_cusolver-*.whl' '^nvidia/[^/]+/include/cusolver[^/]*\.h$'
  for so in "$dest.partial"/nvidia/*/lib/libnvrtc.so.*; do ln -sf "$(basename "$so")" "$(dirname "$so")/libnvrtc.so"; done
  echo "$stamp" >"$dest.partial/.fetched"
  rm -rf "$dest" && mv "$dest.partial" "$dest"
  echo "cdas: fetched $((fetched_bytes / 1048576)) MB of wheels, unpacked $(du -sm "$dest" | cut -f1) MB, in $(( $(date +%s) - t_fetch )) s" >&2
else
  echo "== CUDA libtorch already in $dest ($stamp)" >&2
fi
bash "$CDAS_ROOT/scripts/fetch-cublas.sh" "$deps"
nvrtc_dir=$(dirname "$(ls "$dest"/nvidia/*/lib/libnvrtc.so | head -n1)")

# ---- configure and build: libcdas and libcdas_cuda only ------------------------------------------
echo "== native build against the CUDA libtorch ($build_dir; compile and link only)" >&2
mkdir -p "$build_dir"
t_build=$(date +%s)
cmake_args=(
  -S . -B "$build_dir" -DCMAKE_BUILD_TYPE=Release
  -DCMAKE_PREFIX_PATH="$dest/torch/share/cmake"
  -DCDAS_REQUIRE_TORCH_CUDA=ON           # never falls back to the CPU libtorch
  -DCDAS_FETCH_DEPS=OFF -DCDAS_CUDA=ON -DCDAS_BUILD_TESTS=OFF -DCDAS_CUDA_EMULATION=OFF -DBUILD_TESTING=OFF
  -DCDAS_CUBLAS_ROOT="$deps/cublas"
  # torch's FindCUDA takes the toolkit from nvcc's folder; name the real one.
  -DCUDA_TOOLKIT_ROOT_DIR="$cuda_home" -DCMAKE_CUDA_COMPILER="$cuda_home/bin/nvcc"
  -DCUDA_nvrtc_LIBRARY="$nvrtc_dir/libnvrtc.so"
  # No GPU to detect: without a list torch would add every architecture it knows (the module
  # drops torch's flags anyway; libcdas_cuda.so has its own list).
  -DTORCH_CUDA_ARCH_LIST="${TORCH_CUDA_ARCH_LIST:-8.0;9.0}"
)
cmake "${cmake_args[@]}" >"$build_dir/configure.log" 2>&1 || { cat "$build_dir/configure.log" >&2; exit 1; }
grep -E "^-- (cdas|PyTorch: CUDA detected)" "$build_dir/configure.log" >&2 || true
cmake --build "$build_dir" -j "$CDAS_JOBS" --target cdas cdas_cuda
for lib in libcdas.so libcdas_cuda.so; do test -f "$build_dir/$lib"; done
# What libcdas links against directly (libtorch_cuda must be among them: it registers the CUDA kernels).
echo "cdas: $build_dir/libcdas.so needs: $(readelf -d "$build_dir/libcdas.so" | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | tr '\n' ' ')" >&2
readelf -d "$build_dir/libcdas.so" | grep -q 'libtorch_cuda.so' || { echo "cdas: libcdas.so does not link libtorch_cuda.so" >&2; exit 1; }
# train --distributed on GPUs: the c10d NCCL backend must be compiled in (CdasDist.cmake found nccl.h)
# and libcdas.so must call libtorch_cuda's ProcessGroupNCCL.
grep -q "cdas: data parallel (c10d NCCL): nccl.h from" "$build_dir/configure.log" \
  || { echo "cdas: the CUDA build did not compile the c10d NCCL backend (configure.log: $(grep -m1 'c10d NCCL' "$build_dir/configure.log"))" >&2; exit 1; }
nccl_symbols=$(nm -D --undefined-only "$build_dir/libcdas.so" | awk '/ProcessGroupNCCL/ {print $2}')
[[ -n "$nccl_symbols" ]] || { echo "cdas: libcdas.so does not call c10d::ProcessGroupNCCL" >&2; exit 1; }
# ... and every such symbol must be one the torch libraries define (headers and libraries agree).
torch_defined=$(for lib in "$dest"/torch/lib/libtorch*.so; do nm -D --defined-only "$lib" | awk '{print $3}'; done | sort -u)
for symbol in $nccl_symbols; do
  grep -qxF "$symbol" <<<"$torch_defined" \
    || { echo "cdas: libcdas.so needs $symbol, which no torch library defines" >&2; exit 1; }
done
echo "cdas: c10d NCCL backend compiled; its $(wc -w <<<"$nccl_symbols") ProcessGroupNCCL symbols resolve in libtorch" >&2
echo "== CUDA-libtorch build done: configure + build $(( $(date +%s) - t_build )) s, total $(( $(date +%s) - start )) s" >&2

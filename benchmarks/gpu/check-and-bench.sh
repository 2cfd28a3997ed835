#!/usr/bin/env bash
# One command for a GPU machine (nvcc, PyTorch 2.11+cu130, compute-sanitizer; no Java, no network):
# builds the native library against that torch, checks every CUDA kernel against the CPU path of
# the same ABI, runs compute-sanitizer memcheck and racecheck on small shapes, then benchmarks and
# writes a markdown table to $OUT/gpu-results.md (when $OUT is set) and to the build directory.
#
#   bash benchmarks/gpu/check-and-bench.sh
#
# Environment:
#   CDAS_GPU_STEPS   steps to run, in order (default "build check sanitize bench")
#   CDAS_GPU_BUILD   build directory (default build-gpu)
#   PYTHON           the python with torch (default python3)
#   CDAS_JOBS        build parallelism (default nproc)
# Exit status: 0 when every step that ran passed; the first failing step's status otherwise.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
steps="${CDAS_GPU_STEPS:-build check sanitize bench}"
build="${CDAS_GPU_BUILD:-$root/build-gpu}"
py="${PYTHON:-python3}"
jobs="${CDAS_JOBS:-$(nproc)}"
results="$build/gpu-results.md"
summary="$build/gpu-summary.md"
mkdir -p "$build"
: >"$summary"

note() { echo "== $*" >&2; }
record() { echo "$*" >>"$summary"; }
publish() {
  { echo "# cdas-native GPU check-and-bench"; echo; echo "Commit: $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    echo; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | sed 's/^/GPU: /' || true
    echo; echo "## Steps"; echo; cat "$summary"; echo
    if [[ -f "$build/bench.md" ]]; then cat "$build/bench.md"; fi; } >"$results"
  if [[ -n "${OUT:-}" ]]; then mkdir -p "$OUT" && cp "$results" "$OUT/gpu-results.md" && cp "$build"/*.log "$OUT/" 2>/dev/null || true; fi
}
trap publish EXIT

# cuBLAS: torch's own nvidia-cublas wheel (nvidia/cu13 or nvidia/cublas under site-packages).
find_cublas_root() {
  "$py" - <<'PY'
import glob, os, sys
for base in sys.path:
    for pattern in ("nvidia/cu1*/include/cublas_v2.h", "nvidia/cublas/include/cublas_v2.h"):
        for header in sorted(glob.glob(os.path.join(base, pattern))):
            root = os.path.dirname(os.path.dirname(header))
            if glob.glob(os.path.join(root, "lib", "libcublas.so*")):
                print(root)
                sys.exit(0)
PY
}

step_build() {
  note "build ($build)"
  local torch_prefix cublas_root
  torch_prefix="$("$py" -c 'import torch; print(torch.utils.cmake_prefix_path)')"
  cublas_root="$(find_cublas_root || true)"
  local args=(-S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_PREFIX_PATH="$torch_prefix"
              -DCDAS_FETCH_DEPS=OFF -DCDAS_CUDA=ON)
  [[ -n "$cublas_root" ]] && args+=(-DCDAS_CUBLAS_ROOT="$cublas_root")
  command -v nvcc >/dev/null || export PATH="/usr/local/cuda/bin:$PATH"
  local t0=$SECONDS
  cmake "${args[@]}" >"$build/configure.log" 2>&1 || { tail -n 40 "$build/configure.log" >&2; record "- build: FAILED at configure (configure.log)"; return 1; }
  cmake --build "$build" -j "$jobs" >"$build/build.log" 2>&1 || { tail -n 40 "$build/build.log" >&2; record "- build: FAILED (build.log)"; return 1; }
  # The check-and-bench program: public ABI (libcdas) + CUDA runtime + cuBLAS for the GEMM baseline.
  local inc=() link=()
  if [[ -n "$cublas_root" ]]; then
    inc=(-I "$cublas_root/include")
    link=(-L "$cublas_root/lib" "-l:$(cd "$cublas_root/lib" && ls libcublas.so* | sort | head -n1)" -Xlinker "-rpath=$cublas_root/lib")
  else
    link=(-lcublas)
  fi
  nvcc -O2 -std=c++17 -I "$root/native/include" "${inc[@]}" "$root/benchmarks/gpu/gpu_check_bench.cpp" \
    -o "$build/gpu_check_bench" -L "$build" -lcdas "${link[@]}" -Xlinker "-rpath=$build" >>"$build/build.log" 2>&1 \
    || { tail -n 40 "$build/build.log" >&2; record "- build: FAILED compiling gpu_check_bench (build.log)"; return 1; }
  record "- build: ok in $((SECONDS - t0)) s (torch $("$py" -c 'import torch; print(torch.__version__)'), cuBLAS ${cublas_root:-from the CUDA toolkit})"
  if [[ -x "$build/cdas_native_tests" ]]; then
    if ctest --test-dir "$build" --output-on-failure >"$build/ctest.log" 2>&1; then
      record "- native tests (ctest, CPU and GPU cases): passed"
    else
      record "- native tests (ctest): FAILED (ctest.log)"; return 1
    fi
  fi
}

step_check() {
  note "check: CUDA vs CPU through the ABI"
  if "$build/gpu_check_bench" --check >"$build/check.log" 2>&1; then
    record "- check: $(tail -n 1 "$build/check.log")"
  else
    grep -E '^FAIL' "$build/check.log" | head -n 20 >&2 || tail -n 20 "$build/check.log" >&2
    record "- check: FAILED: $(tail -n 1 "$build/check.log") (check.log)"
    grep -E '^FAIL' "$build/check.log" | head -n 10 | sed 's/^/  - /' >>"$summary" || true
    return 1
  fi
}

step_sanitize() {
  local tool
  for tool in memcheck racecheck; do
    note "compute-sanitizer $tool (small shapes)"
    if compute-sanitizer --tool "$tool" --error-exitcode 99 "$build/gpu_check_bench" --check --small \
        >"$build/sanitize-$tool.log" 2>&1; then
      record "- compute-sanitizer $tool: clean ($(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$build/sanitize-$tool.log" | tail -n 1))"
    else
      record "- compute-sanitizer $tool: FAILED (sanitize-$tool.log)"
      grep -E 'Invalid|Race|hazard|ERROR' "$build/sanitize-$tool.log" | head -n 10 >&2 || true
      return 1
    fi
  done
}

step_bench() {
  note "bench: torch baseline"
  local torch_times="$build/torch-times.txt"
  if "$py" "$root/benchmarks/gpu/torch_baseline.py" --out "$torch_times" >"$build/torch-baseline.log" 2>&1; then
    record "- torch baseline: ok"
  else
    record "- torch baseline: FAILED (torch-baseline.log); the table has no torch column"
    : >"$torch_times"
  fi
  note "bench: cdas"
  "$build/gpu_check_bench" --bench --torch "$torch_times" --out "$build/bench.md" >"$build/bench.log" 2>&1 \
    || { tail -n 20 "$build/bench.log" >&2; record "- bench: FAILED (bench.log)"; return 1; }
  record "- bench: ok"
  cat "$build/bench.md"
}

for step in $steps; do
  case "$step" in
    build) step_build ;;
    check) step_check ;;
    sanitize) step_sanitize ;;
    bench) step_bench ;;
    *) echo "unknown step '$step' (build, check, sanitize, bench)" >&2; exit 2 ;;
  esac
done
note "done: $results"

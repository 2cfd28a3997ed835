#!/usr/bin/env bash
# GPU check-and-bench for a rare, brief visit to a GPU machine (nvcc, PyTorch with CUDA,
# compute-sanitizer; no Java, no network). Builds the kernels-only native library, the CUDA library
# and gpu_check_bench, checks every CUDA kernel against the CPU path of the same ABI, runs
# compute-sanitizer, and benchmarks, each step under its own time limit and all of them under one
# deadline, so that a 10-minute command always comes back with its files. What a step learns is
# written at once: its status line to summary.md, every bench row to gpu-results.md.
#
#   bash benchmarks/gpu/check-and-bench.sh --plan          the steps and their time limits; runs nothing
#   bash benchmarks/gpu/check-and-bench.sh [options]       see --help; benchmarks/gpu/README.md
#
# Exit status: 0 every step that ran passed (or was skipped), 1 a step failed or ran out of time,
# 2 bad arguments (one line on stderr).
set -uo pipefail
# The whole script is one compound command, read before any of it runs: editing or replacing the
# file while it runs (e.g. a git checkout between two calls) cannot change what this run does.
{

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
prog="check-and-bench.sh"

ALL_STEPS=(build check model pack memcheck bench torch racecheck)
# Time limit of each step, seconds (--budget STEP=S). On a GPU machine (expected times on a fresh
# H100/H200 with 16 cores in benchmarks/gpu/README.md):
declare -A BUDGET=([build]=180 [check]=90 [model]=240 [pack]=90 [memcheck]=120 [bench]=210 [torch]=90 [racecheck]=120)
# With --emulated (the CPU emulation backend, small shapes; measured on 2 shared cores: check 14 s,
# bench 3 s):
declare -A EMU_BUDGET=([build]=10 [check]=240 [model]=0 [pack]=0 [memcheck]=0 [bench]=120 [torch]=0 [racecheck]=0)
# The pack step's runs of cdas_bench_pack (each with --device cuda:0; the demo's size otherwise).
PACK_RUNS=("--concepts 8" "--concepts 32" "--concepts 32 --dtype bf16")
MIN_START=20        # a step starts only with at least this many seconds (or its whole limit) left
MARGIN=10           # seconds kept before the deadline for the closing lines

usage() {
  cat <<'EOF'
usage: bash benchmarks/gpu/check-and-bench.sh [options]
  --plan                 print the steps, their time limits and commands; run nothing
  --steps LIST           steps to run, comma-separated, always in this order
                         (default: build,check,model,pack,memcheck,bench,torch,racecheck):
                           build      configure + build libcdas (no torch), libcdas_cuda, gpu_check_bench
                           check      gpu_check_bench --check (every kernel vs the CPU path)
                           model      with --with-torch: the native tests' cuda_ cases, among them every
                                      family's tiny model on cuda:0 and split cpu:0|cuda:0 against the CPU
                           pack       with --with-torch: cdas_bench_pack on cuda:0, concept packing (K concepts'
                                      step as one call against K calls, equality checked first) into bench.log
                           memcheck   compute-sanitizer memcheck on gpu_check_bench --check --size small
                           bench      gpu_check_bench --bench (LM-head and DII rows, with the GEMM and copy references)
                           torch      torch_baseline.py (the same LM-head step composed from torch ops)
                           racecheck  compute-sanitizer racecheck on gpu_check_bench --check --size small
  --filter TERMS         schedules/shapes for check and bench, comma-separated:
                           lmhead dii chunked auto gemma llama tiny f32 bf16 f16
  --tokens LIST          bench token counts (default 1024,8192)
  --with-torch           build libcdas against this python's torch, with the native tests (default:
                         CDAS_WITH_TORCH=OFF, no tests; the model step then skips)
  --emulated             no GPU: the CPU build's gpu_check_bench_emu with CDAS_CUDA_BACKEND=emulated,
                         small check shapes, the tiny bench shape, no nvcc build, no sanitizers, no torch
  --out DIR              output folder (default $OUT, else BUILD/gpu-out); at most 6 files
  --build DIR            build folder (default build-gpu; with --emulated the CPU build, build)
  --budget STEP=S        time limit of a step in seconds (repeatable)
  --deadline S           no step runs past S seconds from the start (default 570)
  --help
environment: OUT, PYTHON (default python3), CDAS_JOBS (default nproc), CDAS_GPU_STEPS,
             CDAS_GPU_BUILD, CDAS_GPU_EMULATED=1, CDAS_GPU_DEADLINE, CDAS_CUDA_ARCHITECTURES
EOF
}

die_usage() {
  echo "$prog: $* (--help for usage)" >&2
  exit 2
}

# ---- arguments -----------------------------------------------------------------------------------
plan=0
emulated=0
[[ "${CDAS_GPU_EMULATED:-0}" == 1 ]] && emulated=1
with_torch=0
steps_arg="${CDAS_GPU_STEPS:-}"
filter=""
tokens=""
out_dir="${OUT:-}"
build=""
deadline="${CDAS_GPU_DEADLINE:-570}"
declare -A budget_override=()

need_value() { [[ $# -ge 2 && -n "$2" ]] || die_usage "$1 needs a value"; }
is_uint() { [[ "$1" =~ ^[0-9]+$ ]]; }

while [[ $# -gt 0 ]]; do
  case "$1" in
    --plan) plan=1 ;;
    --emulated) emulated=1 ;;
    --with-torch) with_torch=1 ;;
    --steps) need_value "$@"; steps_arg="$2"; shift ;;
    --filter) need_value "$@"; filter="$2"; shift ;;
    --tokens) need_value "$@"; tokens="$2"; shift ;;
    --out) need_value "$@"; out_dir="$2"; shift ;;
    --build) need_value "$@"; build="$2"; shift ;;
    --deadline) need_value "$@"; deadline="$2"; shift ;;
    --budget)
      need_value "$@"
      [[ "$2" =~ ^([a-z]+)=([0-9]+)$ ]] || die_usage "--budget takes STEP=SECONDS, not '$2'"
      [[ -n "${BUDGET[${BASH_REMATCH[1]}]+x}" ]] || die_usage "--budget: unknown step '${BASH_REMATCH[1]}' (${ALL_STEPS[*]})"
      budget_override[${BASH_REMATCH[1]}]="${BASH_REMATCH[2]}"
      shift ;;
    --help|-h) usage; exit 0 ;;
    *) die_usage "unknown argument '$1'" ;;
  esac
  shift
done

is_uint "$deadline" && (( deadline >= 30 )) || die_usage "--deadline must be a whole number of seconds >= 30, not '$deadline'"
if [[ -n "$tokens" ]]; then
  [[ "$tokens" =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || die_usage "--tokens must be a comma-separated list of positive integers, not '$tokens'"
fi
filter_models=""
filter_lmhead=1
if [[ -n "$filter" ]]; then
  IFS=',' read -r -a _terms <<<"${filter,,}"
  _sections=""
  (( ${#_terms[@]} > 0 )) || die_usage "--filter: empty filter"
  for _t in "${_terms[@]}"; do
    case "$_t" in
      lmhead|jsd|lm_head_jsd|chunked|auto) _sections+=" lmhead" ;;
      fused) die_usage "--filter: the FUSED LM-head schedule was removed (CHUNKED is the only one)" ;;
      dii) _sections+=" dii" ;;
      gemma|llama|tiny) filter_models+="${filter_models:+,}$_t" ;;
      f32|bf16|f16) ;;
      *) die_usage "--filter: unknown term '$_t' (known: lmhead dii chunked auto gemma llama tiny f32 bf16 f16)" ;;
    esac
  done
  [[ -z "$_sections" || "$_sections" == *lmhead* ]] || filter_lmhead=0
fi

steps=()
if [[ -n "$steps_arg" ]]; then
  IFS=', ' read -r -a _asked <<<"$steps_arg"
  (( ${#_asked[@]} > 0 )) || die_usage "--steps: empty list"
  for _s in "${_asked[@]}"; do
    [[ -n "${BUDGET[$_s]+x}" ]] || die_usage "--steps: unknown step '$_s' (${ALL_STEPS[*]})"
  done
  for _s in "${ALL_STEPS[@]}"; do
    for _a in "${_asked[@]}"; do [[ "$_a" == "$_s" ]] && { steps+=("$_s"); break; }; done
  done
else
  steps=("${ALL_STEPS[@]}")
fi

if (( emulated )); then
  build="${build:-${CDAS_BUILD_DIR:-$root/build}}"
  bin_name=gpu_check_bench_emu
  for _s in "${ALL_STEPS[@]}"; do BUDGET[$_s]=${EMU_BUDGET[$_s]}; done
  mode="emulated (CDAS_CUDA_BACKEND=emulated, CPU fibers; timings are not GPU timings)"
  export CDAS_CUDA_BACKEND=emulated
else
  build="${build:-${CDAS_GPU_BUILD:-$root/build-gpu}}"
  bin_name=gpu_check_bench
  mode="gpu"
fi
for _s in "${!budget_override[@]}"; do BUDGET[$_s]=${budget_override[$_s]}; done
[[ "$build" = /* ]] || build="$PWD/$build"
out_dir="${out_dir:-$build/gpu-out}"
[[ "$out_dir" = /* ]] || out_dir="$PWD/$out_dir"
bin="$build/$bin_name"
jobs="${CDAS_JOBS:-$(nproc 2>/dev/null || echo 4)}"
py="${PYTHON:-python3}"

# The check and bench arguments of each mode.
if (( emulated )); then
  check_args=(--check --size small --verbose)
  sanitize_args=()
  bench_args=(--bench --size small --warmup 1 --reps 2 --row-seconds 5 --note emulated)
else
  check_args=(--check --verbose)
  sanitize_args=(--check --size small)
fi
[[ -n "$filter" ]] && { check_args+=(--filter "$filter"); sanitize_args+=(--filter "$filter"); }
bench_extra=()
[[ -n "$tokens" ]] && bench_extra+=(--tokens "$tokens")

# What each step runs, for --plan and for the summary.
describe() {
  case "$1" in
    build)
      if (( emulated )); then echo "use $bin (built by the CPU build: scripts/build.sh); nothing is compiled"
      else echo "cmake: CDAS_WITH_TORCH=$( ((with_torch)) && echo ON || echo OFF) CDAS_CUDA=ON CDAS_BUILD_TESTS=$( ((with_torch)) && echo ON || echo OFF) CDAS_CUDA_EMULATION=OFF, archs of the visible GPU; cmake --build -j$jobs --target gpu_check_bench (libcdas, libcdas_cuda, gpu_check_bench)"; fi ;;
    check) echo "$bin_name ${check_args[*]}" ;;
    model)
      if (( emulated )); then echo "skipped: needs a GPU and torch with CUDA"
      elif (( ! with_torch )); then echo "skipped without --with-torch (the model runtime needs this python's torch)"
      else echo "cmake --build -j$jobs --target cdas_native_tests; cdas_native_tests ^cuda_ (model on cuda:0 and split cpu:0|cuda:0 vs the CPU; CUDA ABI cases) into check.log"; fi ;;
    pack)
      if (( emulated )); then echo "skipped: needs a GPU and torch with CUDA"
      elif (( ! with_torch )); then echo "skipped without --with-torch (the model runtime needs this python's torch)"
      else echo "cmake --build -j$jobs --target cdas_bench_pack; cdas_bench_pack --device cuda:0, once each with: $(IFS='|'; echo "${PACK_RUNS[*]}" | sed 's/|/ | /g') (into bench.log)"; fi ;;
    memcheck|racecheck)
      if (( emulated )); then echo "skipped: compute-sanitizer needs a GPU"
      else echo "compute-sanitizer --tool $1 $bin_name ${sanitize_args[*]}"; fi ;;
    bench)
      if (( emulated )); then echo "$bin_name ${bench_args[*]} ${bench_extra[*]} ${filter:+--filter $filter} --out gpu-results.md"
      elif [[ -n "$filter" ]]; then echo "$bin_name --bench --filter $filter ${bench_extra[*]} --out gpu-results.md"
      else echo "$bin_name --bench ${bench_extra[*]} --out gpu-results.md"; fi ;;
    torch)
      if (( emulated )); then echo "skipped: needs torch with a GPU"
      else echo "$py benchmarks/gpu/torch_baseline.py --models ${filter_models:-gemma,llama} ${tokens:+--tokens $tokens} --out gpu-results.md"; fi ;;
  esac
}

print_plan() {
  echo "check-and-bench plan: mode $mode"
  echo "  build folder $build; output folder $out_dir; deadline ${deadline} s (no step runs past it)"
  [[ -n "$filter" ]] && echo "  filter: $filter"
  printf '  %-10s %7s  %s\n' step limit "what it runs"
  local total=0 s
  for s in "${steps[@]}"; do
    if (( BUDGET[$s] == 0 )); then printf '  %-10s %7s  %s\n' "$s" "-" "$(describe "$s")"
    else printf '  %-10s %5s s  %s\n' "$s" "${BUDGET[$s]}" "$(describe "$s")"; fi
    total=$((total + BUDGET[$s]))
  done
  printf '  %-10s %5s s  (limits add up; each step gets min(its limit, time left before the deadline))\n' total "$total"
  echo "  outputs: summary.md gpu-results.md build.log check.log sanitize.log bench.log"
}

if (( plan )); then
  print_plan
  exit 0
fi

# ---- outputs -------------------------------------------------------------------------------------
t_start=$SECONDS
mkdir -p "$out_dir" "$build" || { echo "$prog: cannot create $out_dir or $build" >&2; exit 2; }
summary="$out_dir/summary.md"
results="$out_dir/gpu-results.md"
build_log="$out_dir/build.log"
check_log="$out_dir/check.log"
sanitize_log="$out_dir/sanitize.log"
bench_log="$out_dir/bench.log"
any_failed=0
status="" detail=""
n_ok=0 n_failed=0 n_skipped=0

note() { echo "== $*" >&2; }
record() { echo "$*" >>"$summary"; }
elapsed() { echo $((SECONDS - t_start)); }

commit="$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
if git -C "$root" rev-parse HEAD >/dev/null 2>&1 && [[ -n "$(git -C "$root" status --porcelain --untracked-files=no 2>/dev/null)" ]]; then
  commit+=" (with uncommitted changes)"
fi
gpu_name="$(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null | head -n 1)"
{
  echo "# cdas-native GPU check-and-bench: summary"
  echo
  echo "- started: $(date -u '+%Y-%m-%d %H:%M:%S UTC'), commit $commit, mode $mode"
  echo "- GPU: ${gpu_name:-none visible to nvidia-smi}; nvcc: $(nvcc --version 2>/dev/null | sed -n 's/.*release \([0-9.]*\).*/\1/p' | head -n 1)"
  echo "- steps: ${steps[*]}; deadline ${deadline} s; filter: ${filter:-none}"
  echo
} >"$summary"
{
  echo "# cdas-native GPU results"
  echo
  echo "Commit $commit, ${gpu_name:-no GPU visible to nvidia-smi}, mode $mode."
  echo "Rows are appended as they are measured (median of CUDA-event timings after warm-up)."
  echo "op lm_head_jsd: LM head + soft-cap + JSD, forward + backward, bf16; rate = useful TF/s (3 x 2TdV);"
  echo "% of ref = of the cuBLAS gemm row of the same model. op dii: rank-1 DII, bf16; rate = GB/s of the"
  echo "bytes a pass must move; % of ref = of the copy row. extra MiB: memory beyond inputs and outputs"
  echo "(cdas: the context's peak workspace; torch: the allocator's high-water mark)."
  echo
  echo "| op | model | T | impl | ms | rate | % of ref | extra MiB | note |"
  echo "|---|---|---|---|---|---|---|---|---|"
} >"$results"
: >"$check_log"
: >"$bench_log"

# Ratio table: each cdas LM-head row against the torch row of the same model and T.
speedups() {
  awk -F'|' '
    function trim(s) { gsub(/^ +| +$/, "", s); return s }
    trim($2) == "lm_head_jsd" && trim($6) != "" {
      key = trim($3) " | " trim($4); impl = trim($5); ms = trim($6) + 0
      if (impl == "torch") torch[key] = ms; else { cdas[key, impl] = ms; impls[impl] = 1; keys[key] = 1 }
    }
    END {
      n = 0
      for (k in keys) if (k in torch) for (i in impls) if ((k, i) in cdas) {
        if (n++ == 0) { print ""; print "| speed-up vs torch | model | T | impl | cdas ms | torch ms |"; print "|---|---|---|---|---|---|" }
        printf "| %.2fx | %s | %s | %.3f | %.3f |\n", torch[k] / cdas[k, i], k, i, cdas[k, i], torch[k]
      }
    }' "$results"
}

finish() {
  local rc=$?
  if grep -q '| torch |' "$results" 2>/dev/null; then speedups >>"$results"; fi
  # Keep build.log within reason (the files come back over a size-limited channel).
  if [[ -f "$build_log" ]] && (( $(wc -l <"$build_log") > 3000 )); then
    { echo "[... first $(( $(wc -l <"$build_log") - 3000 )) lines left out ...]"; tail -n 3000 "$build_log"; } >"$build_log.tmp" && mv "$build_log.tmp" "$build_log"
  fi
  record ""
  record "- finished after $(elapsed) s: $n_ok ok, $n_failed failed, $n_skipped skipped"
  note "done after $(elapsed) s: $summary, $results"
  exit "$rc"
}
trap finish EXIT
trap 'record "- interrupted (signal) after $(elapsed) s"; exit 1' INT TERM

# Runs "$@" with a time limit, appending stdout and stderr to a log. Returns the command's status;
# 124 when the limit was reached.
limited() {
  local limit=$1 log=$2
  shift 2
  timeout --kill-after=5 "$limit" "$@" >>"$log" 2>&1
}

# ---- steps: each sets status (ok, FAILED, TIMEOUT, SKIPPED) and detail ---------------------------

find_cublas_root() {
  timeout 60 "$py" - <<'PY' 2>/dev/null
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

# cmake --build of TARGET in the build folder, output appended to LOG, within LIMIT seconds. When it
# does not build: sets status (TIMEOUT or FAILED) and detail (after PREFIX: the last progress line
# or the first error, and the log's name) and returns 1.
build_target() {
  local target=$1 log=$2 limit=$3 prefix=$4 rc
  limited "$limit" "$log" cmake --build "$build" -j "$jobs" --target "$target"
  rc=$?
  if (( rc == 124 || rc == 137 )); then
    status=TIMEOUT; detail="${prefix}last: $(grep -E '^\[ *[0-9]+%\]' "$log" | tail -n 1 | cut -c1-160) ($(basename "$log"))"; return 1
  elif (( rc != 0 )); then
    status=FAILED; detail="${prefix}$(grep -m 1 -E 'error:|Error [0-9]|fatal' "$log" | cut -c1-200) ($(basename "$log"))"; return 1
  fi
  return 0
}

step_build() {
  local limit=$1 t0=$SECONDS
  if (( emulated )); then
    if [[ -x "$bin" ]]; then status=ok; detail="using $bin"
    else status=FAILED; detail="$bin is missing: build the CPU tree first (scripts/build.sh; the emulation backend builds gpu_check_bench_emu)"; fi
    return
  fi
  command -v nvcc >/dev/null || export PATH="/usr/local/cuda/bin:$PATH"
  if ! command -v nvcc >/dev/null; then status=FAILED; detail="no nvcc on PATH or in /usr/local/cuda/bin"; return; fi
  local archs="${CDAS_CUDA_ARCHITECTURES:-}"
  if [[ -z "$archs" ]]; then
    local cc
    cc="$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -n 1 | tr -d ' .')"
    if [[ "$cc" =~ ^[0-9]+$ ]]; then archs="${cc}-real"; else archs="80-real;90-real;90-virtual"; fi
  fi
  local args=(-S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCDAS_FETCH_DEPS=OFF -DCDAS_CUDA=ON
              -DCDAS_CUDA_EMULATION=OFF -DCDAS_BUILD_GPU_BENCH=ON
              "-DCDAS_CUDA_ARCHITECTURES=$archs")
  local torch_note="without torch"
  if (( with_torch )); then
    local prefix
    prefix="$(timeout 120 "$py" -c 'import torch; print(torch.utils.cmake_prefix_path)' 2>>"$build_log")" \
      || { status=FAILED; detail="--with-torch: $py cannot import torch (build.log)"; return; }
    args+=(-DCDAS_WITH_TORCH=ON "-DCMAKE_PREFIX_PATH=$prefix" -DCDAS_BUILD_TESTS=ON)
    torch_note="against torch $(timeout 120 "$py" -c 'import torch; print(torch.__version__)' 2>/dev/null)"
  else
    args+=(-DCDAS_WITH_TORCH=OFF -DCDAS_BUILD_TESTS=OFF)
  fi
  local cublas_root
  cublas_root="$(find_cublas_root || true)"
  [[ -n "$cublas_root" ]] && args+=("-DCDAS_CUBLAS_ROOT=$cublas_root")
  local rc left
  echo "\$ cmake ${args[*]}" >>"$build_log"
  left=$(( limit - (SECONDS - t0) ))
  (( left > 5 )) || { status=TIMEOUT; detail="no time left to configure"; return; }
  limited "$left" "$build_log" cmake "${args[@]}"
  rc=$?
  if (( rc != 0 )); then
    status=$([[ $rc == 124 || $rc == 137 ]] && echo TIMEOUT || echo FAILED); detail="at configure (build.log)"; return
  fi
  left=$(( limit - (SECONDS - t0) ))
  (( left > 5 )) || { status=TIMEOUT; detail="no time left after configure"; return; }
  echo "\$ cmake --build $build -j $jobs --target gpu_check_bench" >>"$build_log"
  build_target gpu_check_bench "$build_log" "$left" "" || return
  status=ok
  local cublas_line
  cublas_line="$(grep -m 1 -oE 'cuBLAS from .*' "$build_log")"
  detail="$torch_note, CUDA archs $archs, ${cublas_line:-cuBLAS: see build.log}"
}

# Appends the first FAIL lines of a log to the summary.
record_fails() {
  grep -E '^(FAIL|    FAIL |\[ FAIL \])' "$1" | head -n 10 | sed 's/^ */  - /' >>"$summary" || true
}

step_check() {
  local limit=$1 rc
  echo "\$ $bin ${check_args[*]}" >>"$check_log"
  limited "$limit" "$check_log" "$bin" "${check_args[@]}"
  rc=$?
  local last
  last="$(grep -E '^[0-9]+ checks, [0-9]+ failed' "$check_log" | tail -n 1)"
  case $rc in
    0) status=ok; detail="$last" ;;
    124|137)
      local last_run
      last_run="$(grep '^RUN' "$check_log" | tail -n 1 | cut -c5-)"
      status=TIMEOUT; detail="last started: ${last_run:-none (stopped while starting)} (check.log)" ;;
    1) status=FAILED; detail="$last (check.log)" ;;
    *) status=FAILED; detail="exit $rc: $(grep -v '^RUN' "$check_log" | tail -n 1 | cut -c1-200) (check.log)" ;;
  esac
}

# The model runtime on the GPU: the native tests' cuda_ cases (test_split.cpp: every family's tiny
# model on cuda:0 and split cpu:0 | cuda:0 against the CPU; test_cuda.cpp: the CUDA ABI cases), built
# against this python's torch. Output appended to check.log.
step_model() {
  local limit=$1 t0=$SECONDS rc left
  if (( emulated )); then status=SKIPPED; detail="emulated: needs a GPU and torch with CUDA"; return; fi
  if (( ! with_torch )); then status=SKIPPED; detail="needs --with-torch (libcdas with the model runtime, built against this python's torch)"; return; fi
  echo "==== model: cmake --build $build -j $jobs --target cdas_native_tests" >>"$check_log"
  build_target cdas_native_tests "$check_log" "$limit" "building cdas_native_tests: " || return
  left=$(( limit - (SECONDS - t0) ))
  (( left > 5 )) || { status=TIMEOUT; detail="no time left to run cdas_native_tests"; return; }
  echo "==== model: $build/cdas_native_tests ^cuda_" >>"$check_log"
  limited "$left" "$check_log" "$build/cdas_native_tests" '^cuda_'
  rc=$?
  local last
  last="$(grep -E '^[0-9]+ of [0-9]+ cases passed' "$check_log" | tail -n 1)"
  case $rc in
    0) status=ok; detail="$last" ;;
    77) status=FAILED; detail="every case skipped: no GPU seen, or this torch lacks CUDA ($last; check.log)" ;;
    124|137) status=TIMEOUT; detail="during $(grep -E '^\[ RUN' "$check_log" | tail -n 1 | cut -c1-120) (check.log)" ;;
    *) status=FAILED; detail="${last:-exit $rc} (check.log)" ;;
  esac
}

# Concept packing on the GPU (issue 17's packing target, restated for a GPU): one training step of K
# concepts at the demo's size (GPT-2 shape, d = 192, random weights, the states given) as K objective
# calls against one packed call; the program checks each concept's packed loss and gradient against
# its own call before it times anything. Output appended to bench.log.
step_pack() {
  local limit=$1 t0=$SECONDS rc left run speed
  if (( emulated )); then status=SKIPPED; detail="emulated: needs a GPU and torch with CUDA"; return; fi
  if (( ! with_torch )); then status=SKIPPED; detail="needs --with-torch (libcdas with the model runtime, built against this python's torch)"; return; fi
  echo "==== pack: cmake --build $build -j $jobs --target cdas_bench_pack" >>"$bench_log"
  build_target cdas_bench_pack "$bench_log" "$limit" "building cdas_bench_pack: " || return
  status=ok
  detail=""
  for run in "${PACK_RUNS[@]}"; do
    left=$(( limit - (SECONDS - t0) ))
    (( left > 5 )) || { status=TIMEOUT; detail+="${detail:+; }no time left for: $run"; return; }
    echo "==== pack: $build/cdas_bench_pack --device cuda:0 $run" >>"$bench_log"
    # shellcheck disable=SC2086 # the run's options are words
    limited "$left" "$bench_log" "$build/cdas_bench_pack" --device cuda:0 $run
    rc=$?
    speed="$(grep -E '^packing speed-up: ' "$bench_log" | tail -n 1 | cut -d' ' -f3)"
    case $rc in
      0) detail+="${detail:+; }$run: ${speed:-?}" ;;
      77) status=FAILED; detail+="${detail:+; }$run: skipped, no GPU seen or this torch lacks CUDA (bench.log)"; return ;;
      124|137) status=TIMEOUT; detail+="${detail:+; }$run: time limit (bench.log)"; return ;;
      *) status=FAILED; detail+="${detail:+; }$run: exit $rc: $(tail -n 1 "$bench_log" | cut -c1-200) (bench.log)"; return ;;
    esac
  done
  detail="packed against one by one: $detail"
}

step_sanitize() {
  local tool=$1 limit=$2 rc
  if (( emulated )); then status=SKIPPED; detail="emulated: compute-sanitizer needs a GPU"; return; fi
  if ! command -v compute-sanitizer >/dev/null; then
    if [[ -x /usr/local/cuda/bin/compute-sanitizer ]]; then export PATH="/usr/local/cuda/bin:$PATH"
    else status=FAILED; detail="no compute-sanitizer on PATH"; return; fi
  fi
  echo "==== $tool: compute-sanitizer --tool $tool $bin ${sanitize_args[*]}" >>"$sanitize_log"
  limited "$limit" "$sanitize_log" compute-sanitizer --tool "$tool" --error-exitcode 99 --print-limit 20 \
    "$bin" "${sanitize_args[@]}"
  rc=$?
  local summary_line
  summary_line="$(grep -E 'ERROR SUMMARY|RACECHECK SUMMARY' "$sanitize_log" | tail -n 1 | sed 's/^=* *//')"
  case $rc in
    0) status=ok; detail="clean (${summary_line:-no summary line})" ;;
    99) status=FAILED; detail="${summary_line:-errors} (sanitize.log)" ;;
    1) status=FAILED; detail="sanitizer clean (${summary_line}), but checks failed under it (sanitize.log)" ;;
    124|137) status=TIMEOUT; detail="(sanitize.log)" ;;
    *) status=FAILED; detail="exit $rc (sanitize.log)" ;;
  esac
}

count_rows() { grep -cE '^\| (lm_head_jsd|dii|gemm|copy) ' "$results" || true; }
count_error_rows() { grep -E '^\| (lm_head_jsd|dii|gemm|copy) ' "$results" | grep -cE 'error|failed' || true; }

step_bench() {
  local limit=$1 rc t0=$SECONDS before after errors
  before=$(count_rows)
  local runs=()
  if (( emulated )); then
    runs=("${filter:-}")
  else
    runs=("$filter")
  fi
  status=ok
  detail=""
  local i f left sub
  for i in "${!runs[@]}"; do
    f="${runs[$i]}"
    left=$(( limit - (SECONDS - t0) ))
    sub=$left
    if (( sub < 5 )); then status=TIMEOUT; detail+="${detail:+; }no time left for --filter $f"; continue; fi
    local args
    if (( emulated )); then args=("${bench_args[@]}"); else args=(--bench); fi
    args+=("${bench_extra[@]}" --out "$results")
    [[ -n "$f" ]] && args+=(--filter "$f")
    echo "\$ $bin ${args[*]}" >>"$bench_log"
    limited "$sub" "$bench_log" "$bin" "${args[@]}"
    rc=$?
    if (( rc == 2 )) && tail -n 1 "$bench_log" | grep -q 'selects no bench row'; then
      status=SKIPPED; detail+="${detail:+; }the filter selects no bench row"; continue
    fi
    case $rc in
      0) ;;
      124|137) status=TIMEOUT; detail+="${detail:+; }${f:-all rows}: time limit ${sub} s during $(grep '^RUN' "$bench_log" | tail -n 1 | cut -c5-)" ;;
      *) status=FAILED; detail+="${detail:+; }${f:-all rows}: exit $rc: $(grep -vE '^(RUN|\|)' "$bench_log" | tail -n 1 | cut -c1-200)" ;;
    esac
  done
  after=$(count_rows)
  errors=$(count_error_rows)
  if [[ "$status" == ok && "$errors" != 0 ]]; then status=FAILED; fi
  detail="$((after - before)) rows${errors:+, $errors with errors}${detail:+; $detail} (gpu-results.md, bench.log)"
  detail="${detail/, 0 with errors/}"
}

step_torch() {
  local limit=$1 rc before after
  if (( emulated )); then status=SKIPPED; detail="emulated: needs torch with a GPU"; return; fi
  if (( ! filter_lmhead )); then status=SKIPPED; detail="the filter selects no LM-head rows"; return; fi
  before=$(count_rows)
  local args=("$root/benchmarks/gpu/torch_baseline.py" --out "$results" --models "${filter_models:-gemma,llama}")
  [[ -n "$tokens" ]] && args+=(--tokens "$tokens")
  echo "\$ $py ${args[*]}" >>"$bench_log"
  limited "$limit" "$bench_log" "$py" "${args[@]}"
  rc=$?
  after=$(count_rows)
  case $rc in
    0) status=ok; detail="$((after - before)) rows" ;;
    124|137) status=TIMEOUT; detail="$((after - before)) rows before the limit (bench.log)" ;;
    *) status=FAILED; detail="exit $rc: $(tail -n 1 "$bench_log" | cut -c1-200) (bench.log)" ;;
  esac
}

run_step() {
  local step=$1 left limit t0
  left=$(( deadline - (SECONDS - t_start) - MARGIN ))
  limit=${BUDGET[$step]}
  if (( limit == 0 )); then  # not run in this mode (e.g. the sanitizers with --emulated)
    record "- $step: SKIPPED: $(describe "$step" | sed 's/^skipped: //')"
    n_skipped=$((n_skipped + 1))
    return
  fi
  (( limit > left )) && limit=$left
  if (( limit < MIN_START && limit < BUDGET[$step] )); then
    record "- $step: SKIPPED: $(( left > 0 ? left : 0 )) s left before the ${deadline} s deadline"
    n_skipped=$((n_skipped + 1))
    return
  fi
  note "$step (limit $limit s): $(describe "$step")"
  t0=$SECONDS
  status=FAILED detail=""
  case "$step" in
    build) step_build "$limit" ;;
    check) step_check "$limit" ;;
    model) step_model "$limit" ;;
    pack) step_pack "$limit" ;;
    memcheck|racecheck) step_sanitize "$step" "$limit" ;;
    bench) step_bench "$limit" ;;
    torch) step_torch "$limit" ;;
  esac
  record "- $step: $status in $((SECONDS - t0)) s (limit $limit s): $detail"
  [[ "$step" =~ ^(check|model)$ && "$status" != ok && "$status" != SKIPPED ]] && record_fails "$check_log"
  case "$status" in
    ok) n_ok=$((n_ok + 1)) ;;
    SKIPPED) n_skipped=$((n_skipped + 1)) ;;
    *) n_failed=$((n_failed + 1)); any_failed=1 ;;
  esac
  note "$step: $status"
}

# The steps after build need its program: a box that went cold between two commands builds again.
needs_program=0
for s in "${steps[@]}"; do [[ "$s" =~ ^(check|model|memcheck|bench|racecheck)$ ]] && needs_program=1; done
if [[ " ${steps[*]} " != *" build "* ]] && (( needs_program )) && [[ ! -x "$bin" ]]; then
  record "- $bin_name is not built: adding the build step"
  steps=(build "${steps[@]}")
fi

build_failed=0
for s in "${steps[@]}"; do
  if (( build_failed )) && [[ "$s" != torch ]]; then
    record "- $s: SKIPPED: the build failed"
    n_skipped=$((n_skipped + 1))
    continue
  fi
  run_step "$s"
  [[ "$s" == build && "$status" != ok && "$status" != SKIPPED ]] && build_failed=1
done
exit "$any_failed"
}

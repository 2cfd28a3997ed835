#!/usr/bin/env bash
# Tests of check-and-bench.sh's own logic, run by ctest (label cuda-emulated; cmake/CdasGpuScriptTest.cmake):
#
#   test-check-and-bench.sh args BUILD_DIR       --plan, --help and bad arguments (no build needed)
#   test-check-and-bench.sh no-torch BUILD_DIR   the kernels-only build (CDAS_WITH_TORCH=OFF) in a
#                                                temporary folder: links, no libtorch, same exports
#                                                as BUILD_DIR/libcdas.so, no_torch_smoke.c passes
#   test-check-and-bench.sh emulated BUILD_DIR   a whole run on the CPU emulation backend
#                                                (BUILD_DIR/gpu_check_bench_emu): output layout, step
#                                                lines, table rows, rows kept by a killed bench, the
#                                                deadline; exit 77 (skipped) when the program is absent
#
# CDAS_GPU_TEST_CHECK_FILTER (default bf16) narrows the emulated check to keep the test short.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
script="$here/check-and-bench.sh"
mode="${1:?usage: test-check-and-bench.sh args|emulated BUILD_DIR}"
build="$(cd "${2:?usage: test-check-and-bench.sh args|emulated BUILD_DIR}" && pwd)"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/cdas-gpu-script-test.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
failures=0

fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
pass() { echo "ok: $*"; }
# expect_file_match FILE REGEX WHAT
declare -A shown=()
expect_match() {
  if grep -qE "$2" "$1" 2>/dev/null; then pass "$3"; return; fi
  fail "$3: no line matching /$2/ in $1"
  if [[ -z "${shown[$1]:-}" ]]; then  # the file once
    shown[$1]=1
    sed 's/^/    /' "$1" 2>/dev/null | head -n 40
  fi
}

test_args() {
  local out err rc
  bash "$script" --plan >"$tmp/plan" 2>"$tmp/plan.err"; rc=$?
  [[ $rc == 0 ]] && pass "--plan exits 0" || fail "--plan exit $rc: $(cat "$tmp/plan.err")"
  for step in build check model pack memcheck bench torch racecheck total; do
    expect_match "$tmp/plan" "^  $step +[0-9]+ s  " "--plan lists $step with its limit"
  done
  expect_match "$tmp/plan" "deadline 570 s" "--plan shows the deadline"
  expect_match "$tmp/plan" "outputs: summary.md gpu-results.md" "--plan names the output files"
  [[ ! -e "$build/gpu-out-plan-test" ]] || fail "--plan created files"

  bash "$script" --plan --emulated --steps check,bench,memcheck --budget bench=77 --build "$build" >"$tmp/plan-emu" 2>&1; rc=$?
  [[ $rc == 0 ]] && pass "--plan --emulated exits 0" || fail "--plan --emulated exit $rc"
  expect_match "$tmp/plan-emu" "gpu_check_bench_emu --check --size small" "emulated plan checks small shapes"
  expect_match "$tmp/plan-emu" "^  bench +77 s " "--budget sets a step's limit"
  expect_match "$tmp/plan-emu" "^  memcheck +- +skipped" "emulated plan skips the sanitizer"
  if grep -qE '^  (build|torch|racecheck) +([0-9]+ s|-) ' "$tmp/plan-emu"; then fail "--steps check,bench,memcheck plans other steps"; else pass "--steps selects steps"; fi

  CDAS_GPU_EMULATED=1 bash "$script" --plan --filter chunked,llama --tokens 512 >"$tmp/plan-f" 2>&1
  expect_match "$tmp/plan-f" "filter: chunked,llama" "--plan shows the filter"
  expect_match "$tmp/plan-f" "mode emulated" "CDAS_GPU_EMULATED=1 selects the emulated mode"

  bash "$script" --help >"$tmp/help" 2>&1; rc=$?
  [[ $rc == 0 ]] && grep -q -- '--filter TERMS' "$tmp/help" && pass "--help" || fail "--help exit $rc"

  local bad
  local -a cases=("--bogus" "--filter nope" "--filter ," "--steps build,foo" "--steps" "--tokens 1,x" "--tokens 0"
                  "--budget bench=abc" "--budget nostep=5" "--deadline 5" "--filter fused" "--out")
  for bad in "${cases[@]}"; do
    # shellcheck disable=SC2086
    OUT="$tmp/bad-out" bash "$script" $bad >"$tmp/bad.out" 2>"$tmp/bad.err"; rc=$?
    local lines
    lines=$(wc -l <"$tmp/bad.err")
    if [[ $rc == 2 && $lines == 1 && ! -s "$tmp/bad.out" ]] && grep -q '^check-and-bench.sh: ' "$tmp/bad.err"; then
      pass "'$bad' -> exit 2, one line: $(cat "$tmp/bad.err")"
    else
      fail "'$bad' -> exit $rc, $lines stderr lines, stdout $(wc -c <"$tmp/bad.out") bytes: $(head -c 300 "$tmp/bad.err")"
    fi
  done
  [[ ! -e "$tmp/bad-out" ]] && pass "bad arguments write no output folder" || fail "bad arguments created \$OUT"
}

test_emulated() {
  local bin="$build/gpu_check_bench_emu"
  if [[ ! -x "$bin" ]]; then
    echo "SKIP: $bin is not built (the CUDA emulation backend, cmake/CdasCudaEmu.cmake, is not part of this build)"
    exit 77
  fi
  local rc out="$tmp/out"
  local check_filter="${CDAS_GPU_TEST_CHECK_FILTER-bf16}"

  # The program itself: bad arguments, the header.
  "$bin" --filter nope >"$tmp/p.out" 2>"$tmp/p.err"; rc=$?
  [[ $rc == 2 && $(wc -l <"$tmp/p.err") == 1 ]] && pass "gpu_check_bench_emu --filter nope -> exit 2, one line" \
    || fail "gpu_check_bench_emu --filter nope -> exit $rc: $(cat "$tmp/p.err")"
  "$bin" --bench --tokens 0 >/dev/null 2>&1; rc=$?
  [[ $rc == 2 ]] && pass "gpu_check_bench_emu --tokens 0 -> exit 2" || fail "gpu_check_bench_emu --tokens 0 -> exit $rc"

  # A whole emulated run.
  local t0=$SECONDS
  OUT="$out" bash "$script" --emulated --build "$build" ${check_filter:+--filter "$check_filter"} >"$tmp/run.log" 2>&1; rc=$?
  echo "emulated run: exit $rc in $((SECONDS - t0)) s"
  [[ $rc == 0 ]] && pass "emulated run exits 0" || { fail "emulated run exit $rc"; sed 's/^/    /' "$tmp/run.log" | tail -n 30; }
  local n
  n=$(find "$out" -type f | wc -l)
  (( n >= 4 && n <= 8 )) && pass "$n files in \$OUT (at most 8): $(cd "$out" && ls | tr '\n' ' ')" || fail "$n files in \$OUT: $(ls "$out")"
  for f in summary.md gpu-results.md check.log bench.log; do
    [[ -s "$out/$f" ]] && pass "\$OUT/$f" || fail "\$OUT/$f missing or empty"
  done
  if [[ -f "$out/summary.md" ]]; then
    expect_match "$out/summary.md" '^- build: ok in [0-9]+ s \(limit [0-9]+ s\): using ' "summary: build line"
    expect_match "$out/summary.md" '^- check: ok in [0-9]+ s \(limit [0-9]+ s\): [0-9]+ checks, 0 failed' "summary: check line"
    expect_match "$out/summary.md" '^- model: SKIPPED: needs a GPU and torch with CUDA' "summary: model line"
    expect_match "$out/summary.md" '^- pack: SKIPPED: needs a GPU and torch with CUDA' "summary: pack line"
    expect_match "$out/summary.md" '^- memcheck: SKIPPED: compute-sanitizer needs a GPU' "summary: memcheck line"
    expect_match "$out/summary.md" '^- bench: ok in [0-9]+ s \(limit [0-9]+ s\): [1-9][0-9]* rows' "summary: bench line"
    expect_match "$out/summary.md" '^- torch: SKIPPED' "summary: torch line"
    expect_match "$out/summary.md" '^- racecheck: SKIPPED' "summary: racecheck line"
    expect_match "$out/summary.md" '^- finished after [0-9]+ s: 3 ok, 0 failed, 5 skipped' "summary: closing line"
  fi
  if [[ -f "$out/gpu-results.md" ]]; then
    local num='[0-9]+\.[0-9]+' r='[0-9.]+(e-[0-9]+)?'
    expect_match "$out/gpu-results.md" '^\| op \| model \| T \| impl \| ms \| rate \| % of ref \| extra MiB \| note \|$' "results: table header"
    expect_match "$out/gpu-results.md" "^\| gemm \| tiny \| 64 \| cuBLAS \| $num \| $r TF/s \| " "results: cuBLAS reference row"
    expect_match "$out/gpu-results.md" "^\| lm_head_jsd \| tiny \| 16 \| CHUNKED \| $num \| $r TF/s \| [0-9.]+% \| [0-9]+ \| emulated" "results: CHUNKED row"
    expect_match "$out/gpu-results.md" "^\| lm_head_jsd \| tiny \| 64 \| CHUNKED \| $num \| $r TF/s \| " "results: CHUNKED row at T=64"
    expect_match "$out/gpu-results.md" "^\| copy \|  \|  \| cudaMemcpy \| $num \| $r GB/s " "results: copy reference row"
    expect_match "$out/gpu-results.md" "^\| dii fwd \| tiny \(d=64\) \| 64 \| cdas \| $num \| $r GB/s \| [0-9.]+% " "results: DII forward row"
    expect_match "$out/gpu-results.md" "^\| dii bwd \| tiny \(d=64\) \| 64 \| cdas \| $num \| " "results: DII backward row"
    if grep -E '^\| (lm_head_jsd|dii|gemm|copy) ' "$out/gpu-results.md" | grep -qE 'error|failed'; then fail "a bench row reports an error"
    else pass "no bench row reports an error"; fi
  fi

  # Rows are in the file the moment they are measured: kill the bench after its first row.
  local rows="$tmp/rows.md"
  CDAS_CUDA_BACKEND=emulated "$bin" --bench --size small --warmup 1 --reps 2 --filter chunked --out "$rows" >/dev/null 2>&1 &
  local pid=$! waited=0
  while ! grep -q '^| ' "$rows" 2>/dev/null && kill -0 "$pid" 2>/dev/null && (( waited < 300 )); do
    sleep 0.2; waited=$((waited + 1))
  done
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  grep -q '^| gemm | tiny | ' "$rows" 2>/dev/null && pass "a killed bench keeps the rows measured before the kill" \
    || fail "no row in --out after the first measurement"

  # The deadline: with 30 s (10 kept for the closing lines, 20 needed to start a step), the check
  # gets at most 20 s, or is skipped, and the bench, after it, is skipped.
  local out2="$tmp/out2" t1=$SECONDS
  OUT="$out2" bash "$script" --emulated --build "$build" --steps check,bench --deadline 30 \
    ${check_filter:+--filter "$check_filter"} >"$tmp/run2.log" 2>&1; rc=$?
  expect_match "$out2/summary.md" '^- check: ((ok|TIMEOUT) in [0-9]+ s \(limit 20 s\)|SKIPPED: 19 s left before the 30 s deadline)' \
    "deadline: check limited to the time left"
  expect_match "$out2/summary.md" '^- bench: SKIPPED: [0-9]+ s left before the 30 s deadline' "deadline: bench skipped"
  (( SECONDS - t1 <= 40 )) && pass "deadline: the run took $((SECONDS - t1)) s" || fail "deadline: the run took $((SECONDS - t1)) s"

  # A filter that leaves no bench row: the bench step is skipped, not failed.
  local out4="$tmp/out4"
  OUT="$out4" bash "$script" --emulated --build "$build" --steps bench --filter f32 >"$tmp/run4.log" 2>&1; rc=$?
  [[ $rc == 0 ]] && pass "--filter f32: exit 0" || fail "--filter f32: exit $rc"
  expect_match "$out4/summary.md" '^- bench: SKIPPED in [0-9]+ s .*the filter selects no bench row' "--filter f32: bench skipped"

  # A step past its own limit: TIMEOUT with what it was doing, exit status 1, its log kept.
  local out3="$tmp/out3"
  OUT="$out3" bash "$script" --emulated --build "$build" --steps check --budget check=1 >"$tmp/run3.log" 2>&1; rc=$?
  [[ $rc == 1 ]] && pass "a timed-out step makes the exit status 1" || fail "timed-out step, exit $rc"
  expect_match "$out3/summary.md" '^- check: TIMEOUT in [0-9]+ s \(limit 1 s\): last started: (dii |lm_head_jsd |none)' \
    "timeout: the summary says which check was running"
  expect_match "$out3/check.log" '^\$ .*gpu_check_bench_emu --check' "timeout: check.log kept"
  expect_match "$out3/summary.md" '^- finished after [0-9]+ s: 0 ok, 1 failed, 0 skipped' "timeout: closing line"
}

# The kernels-only build the script makes on a GPU machine (CDAS_WITH_TORCH=OFF; here without
# CUDA): it configures and links, exports exactly what the normal libcdas in BUILD_DIR exports,
# needs no libtorch, and its kernels and UNSUPPORTED entry points behave (no_torch_smoke.c).
test_no_torch() {
  local root b="$tmp/no-torch" rc
  root="$(cd "$here/../.." && pwd)"
  cmake -S "$root" -B "$b" -DCMAKE_BUILD_TYPE=Release -DCDAS_WITH_TORCH=OFF -DCDAS_CUDA=OFF \
    -DCDAS_CUDA_EMULATION=OFF -DCDAS_FETCH_DEPS=OFF >"$tmp/nt-configure.log" 2>&1; rc=$?
  [[ $rc == 0 ]] && pass "configure with CDAS_WITH_TORCH=OFF" || { fail "configure exit $rc"; tail -n 20 "$tmp/nt-configure.log"; return; }
  cmake --build "$b" -j "${CDAS_JOBS:-2}" --target cdas >"$tmp/nt-build.log" 2>&1; rc=$?
  [[ $rc == 0 ]] && pass "libcdas builds without torch" || { fail "build exit $rc"; tail -n 30 "$tmp/nt-build.log"; return; }
  if ldd "$b/libcdas.so" | grep -qiE 'torch|c10'; then fail "the kernels-only libcdas links libtorch: $(ldd "$b/libcdas.so" | grep -iE 'torch|c10')"
  else pass "no libtorch dependency"; fi
  if [[ -f "$build/libcdas.so" ]]; then
    if diff <(nm -D --defined-only "$b/libcdas.so" | awk '{print $3}' | sort) \
            <(nm -D --defined-only "$build/libcdas.so" | awk '{print $3}' | sort) >"$tmp/nt-syms.diff"; then
      pass "exports the same symbols as $build/libcdas.so ($(nm -D --defined-only "$b/libcdas.so" | grep -c ' T '))"
    else
      fail "exported symbols differ from the normal build's:"; cat "$tmp/nt-syms.diff"
    fi
  fi
  "${CC:-cc}" -O1 -I "$root/native/include" "$here/no_torch_smoke.c" -o "$tmp/no_torch_smoke" -L "$b" -lcdas -lm \
    -Wl,-rpath,"$b" >"$tmp/nt-cc.log" 2>&1 || { fail "compiling no_torch_smoke.c"; cat "$tmp/nt-cc.log"; return; }
  "$tmp/no_torch_smoke" >"$tmp/nt-smoke.log" 2>&1; rc=$?
  [[ $rc == 0 ]] && pass "$(tail -n 1 "$tmp/nt-smoke.log")" || { fail "no_torch_smoke exit $rc"; cat "$tmp/nt-smoke.log"; }
}

case "$mode" in
  args) test_args ;;
  emulated) test_emulated ;;
  no-torch) test_no_torch ;;
  *) echo "usage: test-check-and-bench.sh args|emulated|no-torch BUILD_DIR" >&2; exit 2 ;;
esac
if (( failures > 0 )); then
  echo "$failures failure(s)"
  exit 1
fi
echo "all passed"

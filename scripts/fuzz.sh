#!/usr/bin/env bash
# Fuzzes every @FuzzTest target (Jazzer, JAZZER_FUZZ=1) for S seconds each and ends with one line
# "N passed, M failed". A target fails when Jazzer finds an input that crashes it (an exception
# other than the parser's documented ones, a hang past --timeout, running out of memory); the
# input is written into the target's committed corpus folder,
# java/src/test/resources/<package>/<Class>Inputs/<method>/, so that the normal test run replays it.
#   bash scripts/fuzz.sh [--seconds S] [--timeout T] [--only Class#method]... [--xmx SIZE] [--startup-allowance A]
#                        [--template-ms M] [--runs N] [--tmp D]
# Maven runs offline; the classes are compiled once, then each target runs in a JVM of its own.
# A JVM is killed after S + T + A seconds (A, default 900: its start and Jazzer's instrumentation of
# the Parquet and Jackson classes, minutes on a loaded machine). Chat templates render under a
# bound of M ms here (200 by default; the product's is 10 s): a slow template is still refused the
# documented way, in a fiftieth of the time (the corpus fills with templates that loop until the
# bound, docs/fuzzing.md).
# --runs N ends a target after N executions (libFuzzer's -runs) if S seconds have not run out first:
# a campaign of a given number of executions.
# The targets write each input to a file under the JVM's temporary folder: a fresh folder under D
# (default /dev/shm, a tmpfs, when it is writable), deleted after the target. On a disk's file
# system, rewriting a file per input costs more than parsing it (block I/O at every execution).
# Each target's line gives libFuzzer's executions and the CPU seconds its JVM used (start and
# instrumentation included). Logs (with libFuzzer's statistics) are in java/target/fuzz/<Class>#<method>.log.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$CDAS_ROOT"

seconds=30 timeout=20 only=() xmx=1g allowance=900 template_ms=200 runs= tmp_root=/dev/shm
while [[ $# -gt 0 ]]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --timeout) timeout="$2"; shift 2 ;;
    --only) only+=("$2"); shift 2 ;;
    --xmx) xmx="$2"; shift 2 ;;
    --startup-allowance) allowance="$2"; shift 2 ;;
    --template-ms) template_ms="$2"; shift 2 ;;
    --runs) runs="$2"; shift 2 ;;
    --tmp) tmp_root="$2"; shift 2 ;;
    -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
    *) echo "fuzz.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ "$seconds" =~ ^[0-9]+$ && "$seconds" -gt 0 ]] || { echo "fuzz.sh: --seconds must be a positive integer" >&2; exit 2; }
[[ "$allowance" =~ ^[0-9]+$ ]] || { echo "fuzz.sh: --startup-allowance must be a number of seconds" >&2; exit 2; }
[[ "$template_ms" =~ ^[0-9]+$ && "$template_ms" -gt 0 ]] || { echo "fuzz.sh: --template-ms must be a positive number of milliseconds" >&2; exit 2; }
[[ -z "$runs" || ( "$runs" =~ ^[0-9]+$ && "$runs" -gt 0 ) ]] || { echo "fuzz.sh: --runs must be a positive number of executions" >&2; exit 2; }
[[ -d "$tmp_root" && -w "$tmp_root" ]] || tmp_root="${TMPDIR:-/tmp}"
runs_arg=()
if [[ -n "$runs" ]]; then runs_arg=(-Djazzer.internal.arg.4=-runs="$runs"); fi

out=java/target/fuzz
mkdir -p "$out"
mvn -B -ntp -q -o -pl java -am -DskipTests "-Dcdas.native.dir=$CDAS_BUILD_DIR" test-compile >"$out/build.log" 2>&1 \
  || { cat "$out/build.log" >&2; echo "fuzz.sh: the build failed" >&2; exit 1; }
mvn -B -ntp -q -o -pl java dependency:build-classpath -Dmdep.includeScope=test "-Dmdep.outputFile=$PWD/$out/classpath.txt" \
  >>"$out/build.log" 2>&1 || { cat "$out/build.log" >&2; echo "fuzz.sh: cannot resolve the test classpath" >&2; exit 1; }
# Jazzer 0.24.0's instrumentation (its bundled ASM) refuses class files of Java 25 (major version 69),
# which leaves the code uninstrumented: no coverage feedback, blind fuzzing. The fuzzing JVM (a JDK 25)
# therefore loads a copy of the project's classes labelled major version 65 (Java 21); the bytecode
# is unchanged and uses nothing a Java 21 class file cannot hold (no preview features).
python3 - "$out" <<'PY'
import os, shutil, sys
out = sys.argv[1]
for name in ("classes", "test-classes"):
    src, dst = os.path.join("java/target", name), os.path.join(out, name)
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst)
    for root, _, files in os.walk(dst):
        for f in files:
            if f.endswith(".class"):
                path = os.path.join(root, f)
                with open(path, "r+b") as fh:
                    head = fh.read(8)
                    if head[:4] == b"\xca\xfe\xba\xbe" and int.from_bytes(head[6:8], "big") > 65:
                        fh.seek(6)
                        fh.write((65).to_bytes(2, "big"))
PY
# The bindings from this checkout, not whatever cdas-bindings snapshot the local Maven repository holds.
deps=$(tr ':' '\n' <"$out/classpath.txt" | grep -v '/dev/cdas/cdas-bindings/' | paste -sd: -)
cp="$out/test-classes:$out/classes:bindings/target/classes:$deps"

# Every @FuzzTest method: the annotation line is followed by "void name(".
mapfile -t targets < <(grep -rl --include='*FuzzTest.java' '@FuzzTest' java/src/test/java | sort | while read -r f; do
  cls=$(sed -e 's|^java/src/test/java/||' -e 's|\.java$||' -e 's|/|.|g' <<<"$f")
  awk '/@FuzzTest/ {want=1; next} want && /void [A-Za-z0-9_]+\(/ {match($0, /void [A-Za-z0-9_]+\(/); print substr($0, RSTART+5, RLENGTH-6); want=0}' "$f" \
    | sed "s|^|$cls#|"
done)
if [[ ${#only[@]} -gt 0 ]]; then
  for o in "${only[@]}"; do
    printf '%s\n' "${targets[@]}" | grep -Fxq -- "$o" || { echo "fuzz.sh: no fuzz target $o" >&2; exit 2; }
  done
  targets=("${only[@]}") # in the order given
fi

# CPU seconds used so far by the finished child processes (`times` run in this shell, not in a
# subshell, whose own children it would count; its second line: user and system), so that each
# target's JVM is charged its own CPU time: on a shared machine the wall clock says more about the
# neighbours than about the target.
children_cpu() {
  times >"$out/.times"
}
cpu_seconds() {
  tail -n 1 "$out/.times" | awk '{ t = 0; for (i = 1; i <= 2; i++) { split($i, a, "m"); t += a[1] * 60 + a[2] } printf "%.1f", t }'
}

passed=0 failed=0
for t in "${targets[@]}"; do
  log="$out/$t.log"
  children_cpu
  cpu0=$(cpu_seconds)
  tmp=$(mktemp -d "$tmp_root/cdas-fuzz.XXXXXX")
  # -max_total_time comes after the annotation's maxDuration, so it wins; -timeout is per input.
  if JAZZER_FUZZ=1 timeout --kill-after=30 $((seconds + timeout + allowance)) java -Xmx"$xmx" -XX:+EnableDynamicAgentLoading \
      --enable-native-access=ALL-UNNAMED -Xshare:auto \
      "-Djava.io.tmpdir=$tmp" "-Dcdas.project.dir=$CDAS_ROOT" "-Dcdas.native.dir=$CDAS_BUILD_DIR" -Dcdas.chatTemplate.timeoutMs="$template_ms" -DDJL_CACHE_DIR="$CDAS_ROOT/java/target/djl-cache" -Dai.djl.offline=true \
      "-Djava.util.logging.config.file=$CDAS_ROOT/java/src/test/resources/logging.properties" \
      "-Djazzer.internal.basedir=$CDAS_ROOT/java" \
      "-Djazzer.instrumentation_includes=dev.cdas.**:com.fasterxml.jackson.core.**:org.apache.parquet.**" \
      "-Djazzer.custom_hook_excludes=dev.cdas.fuzz.**" \
      -Djazzer.internal.arg.0=fuzz -Djazzer.internal.arg.1=-max_total_time="$seconds" \
      -Djazzer.internal.arg.2=-timeout="$timeout" -Djazzer.internal.arg.3=-print_final_stats=1 "${runs_arg[@]}" \
      -cp "$cp" dev.cdas.fuzz.FuzzMain "$t" >"$log" 2>&1; then
    passed=$((passed + 1)); verdict=ok
  else
    failed=$((failed + 1)); verdict=FAILED
  fi
  rm -rf "$tmp"
  # libFuzzer's last words: "Done N runs in T second(s)"
  done_line=$(grep -oE 'Done [0-9]+ runs in [0-9]+ second' "$log" | tail -1 || true)
  executed=$(grep -oE '^Done [0-9]+' <<<"$done_line" | grep -oE '[0-9]+' || true)
  took=$(grep -oE 'in [0-9]+' <<<"$done_line" | grep -oE '[0-9]+' || true)
  children_cpu
  cpu=$(awk -v a="$cpu0" -v b="$(cpu_seconds)" 'BEGIN { printf "%.0f", b - a }')
  # the CPU time includes the JVM's start and Jazzer's instrumentation of the classes
  echo "$t: $verdict, ${executed:-?} executions in ${took:-?} s, ${cpu} s of CPU (log: $log)"
done
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]

#!/usr/bin/env bash
# Tests the distribution as a user gets it (run by scripts/test.sh after the build): packs dist/
# with scripts/package.sh, unpacks the tarball into a temporary folder away from the checkout and,
# from another working directory, with JAVA_HOME and the `java` first on PATH both an older Java
# (a real one from /usr/lib/jvm when the machine has one, else a stand-in that only answers
# -version), runs bin/cdas-native version (libcdas and libtorch must load from the unpacked copy,
# nothing from the checkout) and the bundled demo's `train` without data arguments (the demo found
# in the copy); and checks the launcher's message when no Java 25 exists.
# The demo's `train` runs as `train --method diffmean` (the same no-argument path: demo model and
# pairs found beside the jar, model loaded, one pass over the 181 pairs, a vector written) unless
# CDAS_TEST_DIST_TRAIN=full, which runs the plain no-argument `train` (cdas: 138 training steps,
# then the demo's generations), about 7 times slower; the README gives both times.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$CDAS_ROOT"
fail() { echo "test-dist: FAILED: $*" >&2; exit 1; }
[[ -x dist/bin/cdas-native ]] || fail "dist/bin/cdas-native missing (run scripts/build.sh)"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/cdas-dist-test.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
t0=$SECONDS
tarball="$(bash scripts/package.sh "$tmp/package")"
[[ -s "$tarball" ]] || fail "scripts/package.sh made no tarball"
mkdir -p "$tmp/unpacked"
tar -xzf "$tarball" -C "$tmp/unpacked"
top=("$tmp/unpacked"/*)
[[ ${#top[@]} == 1 && -d "${top[0]}" ]] || fail "the tarball does not unpack to one folder: ${top[*]}"
moved="${top[0]}"
echo "== $(basename "$tarball") ($(du -m "$tarball" | cut -f1) MB, packed and unpacked in $((SECONDS - t0)) s) unpacked to $moved, run from $tmp/elsewhere" >&2
mkdir -p "$tmp/elsewhere" "$tmp/java-tmp"
# An older Java for JAVA_HOME and PATH: a real one if /usr/lib/jvm has one, else a stand-in.
old_jdk=""
for d in /usr/lib/jvm/*; do
  [[ -x "$d/bin/java" && ! -L "$d" ]] || continue
  if "$d/bin/java" -version 2>&1 | grep -qE 'version "(1\.[0-9]|[0-9]|1[0-9]|2[0-4])[."]'; then old_jdk="$d"; break; fi
done
if [[ -z "$old_jdk" ]]; then
  old_jdk="$tmp/old-jdk"
  mkdir -p "$old_jdk/bin"
  cat > "$old_jdk/bin/java" <<'OLD'
#!/bin/sh
echo 'openjdk version "17.0.9" 2023-10-17' >&2
[ "$1" = -version ] && exit 0
echo "the Java 17 stand-in was run: $*" >&2; exit 99
OLD
  chmod +x "$old_jdk/bin/java"
fi
old_version="$("$old_jdk/bin/java" -version 2>&1 | head -1)"
echo "   older Java first on PATH and in JAVA_HOME: $old_jdk ($old_version)" >&2
# The launcher's default search covers /usr/lib/jvm and /opt; a JDK 25 elsewhere (CI's JAVA_HOME) is added.
search="${CDAS_JAVA_SEARCH-/usr/lib/jvm/* /opt/java/* $JAVA_HOME}"
run() {
  (cd "$tmp/elsewhere" && env -u CDAS_JAVA JAVA_HOME="$old_jdk" PATH="$old_jdk/bin:/usr/bin:/bin" \
      CDAS_JAVA_SEARCH="$search" CDAS_JAVA_OPTS="-Djava.io.tmpdir=$tmp/java-tmp" "$moved/bin/cdas-native" "$@")
}

# libcdas.so's dependencies resolve inside the copy (or the system), never inside the checkout.
deps="$(ldd "$moved/lib/libcdas.so")"
if grep -q "not found" <<<"$deps"; then echo "$deps" >&2; fail "unresolved libraries of the moved libcdas.so"; fi
if grep -qF "$CDAS_ROOT" <<<"$deps" || grep -qF "/.deps/" <<<"$deps"; then echo "$deps" >&2; fail "the moved libcdas.so loads libraries from the checkout"; fi
grep -qF "$moved/lib/libtorch_cpu.so" <<<"$deps" || { echo "$deps" >&2; fail "libtorch_cpu.so not loaded from beside the moved libcdas.so"; }

# libcdas_cuda.so (built when nvcc is present) finds cuBLAS by soname: RUNPATH $ORIGIN only, then
# LD_LIBRARY_PATH and the system's folders; given the build's cuBLAS folder on LD_LIBRARY_PATH,
# everything resolves.
if [[ -f "$moved/lib/libcdas_cuda.so" ]]; then
  runpath="$(readelf -d "$moved/lib/libcdas_cuda.so" | sed -n 's/.*(RUNPATH).*\[\(.*\)\]/\1/p')"
  [[ "$runpath" == '$ORIGIN' ]] || fail "libcdas_cuda.so: RUNPATH is '$runpath', expected \$ORIGIN only"
  cublas_dir="$(ldd "$CDAS_BUILD_DIR/libcdas_cuda.so" 2>/dev/null | awk '$1 ~ /^libcublas\.so/ && $3 ~ /^\// {print $3}' | head -1)"
  if [[ -n "$cublas_dir" ]]; then
    deps="$(LD_LIBRARY_PATH="$(dirname "$cublas_dir")" ldd "$moved/lib/libcdas_cuda.so")"
    if grep -q "not found" <<<"$deps"; then echo "$deps" >&2; fail "libcdas_cuda.so: unresolved with cuBLAS on LD_LIBRARY_PATH"; fi
    grep -qF "$(dirname "$cublas_dir")/libcublas" <<<"$deps" || { echo "$deps" >&2; fail "libcdas_cuda.so: cuBLAS not taken from LD_LIBRARY_PATH"; }
  fi
  echo "   libcdas_cuda.so: RUNPATH \$ORIGIN; cuBLAS found through LD_LIBRARY_PATH${cublas_dir:+ ($(dirname "$cublas_dir"))}" >&2
fi

out="$(run version 2>&1)" || { echo "$out" >&2; fail "bin/cdas-native version"; }
echo "$out" >&2
grep -qF "$moved/lib/libcdas.so" <<<"$out" || fail "version: libcdas.so not loaded from the moved dist"
grep -qE "torch at run time: .*$moved/lib/libtorch_cpu.so" <<<"$out" || fail "version: libtorch not loaded from the moved dist"

# The start-up cache: not in the tarball (it fits one JDK build); `aot-cache` records one in the
# unpacked copy, and with -XX:AOTMode=on (the JVM refuses to start when it cannot use the cache) the
# copy's runs start with it. A cache for another jar is ignored without a message.
[[ ! -e "$moved/lib/cdas-native.aot" ]] || fail "the tarball holds lib/cdas-native.aot (JDK-specific; it must be left out)"
t0=$SECONDS
out="$(run aot-cache 2>&1)" || { echo "$out" >&2; fail "bin/cdas-native aot-cache"; }
[[ -s "$moved/lib/cdas-native.aot" ]] || { echo "$out" >&2; fail "aot-cache wrote no $moved/lib/cdas-native.aot"; }
ls -a "$moved/lib" | grep -q '\.part' && fail "aot-cache left a temporary file in $moved/lib"
aot_run() {  # with extra JVM options $1
  local opts="$1"; shift
  (cd "$tmp/elsewhere" && env -u CDAS_JAVA JAVA_HOME="$old_jdk" PATH="$old_jdk/bin:/usr/bin:/bin" CDAS_JAVA_SEARCH="$search" \
      CDAS_JAVA_OPTS="-Djava.io.tmpdir=$tmp/java-tmp $opts" "$@")
}
out="$(aot_run -XX:AOTMode=on "$moved/bin/cdas-native" version 2>&1)" || { echo "$out" >&2; fail "version with -XX:AOTMode=on: the JVM could not use the recorded cache"; }
out="$(aot_run -Xlog:aot=info "$moved/bin/cdas-native" version 2>&1)" || { echo "$out" >&2; fail "version with -Xlog:aot=info"; }
grep -qF "Opened AOT cache $moved/lib/cdas-native.aot" <<<"$out" || { echo "$out" >&2; fail "the launcher did not give the JVM lib/cdas-native.aot"; }
out="$(aot_run -Xlog:aot=info env CDAS_AOT_CACHE=off "$moved/bin/cdas-native" version 2>&1)" || { echo "$out" >&2; fail "version with CDAS_AOT_CACHE=off"; }
grep -qF "Opened AOT cache" <<<"$out" && { echo "$out" >&2; fail "CDAS_AOT_CACHE=off: the cache was still given to the JVM"; }
touch "$moved/cdas-native.jar"
out="$(run version 2>&1)" || { echo "$out" >&2; fail "version with a cache recorded for another jar"; }
grep -qiE "\[(aot|cds)|AOT cache" <<<"$out" && { echo "$out" >&2; fail "a cache for another jar printed JVM messages"; }
echo "   aot-cache in the unpacked dist: $(( $(stat -c %s "$moved/lib/cdas-native.aot") / 1048576 )) MB, $((SECONDS - t0)) s; used by the JVM; a stale one ignored quietly" >&2

out="$(run --help 2>&1)" || { echo "$out" >&2; fail "bin/cdas-native --help"; }
if grep -qE "DESIGN\.md|shared/docs" <<<"$out"; then fail "--help refers outside the repository"; fi

# glibc malloc: the launcher sets one arena and the thresholds through GLIBC_TUNABLES, unless the
# user tunes malloc or turns it off (libcdas's version line says what the process got).
tuned="glibc.malloc.arena_max=1:glibc.malloc.mmap_threshold=268435456:glibc.malloc.trim_threshold=2146435072"
malloc_line() {  # VAR=value ... for the run; GLIBC_TUNABLES and CDAS_MALLOC_TUNING unset otherwise
  (unset GLIBC_TUNABLES CDAS_MALLOC_TUNING; [[ $# -gt 0 ]] && export "$@"; run version 2>&1 | grep '^malloc: ' || true)
}
line="$(malloc_line)"
[[ "$line" == "malloc: glibc, left as is (GLIBC_TUNABLES sets malloc: $tuned)" ]] \
  || fail "the launcher's malloc settings: got '$line'"
line="$(malloc_line CDAS_MALLOC_TUNING=off)"
[[ "$line" == "malloc: glibc, left as is (CDAS_MALLOC_TUNING=off)" ]] || fail "CDAS_MALLOC_TUNING=off: got '$line'"
line="$(malloc_line GLIBC_TUNABLES=glibc.malloc.arena_max=4)"
[[ "$line" == "malloc: glibc, left as is (GLIBC_TUNABLES sets malloc: glibc.malloc.arena_max=4)" ]] \
  || fail "a user's GLIBC_TUNABLES malloc setting must be left as it is: got '$line'"
echo "   launcher malloc settings: set by default, left to CDAS_MALLOC_TUNING=off and to a user's GLIBC_TUNABLES" >&2

# `version` and `train` passing show the launcher skipped the older Java (it cannot run the jar).
if [[ "${CDAS_TEST_DIST_TRAIN:-}" == full ]]; then
  train_args=(train); vector=startrek.safetensors
else
  train_args=(train --method diffmean); vector=startrek-diffmean.safetensors
fi
t0=$SECONDS
out="$(run "${train_args[@]}" 2>&1)" || { echo "$out" >&2; fail "${train_args[*]} (no data arguments) from the unpacked dist"; }
grep -qF "$moved/demo/model" <<<"$out" || { echo "$out" >&2; fail "train: the demo was not taken from the unpacked dist"; }
[[ -f "$tmp/java-tmp/cdas-demo/$vector" ]] || fail "train: no vector written"
echo "   ${train_args[*]} (no data arguments) on the demo of the unpacked dist: ok, $((SECONDS - t0)) s" >&2

# No Java 25 anywhere: a clear message, exit 1.
set +e
out="$(cd "$tmp/elsewhere" && env -u CDAS_JAVA JAVA_HOME="$old_jdk" PATH="$old_jdk/bin:/usr/bin:/bin" \
    CDAS_JAVA_SEARCH="$tmp/none" "$moved/bin/cdas-native" version 2>&1)"
rc=$?
set -e
[[ $rc == 1 ]] || { echo "$out" >&2; fail "launcher without a Java 25: exit $rc, expected 1"; }
grep -q "needs Java 25 or newer" <<<"$out" && grep -q "17" <<<"$out" || { echo "$out" >&2; fail "launcher without a Java 25: unclear message"; }
echo "   launcher without a Java 25: $(head -1 <<<"$out")" >&2
# The README, the docs and the sources refer to nothing outside the repository.
if grep -rnE "DESIGN\.md|shared/docs|\.\./shared" README.md docs java/src/main native benchmarks demo tools scripts examples \
    --exclude=test-dist.sh >&2; then
  fail "references outside the repository (above)"
fi
echo "== dist test passed" >&2

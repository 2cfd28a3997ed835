#!/usr/bin/env bash
# Tests the built dist/ as a user gets it (run by scripts/test.sh after the build): copies it to a
# temporary folder away from the checkout and, from another working directory, with JAVA_HOME and
# the `java` first on PATH both an old Java, runs bin/cdas-native version (libcdas and libtorch
# must load from the copy, nothing from the checkout) and a no-argument `train --method diffmean`
# (the bundled demo found in the copy); and checks the launcher's message when no Java 25 exists.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$CDAS_ROOT"
fail() { echo "test-dist: FAILED: $*" >&2; exit 1; }
[[ -x dist/bin/cdas-native ]] || fail "dist/bin/cdas-native missing (run scripts/build.sh)"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/cdas-dist-test.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
echo "== dist/ copied to $tmp/moved, run from $tmp/elsewhere" >&2
cp -R dist "$tmp/moved"
mkdir -p "$tmp/elsewhere" "$tmp/old-jdk/bin" "$tmp/java-tmp"
# An old Java that only answers -version: JAVA_HOME and PATH both point at it.
cat > "$tmp/old-jdk/bin/java" <<'OLD'
#!/bin/sh
echo 'openjdk version "17.0.9" 2023-10-17' >&2
[ "$1" = -version ] && exit 0
echo "the Java 17 stand-in was run: $*" >&2; exit 99
OLD
chmod +x "$tmp/old-jdk/bin/java"
# The launcher's default search covers /usr/lib/jvm and /opt; a JDK 25 elsewhere (CI's JAVA_HOME) is added.
search="${CDAS_JAVA_SEARCH-/usr/lib/jvm/* /opt/java/* $JAVA_HOME}"
run() {
  (cd "$tmp/elsewhere" && env -u CDAS_JAVA JAVA_HOME="$tmp/old-jdk" PATH="$tmp/old-jdk/bin:/usr/bin:/bin" \
      CDAS_JAVA_SEARCH="$search" CDAS_JAVA_OPTS="-Djava.io.tmpdir=$tmp/java-tmp" "$tmp/moved/bin/cdas-native" "$@")
}

# libcdas.so's dependencies resolve inside the copy (or the system), never inside the checkout.
deps="$(ldd "$tmp/moved/lib/libcdas.so")"
if grep -q "not found" <<<"$deps"; then echo "$deps" >&2; fail "unresolved libraries of the moved libcdas.so"; fi
if grep -qF "$CDAS_ROOT" <<<"$deps" || grep -qF "/.deps/" <<<"$deps"; then echo "$deps" >&2; fail "the moved libcdas.so loads libraries from the checkout"; fi
grep -qF "$tmp/moved/lib/libtorch_cpu.so" <<<"$deps" || { echo "$deps" >&2; fail "libtorch_cpu.so not loaded from beside the moved libcdas.so"; }

out="$(run version 2>&1)" || { echo "$out" >&2; fail "bin/cdas-native version"; }
echo "$out" >&2
grep -qF "$tmp/moved/lib/libcdas.so" <<<"$out" || fail "version: libcdas.so not loaded from the moved dist"
grep -qE "torch at run time: .*$tmp/moved/lib/libtorch_cpu.so" <<<"$out" || fail "version: libtorch not loaded from the moved dist"

out="$(run --help 2>&1)" || { echo "$out" >&2; fail "bin/cdas-native --help"; }
if grep -qE "DESIGN\.md|shared/docs" <<<"$out"; then fail "--help refers outside the repository"; fi

out="$(run train --method diffmean 2>&1)" || { echo "$out" >&2; fail "no-argument train --method diffmean from the moved dist"; }
grep -qF "$tmp/moved/demo/model" <<<"$out" || { echo "$out" >&2; fail "train: the demo was not taken from the moved dist"; }
[[ -f "$tmp/java-tmp/cdas-demo/startrek-diffmean.safetensors" ]] || fail "train: no vector written"
echo "   no-argument train (diffmean) on the demo of the moved dist: ok" >&2

# No Java 25 anywhere: a clear message, exit 1.
set +e
out="$(cd "$tmp/elsewhere" && env -u CDAS_JAVA JAVA_HOME="$tmp/old-jdk" PATH="$tmp/old-jdk/bin:/usr/bin:/bin" \
    CDAS_JAVA_SEARCH="$tmp/none" "$tmp/moved/bin/cdas-native" version 2>&1)"
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

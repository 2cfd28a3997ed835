#!/usr/bin/env bash
# Runs the library jar as the JPMS module dev.cdas (run by scripts/test.sh after `mvn verify`, which
# runs the JUnit tests on the class path): a small client module (scripts/module-test, `requires
# dev.cdas` and nothing else) is compiled against the library on the module path and run from it,
# with the modules dev.cdas requires on the module path and everything else (Parquet and Hadoop, whose
# jars split packages, and the automatic modules' own dependencies) on the class path. The client
# checks that it got module dev.cdas with its API exported and its internals (fan-out, references) not,
# then trains a diffmean vector with the demo model on a Parquet fixture through dev.cdas.api: the
# module descriptor's exports, its reads of the class path (Parquet), the tokenizer and the chat
# template are all exercised. The command line (dev.cdas:cdas-native-cli) is not involved.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$CDAS_ROOT"
fail() { echo "test-module: FAILED: $*" >&2; exit 1; }
version="$(sed -n '/<artifactId>cdas-native-parent<\/artifactId>/,/<version>/s:.*<version>\(.*\)</version>.*:\1:p' pom.xml | head -1)"
lib="$CDAS_ROOT/java/target/cdas-native-$version.jar"
bindings="$CDAS_ROOT/bindings/target/cdas-bindings-$version.jar"
[[ -f "$lib" && -f "$bindings" ]] || fail "$lib or $bindings missing (mvn package first)"
# The library artifact carries the library alone: no command line, no picocli, no SLF4J binding, no
# shaded dependency; the command line is the other artifact (cli/).
entries="$(jar tf "$lib")" || fail "$lib cannot be listed"
grep -q '^module-info.class$' <<<"$entries" || fail "$lib has no module-info.class"
grep -q '^dev/cdas/api/SteeringVectors.class$' <<<"$entries" || fail "$lib has no dev/cdas/api/SteeringVectors.class"
if grep -E '^(dev/cdas/cli/|picocli/|org/slf4j/|com/fasterxml/|ai/djl/|org/apache/)' <<<"$entries" | head -5 | grep .; then
  fail "$lib carries the command line, picocli, an SLF4J binding or a shaded dependency (entries above)"
fi
cli_jar="$CDAS_ROOT/cli/target/cdas-native.jar"
[[ -f "$cli_jar" ]] || fail "$cli_jar missing (mvn package first)"
jar tf "$cli_jar" | grep -q '^dev/cdas/cli/Main.class$' || fail "$cli_jar has no dev/cdas/cli/Main.class"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/cdas-module-test.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
"${MVN[@]}" -pl java dependency:build-classpath -Dmdep.outputFile="$tmp/cp" -Dmdep.includeScope=runtime \
    >"$tmp/mvn.log" 2>&1 || { cat "$tmp/mvn.log" >&2; fail "the library's dependencies (mvn dependency:build-classpath)"; }
if tr ':' '\n' <"$tmp/cp" | grep -E '/(picocli|slf4j-nop|slf4j-simple|logback-classic)-[0-9][^/]*\.jar$'; then
  fail "the library depends on the command line's picocli or on an SLF4J binding (listed above)"
fi
# The modules dev.cdas requires (module-info.java), with theirs.
modules='/(jackson-databind|jackson-core|jackson-annotations|tokenizers|jinjava|progressbar|jline-[a-z]+|xchart)-[0-9][^/]*\.jar$'
mp="$lib:$bindings:$(tr ':' '\n' <"$tmp/cp" | grep -E "$modules" | paste -sd:)"
cp="$(tr ':' '\n' <"$tmp/cp" | grep -vE "$modules" | paste -sd:)"
javac -d "$tmp/client" --module-path "$mp" $(find scripts/module-test -name '*.java') 2>"$tmp/javac.log" \
    || { cat "$tmp/javac.log" >&2; fail "the client module does not compile against module dev.cdas"; }
out="$tmp/v.safetensors"
log="$(cd "$tmp" && java --enable-native-access=dev.cdas,dev.cdas.bindings,ai.djl.tokenizers,org.jline.nativ,ALL-UNNAMED \
    --add-modules jdk.unsupported -Dcdas.library="$CDAS_ROOT/dist/lib/libcdas.so" \
    --module-path "$tmp/client:$mp" --class-path "$cp" -m dev.cdas.moduletest/dev.cdas.moduletest.TrainFromModulePath \
    "$CDAS_ROOT/demo/model" "$CDAS_ROOT/java/src/test/resources/data/one_concept.parquet" 1 "$out" 2>&1)" \
    || { echo "$log" >&2; fail "train from the module path"; }
[[ -s "$out" ]] || { echo "$log" >&2; fail "no vector written"; }
grep -q "^wrote .* from module dev.cdas$" <<<"$log" || { echo "$log" >&2; fail "the client did not finish"; }
echo "== module dev.cdas from the module path, used by a client module: diffmean on a Parquet file: ok" >&2

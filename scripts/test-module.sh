#!/usr/bin/env bash
# Runs the library jar as the JPMS module dev.cdas (run by scripts/test.sh after `mvn verify`, which
# runs the JUnit tests on the class path): java -m dev.cdas/dev.cdas.cli.Main with the modules it
# requires on the module path and everything else (Parquet and Hadoop, whose jars split packages,
# and the automatic modules' own dependencies) on the class path, training a diffmean vector on a
# Parquet fixture with the demo model: the module descriptor, the module's reads of the class
# path (Parquet), the tokenizer and the chat template are all exercised.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$CDAS_ROOT"
fail() { echo "test-module: FAILED: $*" >&2; exit 1; }
version="$(sed -n '/<artifactId>cdas-native-parent<\/artifactId>/,/<version>/s:.*<version>\(.*\)</version>.*:\1:p' pom.xml | head -1)"
lib="$CDAS_ROOT/java/target/cdas-native-$version.jar"
bindings="$CDAS_ROOT/bindings/target/cdas-bindings-$version.jar"
[[ -f "$lib" && -f "$bindings" ]] || fail "$lib or $bindings missing (mvn package first)"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/cdas-module-test.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
"${MVN[@]}" -pl java dependency:build-classpath -Dmdep.outputFile="$tmp/cp" -Dmdep.includeScope=runtime \
    >"$tmp/mvn.log" 2>&1 || { cat "$tmp/mvn.log" >&2; fail "the library's dependencies (mvn dependency:build-classpath)"; }
# The modules dev.cdas requires (module-info.java), with theirs; picocli for the command line.
modules='/(jackson-databind|jackson-core|jackson-annotations|tokenizers|jinjava|progressbar|jline-[a-z]+|xchart|picocli)-[0-9][^/]*\.jar$'
mp="$lib:$bindings:$(tr ':' '\n' <"$tmp/cp" | grep -E "$modules" | paste -sd:)"
cp="$(tr ':' '\n' <"$tmp/cp" | grep -vE "$modules" | paste -sd:)"
out="$tmp/v.safetensors"
log="$(cd "$tmp" && java --enable-native-access=dev.cdas,dev.cdas.bindings,ai.djl.tokenizers,org.jline.nativ,ALL-UNNAMED \
    --add-modules jdk.unsupported,info.picocli -Dcdas.library="$CDAS_ROOT/dist/lib/libcdas.so" \
    --module-path "$mp" --class-path "$cp" -m dev.cdas/dev.cdas.cli.Main \
    train --method diffmean --model "$CDAS_ROOT/demo/model" --data "$CDAS_ROOT/java/src/test/resources/data/one_concept.parquet" \
    --layer 1 --out "$out" --max-response-tokens 8 2>&1)" || { echo "$log" >&2; fail "train from the module path"; }
[[ -s "$out" ]] || { echo "$log" >&2; fail "no vector written"; }
grep -q "^wrote " <<<"$log" || { echo "$log" >&2; fail "train did not finish"; }
echo "== module dev.cdas from the module path: train --method diffmean on a Parquet file: ok" >&2

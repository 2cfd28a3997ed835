# Sourced by the CPU benchmark scripts: JDK and paths (scripts/env.sh), a built dist/ (libcdas and
# the jar), the benchmarks jar, and the results folder. Sets CDAS_LIBRARY, jar and out.
source "$(dirname "${BASH_SOURCE[0]}")/../scripts/env.sh"
cd "$CDAS_ROOT"
[[ -f dist/cdas-native.jar && -f dist/lib/libcdas.so ]] || bash scripts/build.sh
"${MVN[@]}" -pl benchmarks -am package -DskipTests
export CDAS_LIBRARY="$CDAS_ROOT/dist/lib/libcdas.so"
jar=benchmarks/target/cdas-benchmarks.jar
out=benchmarks/target/results
mkdir -p "$out"
# Other work on the machine skews both sides (libtorch's OpenMP pool suffers most): record it.
CDAS_BENCH_LOAD=$(cut -d' ' -f1-3 /proc/loadavg)
export CDAS_BENCH_LOAD

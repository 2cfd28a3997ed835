#!/usr/bin/env bash
# Builds everything: the native libraries (CMake; fetches libtorch offline when no torch is
# given through CMAKE_PREFIX_PATH), then the Java modules, and lays out dist/:
#   dist/cdas-native.jar      the command line and library (java -jar dist/cdas-native.jar)
#   dist/lib/libcdas.so       found by the jar next to itself; it finds libtorch by its RPATH
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$CDAS_ROOT"
cmake_args=(-S . -B "$CDAS_BUILD_DIR" -DCMAKE_BUILD_TYPE=Release)
[[ -n "${CMAKE_PREFIX_PATH:-}" ]] && cmake_args+=("-DCMAKE_PREFIX_PATH=$CMAKE_PREFIX_PATH")
echo "== native build ($CDAS_BUILD_DIR)" >&2
mkdir -p "$CDAS_BUILD_DIR"
cmake "${cmake_args[@]}" >"$CDAS_BUILD_DIR/configure.log" 2>&1 || { cat "$CDAS_BUILD_DIR/configure.log" >&2; exit 1; }
cmake --build "$CDAS_BUILD_DIR" -j "$CDAS_JOBS"
cmake --install "$CDAS_BUILD_DIR" --prefix "$CDAS_ROOT/dist" >/dev/null
echo "== java build" >&2
"${MVN[@]}" install -DskipTests
cp java/target/cdas-native.jar dist/cdas-native.jar
echo "== built dist/cdas-native.jar" >&2

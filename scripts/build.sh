#!/usr/bin/env bash
# Builds everything: the native libraries (CMake; fetches libtorch offline when no torch is
# given through CMAKE_PREFIX_PATH), then the Java modules, and lays out dist/, which works from
# any path (move or copy the folder as a whole):
#   dist/bin/cdas-native      the launcher: finds a Java 25+ and runs the jar
#   dist/cdas-native.jar      the command line, shaded with the library and all dependencies
#                             (cli/; the plain library jar is java/target/cdas-native-<version>.jar)
#   dist/lib/libcdas.so       found by the jar next to itself; with the fetched libtorch (no
#                             CMAKE_PREFIX_PATH) the libtorch libraries it needs are put beside it
#                             and found through RUNPATH $ORIGIN; with a torch of your own, that
#                             torch is referred to by its absolute path
#   dist/demo/                the bundled demo (model and pairs) for a no-argument `train`
#   dist/lib/cdas-native.aot  the JVM's start-up cache for this JDK and jar (`dist/bin/cdas-native
#                             aot-cache`, a short training run on the demo recorded; about 25 s here;
#                             CDAS_SKIP_AOT_CACHE=1 skips it and removes a stale one)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$CDAS_ROOT"
cmake_args=(-S . -B "$CDAS_BUILD_DIR" -DCMAKE_BUILD_TYPE=Release)
if [[ -n "${CMAKE_PREFIX_PATH:-}" ]]; then
  cmake_args+=("-DCMAKE_PREFIX_PATH=$CMAKE_PREFIX_PATH" -DCDAS_TORCH_BESIDE=OFF)
  torch_beside=0
else
  cmake_args+=(-DCDAS_TORCH_BESIDE=ON)
  torch_beside=1
fi
echo "== native build ($CDAS_BUILD_DIR)" >&2
mkdir -p "$CDAS_BUILD_DIR"
cmake "${cmake_args[@]}" >"$CDAS_BUILD_DIR/configure.log" 2>&1 || { cat "$CDAS_BUILD_DIR/configure.log" >&2; exit 1; }
cmake --build "$CDAS_BUILD_DIR" -j "$CDAS_JOBS"
cmake --install "$CDAS_BUILD_DIR" --prefix "$CDAS_ROOT/dist" >/dev/null
if [[ "$torch_beside" == 1 ]]; then
  # The libtorch libraries libcdas.so loads (resolved through the build tree's absolute RUNPATH),
  # hard-linked (or copied) beside the installed one, whose RUNPATH is $ORIGIN only.
  torch_cpu="$(ldd "$CDAS_BUILD_DIR/libcdas.so" | awk '$1 == "libtorch_cpu.so" {print $3}')"
  [[ -f "$torch_cpu" ]] || { echo "cdas: libtorch_cpu.so not resolved for $CDAS_BUILD_DIR/libcdas.so" >&2; exit 1; }
  torch_lib="$(dirname "$torch_cpu")"
  ldd "$CDAS_BUILD_DIR/libcdas.so" | awk -v d="$torch_lib/" 'index($3, d) == 1 {print $3}' | while read -r lib; do
    dest="dist/lib/$(basename "$lib")"
    [[ "$lib" -ef "$dest" ]] || ln -f "$lib" "$dest" 2>/dev/null || cp -f "$lib" "$dest"
  done
fi
install -D -m 755 scripts/launcher/cdas-native dist/bin/cdas-native
rm -rf dist/demo && mkdir -p dist/demo && cp -R demo/model demo/data demo/README.md dist/demo/
echo "== java build" >&2
"${MVN[@]}" install -DskipTests
cp cli/target/cdas-native.jar dist/cdas-native.jar
# The start-up cache records the jar's size and time, so a new jar needs a new one.
rm -f dist/lib/cdas-native.aot
if [[ -z "${CDAS_SKIP_AOT_CACHE:-}" ]]; then
  echo "== start-up cache (dist/bin/cdas-native aot-cache)" >&2
  dist/bin/cdas-native aot-cache >&2 || echo "warning: no start-up cache; every run starts about a second slower" >&2
fi
echo "== built dist/ (dist/bin/cdas-native --help)" >&2

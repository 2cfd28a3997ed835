#!/usr/bin/env bash
# Builds everything and runs the main job, training a steering vector on the bundled demo: java -jar dist/cdas-native.jar
# with no arguments. Extra arguments are passed to the jar.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$CDAS_ROOT"
bash scripts/build.sh
exec java --enable-native-access=ALL-UNNAMED -jar dist/cdas-native.jar "$@"

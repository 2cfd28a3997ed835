#!/usr/bin/env bash
# Builds everything and runs the main job, training a steering vector on the bundled demo:
# dist/bin/cdas-native with no arguments. Extra arguments are passed to it.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$CDAS_ROOT"
bash scripts/build.sh
exec dist/bin/cdas-native "$@"

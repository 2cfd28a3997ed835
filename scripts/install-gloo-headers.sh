#!/usr/bin/env bash
# Gloo's headers, which `train --distributed` needs at build time (libtorch exports the c10d
# ProcessGroupGloo, but the torch wheel ships no gloo/*.h): Debian/Ubuntu's libgloo-dev, installed
# with apt-get when this runs as root on such a system and they are missing. Otherwise it says
# what to install and exits 0: the build still succeeds without them, and says so
# (cmake/CdasDist.cmake); only --distributed is then unavailable.
set -euo pipefail
for d in ${GLOO_ROOT:+"$GLOO_ROOT/include"} /usr/include /usr/local/include; do
  if [[ -f "$d/gloo/algorithm.h" ]]; then
    echo "== Gloo headers: $d/gloo" >&2
    exit 0
  fi
done
if [[ "$(id -u)" == 0 ]] && command -v apt-get >/dev/null; then
  echo "== installing Gloo's headers (apt-get install libgloo-dev)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y -q libgloo-dev >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q libgloo-dev >/dev/null; }
  [[ -f /usr/include/gloo/algorithm.h ]] && { echo "== Gloo headers: /usr/include/gloo" >&2; exit 0; }
fi
echo "== Gloo headers not found and not installed: train --distributed will be unavailable" \
     "(install libgloo-dev, or set GLOO_ROOT, and rebuild)" >&2

#!/usr/bin/env bash
# Packs the built dist/ (scripts/build.sh) into one tarball for another machine:
#   scripts/package.sh [FOLDER]   → FOLDER/cdas-native-<version>-linux-<arch>.tar.gz (default FOLDER: target/)
# It unpacks to one folder, cdas-native-<version>/, laid out as dist/ (bin/cdas-native, the jar,
# lib/ with libcdas and the libtorch it loads, demo/), which works from wherever it is unpacked.
# Written through a temporary file and renamed; prints the tarball's path on stdout.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$CDAS_ROOT"
fail() { echo "package: $*" >&2; exit 1; }
for f in dist/bin/cdas-native dist/cdas-native.jar dist/lib/libcdas.so dist/demo/model/config.json; do
  [[ -e "$f" ]] || fail "$f is missing; build dist/ first (bash scripts/build.sh)"
done
# The project's version: the first <version> of the parent pom (the one after <artifactId>).
version="$(sed -n '/<artifactId>cdas-native-parent<\/artifactId>/,/<version>/s:.*<version>\(.*\)</version>.*:\1:p' pom.xml | head -1)"
[[ -n "$version" ]] || fail "no <version> found in pom.xml"
name="cdas-native-$version-linux-$(uname -m)"
out="${1:-$CDAS_ROOT/target}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
tarball="$out/$name.tar.gz"
tmp="$(mktemp "$out/.$name.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
# One top folder, files in name order, owner root, so two packings of the same dist/ differ only by
# the files' times. Hard links (dist/lib's libtorch linked from .deps/) are stored as plain files.
# The start-up cache (lib/cdas-native.aot) is left out: it fits only the JDK build that recorded it;
# `bin/cdas-native aot-cache` makes one for the Java of the machine the tarball is unpacked on.
tar --sort=name --owner=0 --group=0 --numeric-owner --exclude='dist/lib/cdas-native.aot' --exclude='dist/lib/.cdas-native.aot.*' \
    --transform "s,^dist\(/\|$\),cdas-native-$version\1," -cf - dist | gzip -6 > "$tmp"
chmod "$(printf '%o' $(( 0666 & ~$(umask) )))" "$tmp"
mv -f "$tmp" "$tarball"
trap - EXIT
echo "$tarball"

# Sourced by the project's scripts: picks a JDK 25 (JAVA_HOME if it is one, else the newest
# /usr/lib/jvm/*25* installation) and keeps Maven quiet and offline-friendly.
_cdas_java_ok() { [[ -x "$1/bin/java" ]] && "$1/bin/java" -version 2>&1 | grep -qE 'version "(2[5-9]|[3-9][0-9])'; }
if [[ -z "${JAVA_HOME:-}" ]] || ! _cdas_java_ok "$JAVA_HOME"; then
  for _jdk in /usr/lib/jvm/*25* /usr/lib/jvm/*-2[6-9]* /opt/java/*25*; do
    if _cdas_java_ok "$_jdk"; then export JAVA_HOME="$_jdk"; break; fi
  done
fi
if [[ -z "${JAVA_HOME:-}" ]] || ! _cdas_java_ok "$JAVA_HOME"; then
  echo "cdas: a JDK 25 or newer is needed; set JAVA_HOME to one" >&2
  return 1 2>/dev/null || exit 1
fi
export PATH="$JAVA_HOME/bin:$PATH"
CDAS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CDAS_ROOT
CDAS_BUILD_DIR="${CDAS_BUILD_DIR:-$CDAS_ROOT/build}"
export CDAS_BUILD_DIR
CDAS_JOBS="${CDAS_JOBS:-$(nproc 2>/dev/null || echo 2)}"
MVN=(mvn -B -ntp -q "-Dcdas.native.dir=$CDAS_BUILD_DIR")
unset _jdk

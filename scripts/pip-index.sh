# Sourced: sets CDAS_PIP_INDEX_ARGS so pip asks the configured mirrors first instead of retrying
# an unreachable default index for minutes. Without a configured mirror, pip's defaults are used.
CDAS_PIP_INDEX_ARGS=()
_extra=$(python3 -m pip config get global.extra-index-url 2>/dev/null || true)
if [[ -n "$_extra" ]]; then
  read -r -a _urls <<<"$_extra"
  CDAS_PIP_INDEX_ARGS+=(--index-url "${_urls[0]}")
  for _u in "${_urls[@]:1}"; do CDAS_PIP_INDEX_ARGS+=(--extra-index-url "$_u"); done
fi
unset _extra _urls _u

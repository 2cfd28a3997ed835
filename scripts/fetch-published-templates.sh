#!/usr/bin/env bash
# Fetches the chat templates that Llama-3.1-Instruct, Qwen2.5-Instruct, Phi-3.5-mini-instruct and
# Gemma-2-it publish, and a Python with transformers to render them, for TransformersChatTemplateTest
# (run by scripts/test.sh before the Java tests; docs/chat-templates.md).
#
# The templates are other projects' files: the repository holds no copy. They are taken at test time
# from the wheel of trl (TRL_VERSION below), which ships the models' original templates for its own
# identity checks (trl/chat_templates/llama3_1.jinja, qwen2_5.jinja, phi3_5.jinja, gemma.jinja; its
# README says Gemma and Gemma-2 ship the same template), downloaded with pip from the configured
# index or mirror (scripts/pip-index.sh) into $CDAS_BUILD_DIR/published-templates/ (ignored, kept).
# transformers (TRANSFORMERS_VERSION) and jinja2 are pip-installed into the virtual environment
# scripts/test-distributed.sh makes for torchrun ($CDAS_BUILD_DIR/torchrun-venv, torch==2.13.0+cpu),
# made here the same way if it is missing, so that CI installs torch once.
#
# Prints the two variables the test reads, CDAS_PUBLISHED_TEMPLATES and CDAS_PYTHON, as
# NAME=value lines. Any failure (no network to the index, a wheel without the templates, a failed
# install) ends it with exit status 1 and one line "fetch-published-templates: FAILED: ...": the
# check is part of the test command and is never skipped.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$CDAS_ROOT"

TRL_VERSION="${CDAS_TRL_VERSION:-1.13.0}"
TRANSFORMERS_VERSION="${CDAS_TRANSFORMERS_VERSION:-5.17.0}"
TORCH_VERSION="${CDAS_TORCHRUN_TORCH_VERSION:-2.13.0+cpu}"
TEMPLATES=(llama3_1 qwen2_5 phi3_5 gemma)

fail() { echo "fetch-published-templates: FAILED: $*" >&2; exit 1; }
dest="$CDAS_BUILD_DIR/published-templates"
venv="$CDAS_BUILD_DIR/torchrun-venv"
mkdir -p "$CDAS_BUILD_DIR"
log="$(mktemp "${TMPDIR:-/tmp}/cdas-fetch-templates.XXXXXX")"
trap 'rm -f "$log"' EXIT
source "$CDAS_ROOT/scripts/pip-index.sh"
links=()
[[ -d /opt/wheels ]] && links+=(--find-links /opt/wheels)

if [[ "$(cat "$dest/.trl" 2>/dev/null)" != "$TRL_VERSION" ]]; then
  echo "   fetching the published chat templates (trl==$TRL_VERSION) into $dest" >&2
  rm -rf "$dest" "$dest.part"
  mkdir -p "$dest.part/wheel"
  python3 -m pip download --quiet --disable-pip-version-check --no-deps "${CDAS_PIP_INDEX_ARGS[@]}" "${links[@]}" \
      -d "$dest.part/wheel" "trl==$TRL_VERSION" >"$log" 2>&1 \
    || fail "pip could not download trl==$TRL_VERSION (the wheel that carries the templates): $(tail -n 1 "$log")"
  python3 - "$dest.part" "${TEMPLATES[@]}" <<'PY' || fail "trl==$TRL_VERSION's wheel lacks the templates (see above)"
import glob, os, sys, zipfile
out, names = sys.argv[1], sys.argv[2:]
wheels = glob.glob(os.path.join(out, "wheel", "trl-*.whl"))
if len(wheels) != 1:
    sys.exit("expected one trl wheel, found %d" % len(wheels))
with zipfile.ZipFile(wheels[0]) as z:
    for n in names:
        member = "trl/chat_templates/%s.jinja" % n
        try:
            data = z.read(member)
        except KeyError:
            sys.exit("%s has no %s" % (os.path.basename(wheels[0]), member))
        if not data.strip():
            sys.exit("%s is empty" % member)
        with open(os.path.join(out, n + ".jinja"), "wb") as f:
            f.write(data)
PY
  rm -rf "$dest.part/wheel"
  echo "$TRL_VERSION" >"$dest.part/.trl"
  mv "$dest.part" "$dest"
fi

if [[ ! -x "$venv/bin/python" || "$(cat "$venv/.torch" 2>/dev/null)" != "$TORCH_VERSION" ]]; then
  echo "   installing torch==$TORCH_VERSION into $venv (shared with scripts/test-distributed.sh)" >&2
  rm -rf "$venv"
  python3 -m venv "$venv" >"$log" 2>&1 \
    && "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${CDAS_PIP_INDEX_ARGS[@]}" \
         "${links[@]}" "torch==$TORCH_VERSION" >>"$log" 2>&1 \
    || { rm -rf "$venv"; fail "pip could not install torch==$TORCH_VERSION into $venv: $(tail -n 1 "$log")"; }
  echo "$TORCH_VERSION" >"$venv/.torch"
fi
if [[ "$(cat "$venv/.transformers" 2>/dev/null)" != "$TRANSFORMERS_VERSION" ]]; then
  echo "   installing transformers==$TRANSFORMERS_VERSION and jinja2 into $venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${CDAS_PIP_INDEX_ARGS[@]}" "${links[@]}" \
      "transformers==$TRANSFORMERS_VERSION" jinja2 >"$log" 2>&1 \
    || fail "pip could not install transformers==$TRANSFORMERS_VERSION into $venv: $(tail -n 1 "$log")"
  echo "$TRANSFORMERS_VERSION" >"$venv/.transformers"
fi
"$venv/bin/python" -c "import sys, jinja2, transformers; sys.exit(transformers.__version__ != sys.argv[1])" \
    "$TRANSFORMERS_VERSION" >"$log" 2>&1 \
  || fail "$venv/bin/python does not import transformers==$TRANSFORMERS_VERSION and jinja2: $(tail -n 1 "$log")"
echo "CDAS_PUBLISHED_TEMPLATES=$dest"
echo "CDAS_PYTHON=$venv/bin/python"

#!/usr/bin/env bash
# Data parallel with real processes (run by scripts/test.sh after the build): `train --distributed`
# on 5 pairs of the demo in minibatches of 4 (each epoch's last minibatch has one pair, so rank 0's
# slice of it is empty) as 2 processes on 127.0.0.1, launched by hand (MASTER_ADDR, MASTER_PORT,
# RANK, WORLD_SIZE) and by torchrun --no-python; each vector must equal the one-process vector
# within 1e-5 (fp32), and only rank 0 writes. torchrun comes from torch==2.13.0+cpu (the version of
# the libtorch the build links by default) pip-installed once into a virtual environment under the
# build folder ($CDAS_BUILD_DIR/torchrun-venv, kept); if pip cannot install it, the torchrun case
# reports SKIP (not a pass) and the rest still runs. CDAS_CLI overrides the command
# (default dist/bin/cdas-native).
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/env.sh"
cd "$CDAS_ROOT"
fail() { echo "test-distributed: FAILED: $*" >&2; exit 1; }
read -r -a cli <<<"${CDAS_CLI:-dist/bin/cdas-native}"
# torchrun --no-python runs the command as given: a relative path made absolute
[[ "${cli[0]}" == */* ]] && cli[0]="$(cd "$(dirname "${cli[0]}")" && pwd)/$(basename "${cli[0]}")"
tmp="$(mktemp -d "${TMPDIR:-/tmp}/cdas-distributed-test.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
head -n 5 demo/data/startrek.jsonl >"$tmp/pairs.jsonl"
args=(train --model demo/model --data "$tmp/pairs.jsonl" --layer 1 --epochs 2 --batch 4 --lr 0.05 --seed 3
      --max-response-tokens 8 --threads 1 --dtype f32)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# max |a - b| over tensor w of two vector files; fails above 1e-5
compare() {
  python3 - "$1" "$2" <<'PY'
import json, struct, sys
def w(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        start, end = header["w"]["data_offsets"]
        assert header["w"]["dtype"] == "F32", header["w"]
        f.seek(8 + n + start)
        raw = f.read(end - start)
    return struct.unpack("<%df" % (len(raw) // 4), raw)
a, b = w(sys.argv[1]), w(sys.argv[2])
assert len(a) == len(b) and len(a) > 0, (len(a), len(b))
diff = max(abs(x - y) for x, y in zip(a, b))
print("%.3g" % diff)
sys.exit(0 if diff <= 1e-5 else 1)
PY
}
start=$(date +%s)
echo "== data parallel: one process, then 2 ranks on 127.0.0.1 by hand, then 2 ranks under torchrun" >&2
"${cli[@]}" "${args[@]}" --out "$tmp/one.safetensors" >"$tmp/one.log" 2>&1 || { cat "$tmp/one.log" >&2; fail "one process"; }

# without the launcher's environment: exit 2, one line naming what is missing
set +e
env -u MASTER_ADDR -u MASTER_PORT -u RANK -u WORLD_SIZE "${cli[@]}" "${args[@]}" --distributed \
    --out "$tmp/none.safetensors" >"$tmp/none.log" 2>&1
rc=$?
set -e
[[ $rc == 2 ]] && grep -q "^error: --distributed needs MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE .*missing: MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE$" "$tmp/none.log" \
    || { cat "$tmp/none.log" >&2; fail "--distributed without MASTER_ADDR etc. gave exit $rc, not 2 with the missing variables"; }

port=$(free_port)
for r in 0 1; do
  MASTER_ADDR=127.0.0.1 MASTER_PORT=$port RANK=$r WORLD_SIZE=2 \
    "${cli[@]}" "${args[@]}" --distributed --dist-timeout 300 --out "$tmp/hand.safetensors" >"$tmp/hand-$r.log" 2>&1 &
  eval "pid$r=\$!"
done
wait "$pid0" || { cat "$tmp/hand-0.log" >&2; fail "rank 0 by hand"; }
wait "$pid1" || { cat "$tmp/hand-1.log" >&2; fail "rank 1 by hand"; }
grep -q "data parallel: rank 1 of 2 (environment: RANK=1, WORLD_SIZE=2" "$tmp/hand-1.log" || { cat "$tmp/hand-1.log" >&2; fail "rank 1 did not say which rank it is"; }
grep -q "rank 1: done; rank 0 wrote" "$tmp/hand-1.log" || { cat "$tmp/hand-1.log" >&2; fail "rank 1 did not leave the writing to rank 0"; }
grep -q "^wrote " "$tmp/hand-0.log" || { cat "$tmp/hand-0.log" >&2; fail "rank 0 did not write"; }
diff=$(compare "$tmp/one.safetensors" "$tmp/hand.safetensors") || fail "2 ranks by hand differ from one process by $diff (> 1e-5)"
echo "   by hand: max |w_2 ranks - w_1 process| = $diff" >&2
[[ -z "$(ls "$tmp" | grep -E '\.tmp|checkpoint')" ]] || fail "left files behind: $(ls "$tmp")"

venv="$CDAS_BUILD_DIR/torchrun-venv"
torch_version="${CDAS_TORCHRUN_TORCH_VERSION:-2.13.0+cpu}"
if [[ ! -x "$venv/bin/torchrun" || "$(cat "$venv/.torch" 2>/dev/null)" != "$torch_version" ]]; then
  echo "   installing torchrun (torch==$torch_version) into $venv" >&2
  source "$CDAS_ROOT/scripts/pip-index.sh"
  links=()
  [[ -d /opt/wheels ]] && links+=(--find-links /opt/wheels)
  rm -rf "$venv"
  # made in place: torchrun's script names the venv's python by absolute path; .torch marks it complete
  if python3 -m venv "$venv" >"$tmp/venv.log" 2>&1 \
     && "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${CDAS_PIP_INDEX_ARGS[@]}" \
          "${links[@]}" "torch==$torch_version" >>"$tmp/venv.log" 2>&1; then
    echo "$torch_version" >"$venv/.torch"
  else
    tail -n 5 "$tmp/venv.log" >&2
    rm -rf "$venv"
    echo "   SKIP: torchrun case (pip could not install torch==$torch_version; see above)" >&2
    echo "== data parallel: by hand passed, torchrun SKIPPED ($(( $(date +%s) - start )) s)" >&2
    exit 0
  fi
fi
port=$(free_port)
"$venv/bin/torchrun" --nproc_per_node 2 --no-python --master_addr 127.0.0.1 --master_port "$port" \
    "${cli[@]}" "${args[@]}" --distributed --dist-timeout 300 --out "$tmp/torchrun.safetensors" >"$tmp/torchrun.log" 2>&1 \
    || { cat "$tmp/torchrun.log" >&2; fail "torchrun"; }
grep -q "data parallel: rank 1 of 2 (torchrun: RANK=1, WORLD_SIZE=2, store 127.0.0.1:$port (torchrun's))" "$tmp/torchrun.log" \
    || { cat "$tmp/torchrun.log" >&2; fail "under torchrun, rank 1 did not use torchrun's store"; }
diff=$(compare "$tmp/one.safetensors" "$tmp/torchrun.safetensors") || fail "2 ranks under torchrun differ from one process by $diff (> 1e-5)"
echo "   torchrun: max |w_2 ranks - w_1 process| = $diff" >&2
echo "== data parallel: 2 ranks by hand and under torchrun equal one process ($(( $(date +%s) - start )) s)" >&2

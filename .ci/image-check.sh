#!/usr/bin/env bash
# Build Dockerfile.cpu for real (podman against a local stand-in base, see ../shared/ci/container-check.sh), run a
# tiny suite inside the image with no network, and validate the results.json it prints.
set -euo pipefail
cd "$(dirname "$0")/.."
check=${CONTAINER_CHECK:-../shared/ci/container-check.sh}
[ -f "$check" ] || { echo "image-check: $check not found (it lives in the team's shared/ci)" >&2; exit 1; }

# The network here reaches PyPI only: feed PyTorch's CPU wheel from this machine's local wheels to the build.
mkdir -p wheelhouse
for dir in ${PIP_FIND_LINKS:-} /opt/wheels; do
  for wheel in "$dir"/torch-2.13.0+cpu-*.whl; do [ -f "$wheel" ] && cp -n "$wheel" wheelhouse/; done
done
ls wheelhouse/torch-*.whl >/dev/null 2>&1 || echo "image-check: no local torch wheel; the build uses PyTorch's CPU index"

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
lock_sha=$(sha256sum bench/catalog/models.lock.json 2>/dev/null | cut -c1-64 || true)
bash "$check" -f Dockerfile.cpu -t localhost/bench:cpu \
  --build-arg "MODEL_LOCK_SHA256=${lock_sha:-none}" --build-arg "GIT_COMMIT=$(git rev-parse HEAD)" . -- \
  run --suite smoke --repetitions 1 --min-window-s 0.5 --idle-s 0.5 --no-codecarbon --no-report \
      --reports-dir /tmp/reports --run-id image-smoke --json >"$out/stdout"
grep '^\[container-check' "$out/stdout" || true
# The document is the JSON object in the container's stdout (container-check's own lines start with '[').
sed -n '/^{/,/^}/p' "$out/stdout" >"$out/results.json"
.venv/bin/bench validate "$out/results.json"
python3 - "$out/results.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
assert doc["status"] == "complete" and all(c["status"] == "ok" for c in doc["cells"]), "cells failed in the image"
assert doc["environment"]["software"]["hf_hub_offline"] == "1", "the image must run offline"
assert doc["environment"]["software"]["git_commit"], "the image must record the kit's commit"
print(f"image-check: OK, {len(doc['cells'])} cells ran inside the image")
PY

# Dockerfile.cuda against the same stand-in base, with the CUDA-only layers (vLLM, CUDA torch, model download)
# skipped: everything else in it is proven to build, and the kit inside it reads every shipped GPU profile.
bash "$check" -f Dockerfile.cuda -t localhost/bench:cuda-check --build-arg CUDA_LAYERS=0 --build-arg PROFILE=h100 \
  --build-arg "GIT_COMMIT=$(git rev-parse HEAD)" . -- profiles validate
echo "image-check: Dockerfile.cuda (CUDA_LAYERS=0) built and ran"

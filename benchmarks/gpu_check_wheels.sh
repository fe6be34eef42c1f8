#!/usr/bin/env bash
# Download the wheels benchmarks/gpu_check.py needs beyond a stock CUDA PyTorch environment, for the GPU machine
# (CPython 3.12, manylinux x86_64), into DIR; print the total size (the budget is 60 MB with the model files).
# The check runs linear-bow (no xgboost) and uses CodeCarbon only when installed: pydantic and Zeus are all it needs.
# Usage: benchmarks/gpu_check_wheels.sh DIR
set -euo pipefail
dir=${1:?usage: $0 DIR}
mkdir -p "$dir"
# Zeus (the device layer, bench/devices) comes --no-deps: importing its NVIDIA module needs httpx (its zeusd client)
# and nvidia-ml-py, which the stock image already has; amdsmi is optional to it.
for spec in pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 \
    typing-extensions==4.16.0 zeus==0.16.0 httpx==0.28.1 httpcore==1.0.9 h11==0.16.0 anyio==4.11.0 sniffio==1.3.1; do
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    -d "$dir" "$spec"
done
du -cb "$dir"/*.whl | awk 'END {printf "wheels: %.1f MB in total\n", $1 / 1e6}'

#!/usr/bin/env bash
# Usage: drop-amdsmi-without-rocm.sh PYTHON [KEEP_DIR]
# Zeus (the kit's device layer) requires amdsmi unconditionally. amdsmi's PyPI package raises KeyError, not
# ImportError, at `import amdsmi` where ROCm's libamd_smi.so is missing, and Ray's AMD probe (ray/_private/
# thirdparty/pyamdsmi) catches only ImportError: `import ray` (the kit's multi-node meters, vLLM's multi-node serving)
# then fails on every machine without ROCm. So where ROCm's library is absent, uninstall the package; with KEEP_DIR,
# keep its wheel there first (tests/unit/test_devices_amd.py checks the fake amdsmi against its source).
# bench/devices/amd.py reports "amdsmi not installed" then, as on any machine without AMD GPUs.
set -euo pipefail
python="$1"; keep="${2:-}"
if ls /opt/rocm*/lib/libamd_smi.so >/dev/null 2>&1; then exit 0; fi
version="$("$python" -c 'import importlib.metadata as m; print(m.version("amdsmi"))' 2>/dev/null || true)"
[ -n "$version" ] || exit 0
if [ -n "$keep" ] && ! ls "$keep"/amdsmi-"$version"-*.whl >/dev/null 2>&1; then
    "$python" -m pip download -q --no-deps "amdsmi==$version" -d "$keep"
fi
"$python" -m pip uninstall -q -y amdsmi
echo "== amdsmi $version uninstalled: no ROCm library here (its import would break Ray's)${keep:+; wheel kept in $keep}"

"""`import bench` and the light modules must not pull in the heavy libraries (DESIGN: lazy "module:Class")."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Always present (this modules).
LIGHT = ["bench", "bench.backends", "bench.catalog.models", "bench.catalog.embedders", "bench.backends.traditional"]
# Other rooms of the package, imported when they exist so the check grows with the tree.
LIGHT_IF_PRESENT = ["bench.cli", "bench.runner", "bench.config", "bench.data", "bench.meters"]
HEAVY = ["torch", "transformers", "sklearn", "xgboost", "sentence_transformers", "vllm", "codecarbon"]


def test_light_imports_do_not_load_heavy_libraries() -> None:
    code = textwrap.dedent(
        f"""
        import importlib, importlib.util, json, sys
        imported = []
        for name in {LIGHT!r}:
            importlib.import_module(name)
            imported.append(name)
        for name in {LIGHT_IF_PRESENT!r}:
            if importlib.util.find_spec(name) is not None:
                importlib.import_module(name)
                imported.append(name)
        heavy = [name for name in {HEAVY!r} if name in sys.modules]
        print(json.dumps({{"imported": imported, "heavy": heavy}}))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(LIGHT) <= set(report["imported"])
    assert report["heavy"] == [], f"importing {report['imported']} loaded {report['heavy']}"

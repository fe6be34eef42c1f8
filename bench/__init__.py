"""bench: energy and accuracy of text-classification inference, measured per component, on any machine.

Importing this package is deliberately cheap: torch, transformers, sklearn and vLLM load only when a backend that
needs them runs (see ``bench.backends.create_backend``: backends are "module:Class" strings imported on use).
"""

from pathlib import Path

__version__ = "0.1.0"

#: The checkout (or the image's /opt/bench/src): hardware_profiles/, the Dockerfiles and reports/reference/ lie here,
#: beside the package, because the kit is installed editable.
SOURCE_ROOT = Path(__file__).resolve().parent.parent

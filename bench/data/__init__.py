"""Data loading and splitting: catalog sets (PyPI packages, Hugging Face Hub at a pinned revision), local files,
and deterministic seeded splits recorded as indices.

Importing this package is cheap: ``datasets``, ``pyarrow`` and ``numpy`` load only inside the functions that need
them.
"""

from bench.data.labeled import LabeledTexts, content_sha256
from bench.data.loaders import load_dataset
from bench.data.splits import Split, make_splits, splits_sha256

__all__ = ["LabeledTexts", "Split", "content_sha256", "load_dataset", "make_splits", "splits_sha256"]

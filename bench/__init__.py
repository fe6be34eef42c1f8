"""bench: energy and accuracy of text-classification inference, measured per component, on any machine.

Importing this package is deliberately cheap: torch, transformers, sklearn and vLLM load only when a backend that
needs them runs (see ``bench.backends.create_backend``: backends are "module:Class" strings imported on use).
"""

__version__ = "0.1.0"

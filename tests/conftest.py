"""Shared fixtures. Tests run offline: the Hugging Face Hub is never contacted."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Set before any test imports huggingface_hub, which reads it at import time.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parent.parent
PROFILES = REPO / "hardware_profiles"


@pytest.fixture
def profiles_dir() -> Path:
    return PROFILES

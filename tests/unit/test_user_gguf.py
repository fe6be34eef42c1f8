"""A user's own model named on the command line: ``hf:`` a GGUF file goes to llama.cpp, a folder to the profile's LLM
backend, and a path that is neither is refused with what to give (``bench.catalog.resolve.local_model_folder``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.catalog.models import ENTRY_BACKENDS, LLM_BACKENDS, user_model_spec
from bench.catalog.resolve import local_model_folder
from bench.errors import ConfigError


def test_a_gguf_file_is_run_by_llama_cpp_a_folder_by_the_hf_pipeline(tmp_path: Path) -> None:
    spec = user_model_spec(f"hf:{tmp_path / 'm.gguf'}")
    assert spec.backend == ENTRY_BACKENDS["llamacpp"] and spec.params["serving"] == "scoring"
    assert user_model_spec(f"hf:{tmp_path}").backend == LLM_BACKENDS["hf_pipeline"]
    assert user_model_spec("hf:org/name.gguf").backend == LLM_BACKENDS["hf_pipeline"]  # a Hub id, not a file


def test_a_path_that_is_no_model_folder_is_refused_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such folder"):
        local_model_folder(str(tmp_path / "missing"), option="hf")
    (tmp_path / "f.bin").write_bytes(b"x")
    with pytest.raises(ConfigError, match="a file, not a folder"):
        local_model_folder(str(tmp_path / "f.bin"), option="hf")
    with pytest.raises(ConfigError, match=r"no config\.json"):
        local_model_folder(str(tmp_path), option="hf")
    (tmp_path / "config.json").write_text("{}")
    assert local_model_folder(str(tmp_path), option="clf") == tmp_path
    assert local_model_folder("org/name", option="hf") is None  # a Hub id: resolved from the cache later

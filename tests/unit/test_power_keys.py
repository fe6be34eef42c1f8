"""The device serving keys (issue 26): ``power_limit_w`` and ``gpu_clock_mhz`` parsed, named, validated in profiles,
carried by leaderboard names; the power module's parts (range checks, signals held, the validity check) on fakes."""

from __future__ import annotations

import signal
import tomllib

import pytest

from bench.catalog.models import get_model_spec, serving_label, split_serving
from bench.config import list_profiles, load_profile, load_profile_file, profiles_dir
from bench.devices.nvidia import open_devices
from bench.errors import ConfigError
from bench.leaderboard.validate import MODEL_NAME_RE
from bench.run import power
from bench.run.models import without_device_settings
from bench.validation import limit_problems
from tests.fakes.fake_pynvml import NVML_ERROR_INVALID_ARGUMENT, FakePynvml, fake_gpus


def test_device_keys_parse_on_any_model_and_name_canonically() -> None:
    assert split_serving("linear-bow[power_limit_w=300]") == ("linear-bow", {"power_limit_w": 300})
    spec = get_model_spec("linear-bow[gpu_clock_mhz=1410,power_limit_w=300]")
    assert spec.name == "linear-bow[power_limit_w=300,gpu_clock_mhz=1410]" and spec.kind == "traditional"
    assert spec.params["power_limit_w"] == 300 and "power_limit_w" not in without_device_settings(spec).params
    llm = get_model_spec("llama-3.1-8b[power_limit_w=438,serving=batched,batch_size=64]")
    assert llm.name == "llama-3.1-8b[serving=batched,batch_size=64,power_limit_w=438]"
    assert serving_label(llm.name) == "llama-3.1-8b[batched,bs=64,438 W]"
    with pytest.raises(
        ConfigError,
        match=r"traditional model, which takes only the device keys power_limit_w and gpu_clock_mhz \(not batch_size\)",
    ):
        get_model_spec("linear-bow[batch_size=4,power_limit_w=300]")
    for bad in ("0", "-5", "300.5", "max"):
        with pytest.raises(ConfigError, match=f"power_limit_w='{bad}': must be an integer >= 1"):
            split_serving(f"linear-bow[power_limit_w={bad}]")
    assert MODEL_NAME_RE.match(llm.name) and MODEL_NAME_RE.match("linear-bow[power_limit_w=300,gpu_clock_mhz=1410]")


def test_every_gpu_profile_has_a_power_suite_of_four_limits_from_the_datasheet_maximum() -> None:
    gpu_profiles = [n for n in list_profiles() if load_profile(n).hardware.device == "cuda"]
    assert set(gpu_profiles) == {"a100", "a30", "b200", "gh200", "h100", "h200", "l4", "v100"}
    # GH200's datasheet gives the module's power range (CPU + GPU + memory), not what NVML's limit caps: no suite
    assert "power" not in load_profile("gh200").suites
    assert "No power suite" in (profiles_dir() / "gh200.toml").read_text()
    for name in (n for n in gpu_profiles if n != "gh200"):
        profile = load_profile_file(profiles_dir() / f"{name}.toml")  # what `bench profiles validate` loads
        suite = profile.suite("power")
        limits = [split_serving(m)[1]["power_limit_w"] for m in suite.models]
        bases = {split_serving(m)[0] for m in suite.models}
        assert bases == {"llama-3.1-8b"} and len(limits) == 4 and limits == sorted(limits, reverse=True)
        assert all(split_serving(m)[1]["batch_size"] == 64 for m in suite.models)
        assert limits[0] == profile.hardware.gpu_max_power_w
        assert "datasheet" in suite.description and "Min Power Limit" in suite.description
    assert [split_serving(m)[1]["power_limit_w"] for m in load_profile("h100").suite("power").models] == [
        700,
        612,
        525,
        438,
    ]


def _profile_with(models: list[str], name: str = "h100") -> dict:
    data = tomllib.loads((profiles_dir() / f"{name}.toml").read_text())
    data["suites"]["power"]["models"] = models
    return data


def test_a_profile_limit_above_the_board_or_on_a_cpu_profile_is_refused(tmp_path) -> None:
    from bench.config import HardwareProfile

    with pytest.raises(ValueError, match="power_limit_w=800, above the board's maximum gpu_max_power_w = 700 W"):
        HardwareProfile.model_validate(_profile_with(["linear-bow[power_limit_w=800]"]))
    cpu = tomllib.loads((profiles_dir() / "cpu.toml").read_text())
    cpu["suites"]["power"] = {"datasets": ["tomatoes"], "models": ["linear-bow[power_limit_w=100]"]}
    with pytest.raises(ValueError, match="needs device = 'cuda'"):
        HardwareProfile.model_validate(cpu)


def test_setters_through_zeus_on_the_fake_as_nvml_answers() -> None:
    fake = FakePynvml(fake_gpus(1, power_limit_range_w=(100.0, 400.0), control_permission=True))
    opened = open_devices([0], library=fake)
    try:
        gpu = opened.devices[0]
        assert gpu.power_limit_constraints_w() == (100.0, 400.0) and gpu.power_management_limit_w() == 400.0
        gpu.set_power_limit_w(250)
        assert fake.gpus[0].power_limit_w == 250.0 and gpu.state()["power_limit_w"] == 250.0
        assert gpu.supported_graphics_clocks_mhz()[:2] == [210, 225]
        gpu.lock_gpu_clocks_mhz(1005, 1005)
        assert fake.gpus[0].locked_clocks_mhz == (1005, 1005) and gpu.state()["sm"] == 1005
        gpu.reset_gpu_locked_clocks()
        assert fake.gpus[0].locked_clocks_mhz is None
        with pytest.raises(Exception) as err:  # NVML refuses a limit outside its constraints
            gpu.set_power_limit_w(50)
        assert "InvalidArgument" in str(err.value) and fake.gpus[0].power_limit_w == 250.0
        fake.gpus[0].control_permission = False
        with pytest.raises(Exception) as err:
            gpu.probe_control()
        assert getattr(err.value, "kind", None) == "permission"
    finally:
        opened.close()
    assert NVML_ERROR_INVALID_ARGUMENT == 2


def test_applied_restores_what_was_set_when_a_later_gpu_fails(tmp_path) -> None:
    fake = FakePynvml(fake_gpus(2, control_permission=True, power_limit_w=350.0))
    fake.gpus[1].errors["nvmlDeviceSetPowerManagementLimit"] = NVML_ERROR_INVALID_ARGUMENT
    opened = open_devices([0, 1], library=fake)
    journal = power.Journal(tmp_path / "journal")
    try:
        with (
            pytest.raises(Exception, match="InvalidArgument"),
            power.applied(opened.devices, {"power_limit_w": 200}, journal),
        ):
            pytest.fail("the block must not run when a GPU could not be set")
    finally:
        opened.close()
    assert [g.power_limit_w for g in fake.gpus] == [350.0, 350.0]
    # GPU 0 was set and put back; GPU 1 never changed (its restore is a no-op: Zeus writes only a different value)
    assert fake.gpus[0].control_log == [("power_limit_mw", 200_000), ("power_limit_mw", 350_000)]
    assert list((tmp_path / "journal").glob("*.json")) == []


def test_signals_are_held_during_a_restore_then_acted_on() -> None:
    done = []
    with pytest.raises(KeyboardInterrupt), power.signals_held():
        signal.raise_signal(signal.SIGTERM)
        done.append("restore finished")  # not cut in half by the signal
    assert done == ["restore finished"]
    assert signal.getsignal(signal.SIGTERM) is not None


def test_a_cell_whose_gpus_held_another_limit_is_invalid() -> None:
    records = [{"index": 0, "power_limit_w_start": 300.0, "power_limit_w_end": 400.0}]
    assert limit_problems("linear-bow[power_limit_w=300]", records) == [
        "energy.gpu: GPU 0 power limit read 400 W at the window's end, the model asks for power_limit_w=300"
    ]
    assert limit_problems("linear-bow", records) == []

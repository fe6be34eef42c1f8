"""RaplMeter against fake powercap trees (no RAPL hardware needed)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from bench.errors import MeterError
from bench.meters import rapl
from bench.meters.rapl import RaplMeter

MAX_RANGE_UJ = 262_143_328_850  # a real Intel package value


def make_zone(parent: Path, zone: str, name: str, energy_uj: int, max_range_uj: int | None = MAX_RANGE_UJ) -> Path:
    d = parent / zone
    d.mkdir(parents=True)
    (d / "name").write_text(name + "\n")
    (d / "energy_uj").write_text(f"{energy_uj}\n")
    if max_range_uj is not None:
        (d / "max_energy_range_uj").write_text(f"{max_range_uj}\n")
    return d


def set_energy(zone_dir: Path, energy_uj: int) -> None:
    (zone_dir / "energy_uj").write_text(f"{energy_uj}\n")


def window(meter: RaplMeter, updates: dict[Path, int]):
    meter.start()
    for zone_dir, value in updates.items():
        set_energy(zone_dir, value)
    return meter.stop()


def test_one_package(tmp_path: Path) -> None:
    pkg = make_zone(tmp_path, "intel-rapl:0", "package-0", 1_000_000)
    meter = RaplMeter(tmp_path, poll_s=None)
    assert meter.components() == ("cpu",)
    reading = window(meter, {pkg: 3_500_000})
    cpu = reading.components["cpu"]
    assert cpu.energy_j == pytest.approx(2.5)
    assert cpu.method == "measured:rapl"
    assert cpu.detail["wraps"] == 0
    assert [d["zone"] for d in cpu.detail["domains"]] == ["intel-rapl:0"]
    assert set(reading.components) == {"cpu"}


def test_two_packages_are_summed(tmp_path: Path) -> None:
    p0 = make_zone(tmp_path, "intel-rapl:0", "package-0", 0)
    p1 = make_zone(tmp_path, "intel-rapl:1", "package-1", 10_000_000)
    reading = window(RaplMeter(tmp_path, poll_s=None), {p0: 4_000_000, p1: 16_000_000})
    assert reading.components["cpu"].energy_j == pytest.approx(10.0)
    names = [d["name"] for d in reading.components["cpu"].detail["domains"]]
    assert names == ["package-0", "package-1"]


def test_subzones_not_double_counted_flat_layout(tmp_path: Path) -> None:
    pkg = make_zone(tmp_path, "intel-rapl:0", "package-0", 0)
    core = make_zone(tmp_path, "intel-rapl:0:0", "core", 0)
    uncore = make_zone(tmp_path, "intel-rapl:0:1", "uncore", 0)
    reading = window(RaplMeter(tmp_path, poll_s=None), {pkg: 5_000_000, core: 3_000_000, uncore: 1_000_000})
    cpu = reading.components["cpu"]
    assert cpu.energy_j == pytest.approx(5.0)
    assert {i["name"] for i in cpu.detail["ignored"]} == {"core", "uncore"}


def test_nested_layout_is_read(tmp_path: Path) -> None:
    # /sys/devices/virtual/powercap/intel-rapl: sub-zones live inside their package directory.
    pkg = make_zone(tmp_path, "intel-rapl:0", "package-0", 0)
    make_zone(pkg, "intel-rapl:0:0", "core", 0)
    dram = make_zone(pkg, "intel-rapl:0:1", "dram", 0)
    meter = RaplMeter(tmp_path, poll_s=None)
    assert meter.components() == ("cpu", "ram")
    reading = window(meter, {pkg: 7_000_000, dram: 2_000_000})
    assert reading.components["cpu"].energy_j == pytest.approx(7.0)
    assert reading.components["ram"].energy_j == pytest.approx(2.0)


def test_root_above_control_directory(tmp_path: Path) -> None:
    # A container mounting the host's /sys/devices/virtual/powercap at some path.
    pkg = make_zone(tmp_path / "intel-rapl", "intel-rapl:0", "package-0", 0)
    make_zone(pkg, "intel-rapl:0:0", "core", 0)
    reading = window(RaplMeter(tmp_path, poll_s=None), {pkg: 1_500_000})
    assert reading.components["cpu"].energy_j == pytest.approx(1.5)


def test_dram_subzone_gives_ram(tmp_path: Path) -> None:
    p0 = make_zone(tmp_path, "intel-rapl:0", "package-0", 0)
    d0 = make_zone(tmp_path, "intel-rapl:0:0", "dram", 0)
    p1 = make_zone(tmp_path, "intel-rapl:1", "package-1", 0)
    d1 = make_zone(tmp_path, "intel-rapl:1:0", "dram", 0)
    reading = window(RaplMeter(tmp_path, poll_s=None), {p0: 1_000_000, d0: 250_000, p1: 2_000_000, d1: 750_000})
    assert reading.components["cpu"].energy_j == pytest.approx(3.0)  # dram is not in cpu
    ram = reading.components["ram"]
    assert ram.energy_j == pytest.approx(1.0)
    assert ram.method == "measured:rapl"


def test_top_level_dram_gives_ram(tmp_path: Path) -> None:
    pkg = make_zone(tmp_path, "intel-rapl:0", "package-0", 0)
    dram = make_zone(tmp_path, "intel-rapl:1", "dram", 0)
    reading = window(RaplMeter(tmp_path, poll_s=None), {pkg: 1_000_000, dram: 500_000})
    assert reading.components["cpu"].energy_j == pytest.approx(1.0)
    assert reading.components["ram"].energy_j == pytest.approx(0.5)


def test_psys_and_mmio_ignored(tmp_path: Path) -> None:
    pkg = make_zone(tmp_path, "intel-rapl:0", "package-0", 0)
    psys = make_zone(tmp_path, "intel-rapl:1", "psys", 0)
    mmio = make_zone(tmp_path, "intel-rapl-mmio:0", "package-0", 0)  # second interface to the same counter
    reading = window(RaplMeter(tmp_path, poll_s=None), {pkg: 2_000_000, psys: 9_000_000, mmio: 2_000_000})
    cpu = reading.components["cpu"]
    assert cpu.energy_j == pytest.approx(2.0)
    assert {"zone": "intel-rapl:1", "name": "psys"} in cpu.detail["ignored"]


def test_wrap_around_uses_max_energy_range(tmp_path: Path) -> None:
    pkg = make_zone(tmp_path, "intel-rapl:0", "package-0", MAX_RANGE_UJ - 1_000_000)
    reading = window(RaplMeter(tmp_path, poll_s=None), {pkg: 2_000_000})
    cpu = reading.components["cpu"]
    # delta = end - start + max_range = 2e6 - (max - 1e6) + max = 3e6 uJ
    assert cpu.energy_j == pytest.approx(3.0)
    assert cpu.detail["wraps"] == 1


def test_polling_recovers_several_wraps(tmp_path: Path) -> None:
    small_range = 10_000_000
    pkg = make_zone(tmp_path, "intel-rapl:0", "package-0", 8_000_000, max_range_uj=small_range)
    meter = RaplMeter(tmp_path, poll_s=None)
    meter.start()
    # What the poller does between start and stop: each read sees at most one wrap.
    for value in (2_000_000, 9_000_000, 1_000_000):  # +4e6 (wrap), +7e6, +2e6 (wrap)
        set_energy(pkg, value)
        meter._accumulate()
    set_energy(pkg, 3_000_000)  # +2e6
    cpu = meter.stop().components["cpu"]
    assert cpu.energy_j == pytest.approx(15.0)
    assert cpu.detail["wraps"] == 2


def test_poll_thread_runs_and_stops(tmp_path: Path) -> None:
    pkg = make_zone(tmp_path, "intel-rapl:0", "package-0", 0)
    meter = RaplMeter(tmp_path, poll_s=0.01)
    meter.start()
    set_energy(pkg, 1_000_000)
    time.sleep(0.05)
    set_energy(pkg, 4_000_000)
    reading = meter.stop()
    assert reading.components["cpu"].energy_j == pytest.approx(4.0)
    assert "bench-rapl-poll" not in [t.name for t in threading.enumerate()]  # the poller is gone
    meter.close()
    meter.close()  # idempotent


def test_backwards_counter_without_range_is_an_error(tmp_path: Path) -> None:
    pkg = make_zone(tmp_path, "intel-rapl:0", "package-0", 5_000_000, max_range_uj=None)
    meter = RaplMeter(tmp_path, poll_s=None)
    meter.start()
    set_energy(pkg, 1_000_000)
    with pytest.raises(MeterError, match="went backwards"):
        meter.stop()


def test_stalled_counter_is_null_with_reason(tmp_path: Path) -> None:
    make_zone(tmp_path, "intel-rapl:0", "package-0", 1_000)
    meter = RaplMeter(tmp_path, poll_s=None)
    meter.start()
    time.sleep(0.12)
    cpu = meter.stop().components["cpu"]
    assert cpu.energy_j is None
    assert "did not advance" in (cpu.reason or "")


def test_missing_tree(tmp_path: Path) -> None:
    root = tmp_path / "nope"
    ok, why = RaplMeter.probe(root)
    assert not ok
    assert "no powercap directory" in why
    with pytest.raises(MeterError, match="no powercap directory"):
        RaplMeter(root)


def test_no_package_zone(tmp_path: Path) -> None:
    make_zone(tmp_path, "intel-rapl:0", "psys", 0)
    ok, why = RaplMeter.probe(tmp_path)
    assert not ok
    assert "no RAPL package zone" in why and "psys" in why


def test_unreadable_energy_uj_says_root_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests run as root, which can read a chmod-000 file; simulate what the kernel does for a normal user since
    # Linux 5.10 (EACCES on energy_uj) at the single place the meter reads sysfs.
    make_zone(tmp_path, "intel-rapl:0", "package-0", 0)
    real_read = rapl._read_text

    def deny_energy(path: Path) -> str:
        if path.name == "energy_uj":
            raise PermissionError(13, "Permission denied", str(path))
        return real_read(path)

    monkeypatch.setattr(rapl, "_read_text", deny_energy)
    ok, why = RaplMeter.probe(tmp_path)
    assert not ok
    assert "root only" in why
    assert "sudo chmod a+r /sys/class/powercap/intel-rapl:*/energy_uj" in why
    assert "run the kit as root" in why
    with pytest.raises(MeterError, match="root only"):
        RaplMeter(tmp_path)


def test_energy_uj_not_a_file(tmp_path: Path) -> None:
    pkg = tmp_path / "intel-rapl:0"
    pkg.mkdir()
    (pkg / "name").write_text("package-0\n")
    (pkg / "energy_uj").mkdir()  # a real unreadable attribute, honestly produced even as root
    ok, why = RaplMeter.probe(tmp_path)
    assert not ok
    assert "cannot be read" in why and "energy_uj" in why


def test_message_does_not_assume_intel_when_tree_is_fine(tmp_path: Path) -> None:
    # AMD exposes the same intel-rapl layout on recent kernels.
    make_zone(tmp_path, "intel-rapl:0", "package-0", 0)
    ok, why = RaplMeter.probe(tmp_path)
    assert ok
    assert "Intel" not in why


def test_stop_without_start(tmp_path: Path) -> None:
    make_zone(tmp_path, "intel-rapl:0", "package-0", 0)
    with pytest.raises(MeterError):
        RaplMeter(tmp_path, poll_s=None).stop()

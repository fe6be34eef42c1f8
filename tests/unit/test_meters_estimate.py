"""Estimate meters with controlled CPU times, durations and TDP tables: exact expected joules."""

from __future__ import annotations

from collections import namedtuple
from pathlib import Path

import psutil
import pytest

from bench.errors import MeterError
from bench.meters import estimate
from bench.meters.estimate import (
    DEFAULT_W_PER_LOGICAL_CPU,
    CpuEstimateMeter,
    RamEstimateMeter,
    busy_fraction,
    match_cpu_tdp,
    resolve_cpu_tdp,
)

CpuTimes = namedtuple(
    "CpuTimes", "user nice system idle iowait irq softirq steal guest guest_nice", defaults=(0.0,) * 10
)


class FixedStopwatch:
    """A window of known length, so expected joules are exact."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def start(self) -> None:
        pass

    def elapsed_s(self) -> float:
        return self.seconds


def feed_cpu_times(monkeypatch: pytest.MonkeyPatch, *snapshots: CpuTimes) -> None:
    it = iter(snapshots)
    monkeypatch.setattr(psutil, "cpu_times", lambda: next(it))


def test_busy_fraction_counts_iowait_as_idle_and_guest_once() -> None:
    before = CpuTimes(user=100, system=50, idle=800, iowait=50, guest=10)
    # +30 user (of which 10 guest, already inside user), +10 system, +40 idle, +20 iowait -> busy 40 of 100
    after = CpuTimes(user=130, system=60, idle=840, iowait=70, guest=20)
    assert busy_fraction(before, after) == pytest.approx(0.4)
    assert busy_fraction(before, before) == 0.0


def test_cpu_estimate_exact_joules(monkeypatch: pytest.MonkeyPatch) -> None:
    meter = CpuEstimateMeter(tdp_w=40.0)
    meter._stopwatch = FixedStopwatch(2.0)
    feed_cpu_times(monkeypatch, CpuTimes(user=100, idle=300), CpuTimes(user=150, idle=450))  # busy 50 of 200
    meter.start()
    reading = meter.stop()
    cpu = reading.components["cpu"]
    assert cpu.method == "estimated:tdp-utilization"
    assert cpu.energy_j == pytest.approx(40.0 * 0.25 * 2.0)
    assert cpu.detail["mean_utilization"] == pytest.approx(0.25)
    assert cpu.detail["tdp_w"] == 40.0
    assert cpu.detail["tdp_source"] == "profile"
    assert cpu.detail["logical_cpus"] >= 1
    assert "cpu_model" in cpu.detail
    assert reading.duration_s == 2.0


def test_cpu_estimate_idle_window_is_zero_not_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    meter = CpuEstimateMeter(tdp_w=40.0)
    meter._stopwatch = FixedStopwatch(1.0)
    feed_cpu_times(monkeypatch, CpuTimes(user=100, idle=300), CpuTimes(user=100, idle=400))
    meter.start()
    assert meter.stop().components["cpu"].energy_j == 0.0


def test_tdp_from_codecarbon_table_times_packages(monkeypatch: pytest.MonkeyPatch) -> None:
    if estimate.codecarbon_cpu_table_path() is None:
        pytest.skip("codecarbon not installed")
    monkeypatch.setattr(estimate, "_cpu_packages", lambda: 2)
    res = resolve_cpu_tdp(cpu_model="Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz")
    assert res.source == "codecarbon-cpu-table:Intel Xeon Gold 6248"
    assert res.tdp_w == pytest.approx(2 * 150.0)


def test_tdp_ambiguous_model_falls_back_to_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(estimate.os, "cpu_count", lambda: 6)
    res = resolve_cpu_tdp(cpu_model="AMD EPYC")  # names a family, not a chip
    assert res.source == "default"
    assert res.tdp_w == pytest.approx(6 * DEFAULT_W_PER_LOGICAL_CPU)


def test_tdp_without_codecarbon_uses_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(estimate, "codecarbon_cpu_table_path", lambda: None)
    monkeypatch.setattr(estimate.os, "cpu_count", lambda: 2)
    res = resolve_cpu_tdp(cpu_model="Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz")
    assert (res.source, res.tdp_w) == ("default", 2 * DEFAULT_W_PER_LOGICAL_CPU)


def test_tdp_explicit_wins_and_must_be_positive() -> None:
    assert resolve_cpu_tdp(65.0, cpu_model="whatever").source == "profile"
    with pytest.raises(MeterError):
        resolve_cpu_tdp(0.0)


def test_tdp_table_file_found_inside_codecarbon(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    table = tmp_path / "cpu_power.csv"
    table.write_text("Name,TDP\nAcme X 1000,77\n")
    monkeypatch.setattr(estimate, "codecarbon_cpu_table_path", lambda: table)
    monkeypatch.setattr(estimate, "_cpu_packages", lambda: 1)
    res = resolve_cpu_tdp(cpu_model="Acme(R) X 1000 CPU @ 3.00GHz")
    assert (res.tdp_w, res.source) == (77.0, "codecarbon-cpu-table:Acme X 1000")


def test_match_prefers_most_specific_and_refuses_ties() -> None:
    table = (("Intel Xeon Gold 6248", 150.0), ("Intel Xeon Gold 6248R", 205.0), ("AMD EPYC 7742", 225.0),
             ("AMD EPYC 7763", 280.0), ("Xeon 6248", 99.0))  # fmt: skip
    assert match_cpu_tdp("Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz", table) == ("Intel Xeon Gold 6248", 150.0)
    assert match_cpu_tdp("Intel(R) Xeon(R) Gold 6248R CPU @ 3.00GHz", table) == ("Intel Xeon Gold 6248R", 205.0)
    assert match_cpu_tdp("AMD EPYC 7742 64-Core Processor", table) == ("AMD EPYC 7742", 225.0)
    assert match_cpu_tdp("AMD EPYC", table) is None
    assert match_cpu_tdp("", table) is None


def test_ram_formula_exact() -> None:
    meter = RamEstimateMeter(total_gb=16.0)
    meter._stopwatch = FixedStopwatch(2.0)
    meter.start()
    ram = meter.stop().components["ram"]
    assert ram.method == "estimated:ram-0.375W/GB"
    assert ram.energy_j == pytest.approx(16.0 * 0.375 * 2.0)
    assert ram.detail == {"total_gb": 16.0, "w_per_gb": 0.375, "power_w": 6.0}


def test_ram_total_defaults_to_machine_ram(monkeypatch: pytest.MonkeyPatch) -> None:
    class VM:
        total = 32_000_000_000

    monkeypatch.setattr(psutil, "virtual_memory", lambda: VM())
    meter = RamEstimateMeter()
    assert meter.total_gb == pytest.approx(32.0)
    assert meter.power_w == pytest.approx(12.0)


def test_ram_rejects_nonsense() -> None:
    with pytest.raises(MeterError):
        RamEstimateMeter(total_gb=0)


def test_stop_without_start() -> None:
    with pytest.raises(MeterError):
        CpuEstimateMeter(tdp_w=10).stop()
    with pytest.raises(MeterError):
        RamEstimateMeter(total_gb=1).stop()

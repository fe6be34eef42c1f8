"""Plausibility rules for cells and idle baselines, and `bench validate` on hand-edited result files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench import results
from bench.cli import main
from bench.errors import ResultsError
from bench.results import EnergyValue, IdleBaseline, OtherLoad, Window, write_results
from bench.validation import (
    IDLE_DRIFT_LIMIT,
    Expectations,
    cell_flags,
    cell_validity,
    check_document,
    drift_warnings,
    flagged_cells,
    idle_drift,
    series_energy_problems,
    split_problems,
    validate_file,
)
from tests.factories import cell, document, energy

# The factory's cells: 0.5 s per pass, a 2.0 s window of 4 loops, minimum 2.0 s.
PASS_S, LOOPS = 0.5, 4


def gpu_energy(powers_w: list[float], limits_w: list[float | None] | None = None) -> EnergyValue:
    """GPU energy per pass as GpuMeter records it (per-GPU detail is per window)."""
    limits = limits_w or [400.0] * len(powers_w)
    records = [
        {
            "index": i,
            "name": "NVIDIA A100-SXM4-80GB",
            "power_limit_w": limit,
            "method": "measured:nvml-energy-counter",
            "energy_j": p * PASS_S * LOOPS,
            "duration_s": PASS_S * LOOPS,
            "power_w": p,
        }
        for i, (p, limit) in enumerate(zip(powers_w, limits, strict=True))
    ]
    return EnergyValue(
        energy_j=sum(powers_w) * PASS_S,
        method="measured:nvml-energy-counter",
        detail={"gpus": records, "gpu_count": len(records)},
    )


def gpu_cell(rep: int = 0, powers_w: list[float] | None = None, **overrides: Any) -> Any:
    base = {**energy(), "gpu": gpu_energy(powers_w or [250.0, 260.0])}
    return cell(rep, energy=overrides.pop("energy", base), **overrides)


def cuda_doc(cells: list[Any] | None = None, gpu_count: int = 2, **overrides: Any) -> Any:
    profile = {"name": "a100", "hardware": {"device": "cuda", "gpu_count": gpu_count, "gpu_max_power_w": 400.0}}
    meters = {"min_window_s": 2.0, "min_window_by": "nvml"}
    fields: dict[str, Any] = {"profile": profile, "meters": meters}
    fields.update(overrides)
    return document(cells=cells if cells is not None else [gpu_cell(0), gpu_cell(1)], **fields)


def messages(doc: Any) -> list[str]:
    return [str(p) for p in check_document(doc)]


def reasons(c: Any, doc: Any) -> list[str]:
    return cell_validity(c, Expectations.from_document(doc))


# --- good documents -----------------------------------------------------------------------------------------------


def test_plausible_documents_pass() -> None:
    assert messages(document()) == []
    assert messages(cuda_doc()) == []


def test_expectations_come_from_the_document() -> None:
    doc = cuda_doc(environment={"machine": {"ram_gb": 64.0, "gpus": [{"index": 0, "power_limit_w": 300.0}]}})
    expect = Expectations.from_document(doc)
    assert (expect.device, expect.gpu_count, expect.settings_min_window_s) == ("cuda", 2, 2.0)
    assert expect.gpu_power_limits_w == {0: 300.0} and expect.ram_gb == 64.0 and expect.meter_min_window_s == 2.0
    assert Expectations.from_document(document(profile={"name": "x", "hardware": {"device": "cpu"}})).gpu_count == 0


# --- window ---------------------------------------------------------------------------------------------------------


def test_window_below_its_minimum_even_at_max_loops() -> None:
    short = cell(0, duration_s=0.1, window=Window(duration_s=0.4, loops=4, min_window_s=2.0, max_loops_reached=True))
    assert reasons(short, document()) == [
        "window 0.400 s shorter than the minimum 2 s (max_loops reached after 4 loops)"
    ]


def test_window_minimum_below_the_setting_or_the_meter_floor() -> None:
    lowered = cell(0, window=Window(duration_s=2.0, loops=4, min_window_s=1.0))
    assert reasons(lowered, document()) == ["window minimum 1 s is below the run's setting 2 s"]
    gpu = cuda_doc(meters={"min_window_s": 10.0, "min_window_by": "nvml"})
    assert "window minimum 2 s is below the 10 s that meter nvml needs" in reasons(gpu_cell(0), gpu)


def test_per_pass_duration_must_match_the_window() -> None:
    assert reasons(cell(0, duration_s=0.1), document()) == ["duration_s 0.1 s is not window.duration_s / loops (0.5 s)"]


# --- power ----------------------------------------------------------------------------------------------------------


def test_gpu_power_above_the_limit() -> None:
    doc = cuda_doc()
    hot = gpu_cell(0, powers_w=[450.0, 250.0])  # 450 W > 1.1 x 400 W
    assert reasons(hot, doc) == [
        "energy.gpu: GPU 0 (NVIDIA A100-SXM4-80GB) average power 450.0 W is above 1.1 x its power limit 400 W"
    ]
    total = gpu_cell(0)
    total.energy["gpu"].energy_j = 1000.0 * PASS_S  # hand edit of the total only
    found = reasons(total, doc)
    assert "energy.gpu: average power 1000.0 W is above 1.1 x the power limits of its 2 GPU(s) (800 W)" in found
    assert any("per-GPU energies sum to 1020.000 J per window, the cell says 2000.000 J" in r for r in found)


def test_gpu_limit_falls_back_to_environment_then_profile() -> None:
    env = {"machine": {"gpus": [{"index": 0, "power_limit_w": 200.0}, {"index": 1, "power_limit_w": 200.0}]}}
    doc = cuda_doc(environment=env)
    c = cell(0, energy={**energy(), "gpu": gpu_energy([230.0, 100.0], limits_w=[None, None])})
    assert reasons(c, doc) == [
        "energy.gpu: GPU 0 (NVIDIA A100-SXM4-80GB) average power 230.0 W is above 1.1 x its power limit 200 W"
    ]
    c2 = cell(0, energy={**energy(), "gpu": gpu_energy([500.0, 100.0], limits_w=[None, None])})
    assert any("its power limit 400 W" in r for r in reasons(c2, cuda_doc()))  # the profile's gpu_max_power_w


def test_measured_zero_and_nonpositive_gpu_power() -> None:
    zero = gpu_cell(0, powers_w=[0.0, 0.0])
    zero.energy["gpu"].energy_j = 0.0
    assert "energy.gpu: measured exactly 0 J (meter not counting?)" in reasons(zero, cuda_doc())
    idle_gpu = gpu_cell(0, powers_w=[0.0, 300.0])
    assert "energy.gpu: GPU 0 (NVIDIA A100-SXM4-80GB) average power 0.000 W is not above zero" in reasons(
        idle_gpu, cuda_doc()
    )


def test_an_mi250x_gcd_counted_in_its_module_passes_and_an_ordinary_zero_does_not() -> None:
    """The second GCD of an MI250X module has no reading of its own (``counted_in`` the first, scope gcd-pair): it
    counts as a GPU and passes; a record claiming so without that partner, and an ordinary GPU at 0 W, do not."""
    pair = gpu_cell(0, powers_w=[300.0, 0.0])
    first, second = pair.energy["gpu"].detail["gpus"]
    first["scope"] = "gcd-pair"
    second.update(counted_in=0, scope="gcd-pair", method=None, energy_j=None, power_w=None)
    pair.energy["gpu"].energy_j = 300.0 * PASS_S
    assert reasons(pair, cuda_doc()) == []  # two GPUs seen, as the profile asks; the sum is the module's
    first["scope"] = "gpu"  # no module reading to be counted in
    assert reasons(pair, cuda_doc()) == [
        "energy.gpu: GPU 1 (NVIDIA A100-SXM4-80GB) is recorded as counted in GPU 0, but that GPU's metered record, "
        "of scope gcd-pair, is not there (or it has energy of its own, or another GPU is counted in it)"
    ]
    first["scope"] = "gcd-pair"
    pair.energy["gpu"].detail["gpus"].append({**second, "index": 2})  # a third GPU claiming the same module
    assert any("GPU 2 (NVIDIA A100-SXM4-80GB) is recorded as counted in GPU 0" in r for r in reasons(pair, cuda_doc()))
    ordinary = gpu_cell(0, powers_w=[300.0, 0.0])  # no counted_in: its 0 W is still invalid
    assert "energy.gpu: GPU 1 (NVIDIA A100-SXM4-80GB) average power 0.000 W is not above zero" in reasons(
        ordinary, cuda_doc()
    )


def test_cpu_and_ram_bounds() -> None:
    estimate = EnergyValue(energy_j=60.0 * PASS_S, method="estimated:tdp-utilization", detail={"tdp_w": 45.0})
    c = cell(0, energy={**energy(), "cpu": estimate})
    assert reasons(c, document()) == ["energy.cpu: average power 60.0 W is above 1.1 x the estimate's own TDP 45 W"]
    domains = [{"zone": "intel-rapl:0"}, {"zone": "intel-rapl:1"}]
    rapl = EnergyValue(energy_j=2500.0 * PASS_S, method="measured:rapl", detail={"domains": domains})
    assert reasons(cell(0, energy={**energy(), "cpu": rapl}), document()) == [
        "energy.cpu: average power 2500.0 W is above 1000 W per package x 2"
    ]
    ram = EnergyValue(energy_j=100.0 * PASS_S, method="estimated:ram-0.375W/GB", detail={"total_gb": 16.0})
    assert reasons(cell(0, energy={**energy(), "ram": ram}), document()) == [
        "energy.ram: average power 100.0 W is above 1.5 W/GB x 16 GB"
    ]


# --- GPU count --------------------------------------------------------------------------------------------------


def test_gpu_count_must_match_the_profile() -> None:
    assert reasons(gpu_cell(0), cuda_doc(gpu_count=4)) == [
        "GPU count: the profile asks for 4 GPU(s), the GPU meter saw 2"
    ]
    unmetered = cell(0)  # gpu null with a reason, as on a machine without NVML
    assert reasons(unmetered, cuda_doc()) == ["GPU count: the profile asks for 2 GPU(s), the GPU meter saw 0 (no GPU)"]
    assert reasons(gpu_cell(0), document(profile={"name": "cpu", "hardware": {"device": "cpu", "gpu_count": 0}})) == [
        "GPU count: the profile asks for 0 GPU(s), the GPU meter saw 2"
    ]


# --- document level -----------------------------------------------------------------------------------------------


def test_stored_run_time_reasons_are_reported_too() -> None:
    flagged = cell(0, validity=["window 1.000 s shorter than the minimum 2 s"])
    assert messages(document(cells=[flagged, cell(1)])) == [
        "cell toy/linear-bow/rep0: marked invalid at run time: window 1.000 s shorter than the minimum 2 s"
    ]


def test_implausible_idle_baseline_is_a_problem() -> None:
    idle = IdleBaseline(
        session=0,
        measured_at="2026-01-01T00:00:00+00:00",
        duration_s=30.0,
        power_w={"gpu": 2000.0, "cpu": 0.0, "ram": 3.0},
        methods={"gpu": "measured:nvml-energy-counter", "cpu": "measured:rapl", "ram": "estimated:ram-0.375W/GB"},
        detail={"gpu": gpu_energy([1000.0, 1000.0]).detail},
    )
    found = messages(cuda_doc(idle=[idle]))
    assert any(m.startswith("idle[0] (session 0, start): energy.gpu: average power 2000.0 W is above") for m in found)
    assert "idle[0] (session 0, start): energy.cpu: average power 0.000 W is not above zero (meter not counting?)" in (
        found
    )


def idle(session: int, phase: str, **power_w: float | None) -> IdleBaseline:
    return IdleBaseline(
        session=session,
        measured_at="2026-01-01T00:00:00+00:00",
        duration_s=5.0,
        power_w=dict(power_w),
        methods={c: "measured:rapl" for c in power_w},
        phase=phase,  # type: ignore[arg-type]
    )


def test_idle_drift_beyond_five_percent_warns() -> None:
    start, end = idle(1, "start", cpu=20.0, ram=3.0, gpu=None), idle(1, "end", cpu=21.5, ram=3.1, gpu=None)
    assert idle_drift(start, end) == pytest.approx({"cpu": 0.075, "ram": 0.1 / 3.0, "gpu": None})
    warnings = drift_warnings(start, end)
    assert len(warnings) == 1 and warnings[0].startswith("session 1: idle cpu power drifted +7.5% (20.00 W at start")
    assert IDLE_DRIFT_LIMIT == 0.05 and drift_warnings(start, idle(1, "end", cpu=20.9, ram=3.0)) == []


def test_documents_without_the_new_fields_still_load() -> None:
    data = document(idle=[idle(0, "start", cpu=20.0)]).model_dump(mode="json")
    data.pop("warnings")
    for record in data["idle"]:
        for key in ("phase", "drift", "detail"):
            record.pop(key)
    data["content_hash"] = results.content_hash(data)
    doc = results.parse_results(data)
    assert doc.idle[0].phase == "start" and doc.warnings == []


# --- `bench validate` on hand-edited files ------------------------------------------------------------------------


def _write(tmp_path: Path, doc: Any) -> tuple[Path, dict[str, Any]]:
    path = tmp_path / "results.json"
    write_results(doc, path)
    return path, json.loads(path.read_text())


def _rewrite(path: Path, data: dict[str, Any], *, rehash: bool) -> None:
    if rehash:
        data["content_hash"] = results.content_hash(data)
    path.write_text(json.dumps(data))


def test_validate_reports_a_hand_edited_power_above_the_limit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, data = _write(
        tmp_path, cuda_doc(status="complete", suite={"datasets": ["toy"], "models": ["linear-bow"], "repetitions": 2})
    )
    assert main(["validate", str(path)]) == 0
    gpu0 = data["cells"][0]["energy"]["gpu"]["detail"]["gpus"][0]
    gpu0["power_w"] = 480.0  # above 1.1 x 400 W
    _rewrite(path, data, rehash=True)  # a careful editor recomputes the hash: the plausibility check still catches it
    capsys.readouterr()
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"INVALID {path}" in out
    assert "cell toy/linear-bow/rep0: energy.gpu: GPU 0 (NVIDIA A100-SXM4-80GB) average power 480.0 W" in out


def test_validate_reports_a_hand_edited_short_window(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, data = _write(tmp_path, document())
    data["cells"][1]["window"]["duration_s"] = 0.8
    data["cells"][1]["duration_s"] = 0.2
    _rewrite(path, data, rehash=True)
    _, problems = validate_file(path)
    assert [str(p) for p in problems] == ["cell toy/linear-bow/rep1: window 0.800 s shorter than the minimum 2 s"]
    assert main(["validate", str(path)]) == 1
    assert "window 0.800 s shorter than the minimum 2 s" in capsys.readouterr().out


def test_hand_edit_without_rehash_is_a_hash_mismatch(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, data = _write(tmp_path, cuda_doc())
    data["cells"][0]["energy"]["gpu"]["detail"]["gpus"][0]["power_w"] = 480.0
    _rewrite(path, data, rehash=False)
    with pytest.raises(ResultsError, match="content hash mismatch"):
        validate_file(path)
    assert main(["validate", str(path)]) == 1
    assert "content hash mismatch" in capsys.readouterr().out


def test_cell_gpus_is_checked_against_the_models_placement() -> None:
    """cell.gpus is a field of the document: a cell claiming another allocation than its model's placement is
    flagged, even when the GPU meter saw as many GPUs as the cell claims."""
    from bench.config import load_profile

    profile = load_profile("h100").model_dump(mode="json")
    two = gpu_cell(0, model="linear-bow", gpus=2)  # a traditional model runs on one GPU
    doc = cuda_doc(cells=[two], profile=profile)
    assert any("records 2 GPU(s), but model 'linear-bow' is placed on 1" in r for r in reasons(two, doc))
    one = gpu_cell(0, model="linear-bow", gpus=1, powers_w=[250.0])
    assert not any("is placed on" in r for r in reasons(one, cuda_doc(cells=[one], profile=profile)))
    seventy = gpu_cell(0, model="llama-3.1-70b", gpus=2)  # 2 x 80 GB: its placement on the h100 profile
    assert not any("is placed on" in r for r in reasons(seventy, cuda_doc(cells=[seventy], profile=profile)))


# --- a cell's power series against its energy ----------------------------------------------------------------------


def _series_cell(rep: int = 0, cpu_j_per_pass: float = 1.0) -> Any:
    """A factory cell (2 s window, 4 loops) with a power series encoded as the recorder encodes it: the CPU counter
    read at 10 Hz over the window, 1.5 W for the first second and 2.5 W for the second (4 J in all); the cell's
    metered CPU energy is ``cpu_j_per_pass`` per pass (1.0 J x 4 loops = 4 J: consistent)."""
    from bench.meters.series import encode
    from bench.results import PowerSeries

    reads = [(k / 10, sum(1.5 if i < 10 else 2.5 for i in range(k)) / 10) for k in range(21)]
    components = {"cpu": {"method": "estimated:tdp-utilization", "source": "counter", **encode([reads], 2.0, 0.1)}}
    series = PowerSeries.model_validate({"window_s": 2.0, "hz": 10.0, "components": components})
    return cell(rep, energy=energy(cpu_j=cpu_j_per_pass), power_series=series)


def test_a_power_series_that_integrates_to_the_cells_energy_passes() -> None:
    consistent = _series_cell()
    assert sum(consistent.power_series.components["cpu"].watts) * 0.1 == pytest.approx(4.0)
    assert series_energy_problems(consistent) == []
    # a meter that opened and closed 30 ms outside the series' first and last read (at 2.5 W: 0.15 J more) is what
    # one bin at each edge allows
    assert series_energy_problems(_series_cell(cpu_j_per_pass=(4.0 + 0.15) / 4)) == []
    assert messages(document(cells=[_series_cell(0), _series_cell(1)])) == []


def test_a_power_series_that_disagrees_with_the_cells_energy_is_a_problem() -> None:
    tampered = _series_cell(1, cpu_j_per_pass=1.2)  # 4.8 J metered, the series says 4 J; tolerance 0.02 + 0.5 J
    (problem,) = series_energy_problems(tampered)
    assert problem.startswith("power_series.cpu: its integral is 4 J over the window (20 bins of 0.1 s)")
    assert "metered cpu energy is 4.8 J (1.2 J x 4 loops)" in problem and "may differ by 0.52 J" in problem
    assert [str(p) for p in check_document(document(cells=[_series_cell(0), tampered]))] == [
        f"cell toy/linear-bow/rep1: {problem}"
    ]


def test_validate_reports_a_hand_edited_power_series(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path, data = _write(tmp_path, document(cells=[_series_cell(0), _series_cell(1)]))
    assert main(["validate", str(path)]) == 0
    watts = data["cells"][1]["power_series"]["components"]["cpu"]["watts"]
    data["cells"][1]["power_series"]["components"]["cpu"]["watts"] = [w * 0.8 for w in watts]  # 3.2 J, not 4 J
    _rewrite(path, data, rehash=True)
    capsys.readouterr()
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert "cell toy/linear-bow/rep1: power_series.cpu: its integral is 3.2 J" in out
    assert "metered cpu energy is 4 J (1 J x 4 loops)" in out


def test_a_series_of_few_bins_is_not_checked() -> None:
    """A 0.3 s window's 3 bins (a test's tiny window; CI under load read 0 W in all three while the window's reading
    had 0.04 J): its edges are most of it, so it is not checked; 10 bins are."""
    from bench.meters.series import encode
    from bench.results import PowerSeries

    def cell_of(n_bins: int) -> Any:
        reads = [(k / 10, 0.0) for k in range(n_bins + 1)]  # a counter that did not move
        components = {
            "cpu": {"method": "estimated:tdp-utilization", "source": "counter", **encode([reads], n_bins / 10, 0.1)}
        }
        series = PowerSeries.model_validate({"window_s": n_bins / 10, "hz": 10.0, "components": components})
        return cell(0, energy=energy(cpu_j=0.04), power_series=series)

    assert series_energy_problems(cell_of(3)) == []
    assert len(series_energy_problems(cell_of(10))) == 1


# --- flags: conditions of the machine, not faults of the document ---------------------------------------------------


def shared_cell(rep: int = 0, share: float = 0.25, **overrides: Any) -> Any:
    """A cell whose window other processes shared (``share`` of the machine's CPU time), its flag stored as the
    runner stores it."""
    others = OtherLoad(
        wall_s=2.0, logical_cpus=4, machine_busy_cpu_s=4.0, own_cpu_s=4.0 - share * 8.0, other_cpu_share=share,
        judged=True,
    )  # fmt: skip
    c = cell(rep, others=others, **overrides)
    c.flags = cell_flags(c, Expectations())
    return c


def hot_gpu_cell(rep: int = 0) -> Any:
    """A GPU cell whose GPU 1 was at 97 C and thermally throttled at the window's end, its flags stored."""
    c = gpu_cell(rep)
    record = c.energy["gpu"].detail["gpus"][1]
    record.update(temperature_c_start=60, temperature_c_end=97, clocks_event_reason_names_end=["sw_thermal_slowdown"])
    c.flags = cell_flags(c, Expectations())
    return c


def test_machine_conditions_are_flags_not_validity() -> None:
    shared = shared_cell(0)
    assert shared.flags == [
        "other processes used 25.0% of the machine's CPU time (limit 10%; 2.00 CPU-s of 2.00 s x 4 CPUs): "
        "machine-scope energy counts them"
    ]
    assert cell_validity(shared, Expectations()) == []
    hot = hot_gpu_cell(0)
    assert cell_validity(hot, Expectations.from_document(cuda_doc([hot, gpu_cell(1)]))) == []
    assert hot.flags == [
        "energy.gpu: GPU 1 (NVIDIA A100-SXM4-80GB) at 97 C at the window's end, outside 20-95 C",
        "energy.gpu: GPU 1 (NVIDIA A100-SXM4-80GB) throttled (thermal: sw_thermal_slowdown) at the window's end",
    ]
    problems = check_document(cuda_doc([hot, gpu_cell(1)]))
    invalid, flags = split_problems(problems)
    assert invalid == [] and [p.message for p in flags] == hot.flags
    assert flagged_cells(problems) == ["cell toy/linear-bow/rep0"]


def test_a_shared_idle_baseline_is_a_flag() -> None:
    others = OtherLoad(
        wall_s=2.0, logical_cpus=4, other_cpu_share=0.5, machine_busy_cpu_s=4.0, own_cpu_s=0.0, judged=True
    )
    idle = IdleBaseline(
        session=0, phase="start", measured_at="2026-01-01T00:00:00+00:00", duration_s=2.0,
        power_w={"cpu": 5.0}, methods={"cpu": "measured:rapl"}, others=others,
    )  # fmt: skip
    invalid, flags = split_problems(check_document(document(idle=[idle])))
    assert invalid == [] and len(flags) == 1 and flags[0].where.startswith("idle[0]")
    assert flagged_cells(flags) == []  # an idle baseline is not a cell


def test_a_flag_cleared_by_hand_is_invalid() -> None:
    """The stored flags decide which cells the means leave out: a flag the check finds that the cell does not store is
    an edit of the document, not a condition of the machine."""
    edited = shared_cell(0)
    edited.flags = []
    invalid, flags = split_problems(check_document(document(cells=[edited, cell(1)])))
    assert flags == [] and len(invalid) == 1
    assert "not in the cell's stored flags" in invalid[0].message and invalid[0].where == "cell toy/linear-bow/rep0"


def test_an_implausible_reading_beside_a_flag_stays_invalid() -> None:
    shared = shared_cell(0, energy={**energy(), "cpu": EnergyValue(energy_j=0.0, method="measured:rapl")})
    invalid, flags = split_problems(check_document(document(cells=[shared, cell(1)])))
    assert [p.message for p in invalid] == ["energy.cpu: measured exactly 0 J (meter not counting?)"]
    assert len(flags) == 1 and flags[0].message.startswith("other processes used 25.0%")


def test_validate_calls_a_flagged_document_ok_with_warnings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = document(cells=[shared_cell(0), cell(1)], status="complete", run_id="r1")
    path, _ = _write(tmp_path, doc)
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"OK {path}: schema v6, run r1, status complete, 2/2 cells ok, 1 flagged (left out of the means)" in out
    assert "  warning: cell toy/linear-bow/rep0: other processes used 25.0% of the machine's CPU time" in out
    assert "bench run --run-id r1 --redo-flagged" in out
    assert "INVALID" not in out


def test_validate_lists_only_invalid_findings_as_problems(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A flagged document that is also invalid: INVALID with the invalid findings counted, the flags as warnings."""
    doc = document(cells=[shared_cell(0), cell(1, validity=["window 1.000 s shorter than the minimum 2 s"])])
    path, _ = _write(tmp_path, doc)
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr().out
    assert f"INVALID {path}: 1 problem(s)" in out
    assert "  - cell toy/linear-bow/rep1: marked invalid at run time: window 1.000 s shorter" in out
    assert "  warning: cell toy/linear-bow/rep0: other processes used 25.0%" in out
    assert "--redo-flagged" not in out

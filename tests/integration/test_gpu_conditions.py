"""A cuda profile's run on the fake NVML: a GPU that heats up and throttles during the cells, and a process of
someone else on a metered GPU, each flag the cells with the reason (``Cell.flags``: conditions of the machine, the
document stays valid, the cells are left out of the means); the state is stored per cell."""

from __future__ import annotations

import os
from pathlib import Path

from bench.calibration import GPU_REFERENCE
from bench.report import render_compare, render_report
from bench.results import load_results
from bench.runner import run
from bench.validation import check_document, split_problems
from tests.fakes.fake_pynvml import FakePynvml, nvmlClocksEventReasonSwThermalSlowdown
from tests.golden import document_path
from tests.integration.test_runner import cuda_request, fake_nvml, no_cuda_sync  # noqa: F401  (fixtures)


def test_a_hot_throttling_gpu_and_a_foreign_process_flag_the_cells(
    tmp_path: Path,
    fake_nvml: FakePynvml,  # noqa: F811  (the fixture of test_runner)
) -> None:
    gpu = fake_nvml.gpus[1]
    gpu.temperature_c = 96
    gpu.clocks_event_reasons = nvmlClocksEventReasonSwThermalSlowdown
    stranger = os.getppid()  # visible here, not in the run's process tree
    fake_nvml.gpus[3].processes = [(os.getpid(), 3 * 2**30), (stranger, 2**30)]
    outcome = run(cuda_request(tmp_path, repetitions=1))
    doc = load_results(outcome.results_path)
    cell = doc.cells[0]
    name = "NVIDIA A100-SXM4-80GB"
    assert f"energy.gpu: GPU 1 ({name}) at 96 C at the window's start, outside 20-95 C" in cell.flags
    assert f"energy.gpu: GPU 1 ({name}) throttled (thermal: sw_thermal_slowdown) at the window's end" in cell.flags
    foreign = [r for r in cell.flags if r.startswith("other process(es) on a metered GPU: GPU 3 pid ")]
    assert len(foreign) == 1 and f"pid {stranger} " in foreign[0] and "1024 MiB" in foreign[0]
    records = cell.energy["gpu"].detail["gpus"]
    assert [r["temperature_c_end"] for r in records] == [45, 96, 45, 45]
    assert cell.others is not None and cell.others.gpu_processes is not None
    own = {(p.pid, p.own) for p in cell.others.gpu_processes}
    assert (os.getpid(), True) in own and (stranger, False) in own
    assert not any("throttled" in r or "other process" in r or " C at the window" in r for r in cell.validity)
    invalid, flags = split_problems(check_document(doc))
    assert any("throttled (thermal" in str(p) for p in flags) and any("other process(es)" in str(p) for p in flags)
    assert not any("throttled" in str(p) or "other process" in str(p) for p in invalid)
    assert fake_nvml.init_count == 0, "the observer shut NVML down as often as it initialized it"

    (calibration,) = doc.calibration  # a GPU profile: the GPU reference, which needs CUDA (none here), and why not
    assert calibration.reference == GPU_REFERENCE and calibration.j_per_unit is None
    assert calibration.reason is not None and "sees no CUDA device" in calibration.reason
    # The grid the derived CO2e rests on is stored with the run; the report shows it, labelled derived.
    assert doc.grid is not None and doc.grid.intensity_source.startswith("CodeCarbon ")
    assert doc.grid.country_iso_code == "DEU" and doc.grid.pue == 1.0
    # The report lists the cell's conditions; the compare page warns about it and notes the run without records.
    page = render_report(doc)
    assert (
        "Measurement conditions per cell" in page
        and "45 → 45; 96 → 96; 45 → 45" in page
        and "sw_thermal_slowdown" in page
    )
    assert "grid (for derived CO₂e)" in page and "CO₂e (derived)<span" in page
    assert "run CO₂e (derived)" not in page, "every cell is flagged: no valid energy to derive the run's CO2e from"
    older = load_results(document_path("cpu-default"))
    compare = render_compare([doc, older])
    assert "A: 1 cell(s) measured while other processes ran or the GPU throttled" in compare
    assert "B: not recorded" in compare
    assert "B: no grid recorded" in compare and "CO₂e per 1,000 texts is derived" in compare

"""The GPU power limit and locked clocks as measured choices (issue 26), end to end on fake H100s.

A stand-in model that runs here (linear-bow, a traditional model: device keys are taken by any model) under the
shape of a profile's ``power`` suite: four limits from the board's maximum down. NVML is ``tests/fakes/fake_pynvml``
(setters need ``control_permission``, as the real ones need root; out-of-range limits raise INVALID_ARGUMENT).
"""

from __future__ import annotations

import json
import signal
import sys
from pathlib import Path

import pytest

from bench.config import load_profile
from bench.errors import ConfigError
from bench.meters import gpu as nvml_module
from bench.results import load_results
from bench.run import cell as cells
from bench.run import power
from bench.run.plan import settings_sha256
from bench.runner import RunInterrupted, RunRequest, run
from bench.validation import check_document
from tests.fakes.fake_pynvml import FakePynvml, fake_gpus

H100 = dict(
    name="NVIDIA H100 80GB HBM3",
    memory_total_bytes=94 * 10**9,  # the h100 profile: Capella's 94 GB boards
    power_w=90.0,
    power_limit_w=650.0,  # an operator's fleet-wide cap below the board's 700 W: it must stay
    default_power_limit_w=700.0,
    power_limit_range_w=(200.0, 700.0),
    architecture=9,
    sm_clock_mhz=1980,
)
LIMITS_W = (700, 612, 525, 438)  # hardware_profiles/h100.toml [suites.power], on the stand-in model


def power_models(limits: tuple[int, ...] = LIMITS_W) -> list[str]:
    return [f"linear-bow[power_limit_w={w}]" for w in limits]


@pytest.fixture
def fake_h100(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FakePynvml:
    """Four fake H100s the process may control (as root), where the kit imports pynvml; the journal under tmp_path."""
    from bench.backends.traditional import TraditionalBackend

    fake = FakePynvml(fake_gpus(4, control_permission=True, **H100))
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    monkeypatch.setattr(nvml_module, "DEFAULT_MIN_WINDOW_S", 0.2)
    monkeypatch.setattr(TraditionalBackend, "synchronize", lambda self: None)  # no CUDA here
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.delenv("ZEUSD_SOCK_PATH", raising=False)
    monkeypatch.delenv("ZEUSD_HOST_PORT", raising=False)
    monkeypatch.setenv(power.STATE_DIR_ENV, str(tmp_path / "state"))
    return fake


def power_request(tmp_path: Path, models: list[str], **overrides: object) -> RunRequest:
    fields: dict = dict(
        profile=load_profile("h100"),
        suite_name="offline",
        models=models,
        reports_dir=tmp_path / "reports",
        repetitions=1,
        min_window_s=0.2,
        idle_baseline_s=0.1,
        codecarbon=False,
        progress=False,
    )
    fields.update(overrides)
    return RunRequest(**fields)


def journal_files(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "state" / "gpu-settings").glob("*.json"))


def test_power_suite_sets_each_limit_around_its_cell_and_restores_the_cap(tmp_path: Path, fake_h100: FakePynvml):
    outcome = run(power_request(tmp_path, power_models()))
    doc = load_results(outcome.results_path)
    assert doc.status == "complete" and check_document(doc) == []
    assert [c.model for c in doc.cells] == power_models()
    for cell, limit in zip(doc.cells, LIMITS_W, strict=True):
        assert cell.status == "ok" and cell.validity == []
        gpu = cell.energy["gpu"]
        # the limit in force during the window, as NVML read it at both edges, on every GPU the cell used
        assert [g["power_limit_w_start"] for g in gpu.detail["gpus"]] == [float(limit)] * 4
        assert [g["power_limit_w_end"] for g in gpu.detail["gpus"]] == [float(limit)] * 4
        settings = gpu.detail["device_settings"]
        assert settings["requested"] == {"power_limit_w": limit} and settings["restored"]
        assert [g["power_limit_w_before"] for g in settings["gpus"]] == [650.0] * 4
        assert [g["power_limit_w_restored"] for g in settings["gpus"]] == [650.0] * 4
        assert doc.models[cell.model]["params"]["power_limit_w"] == limit
    # restored after each cell to the value read before it (the operator's 650 W cap), not the board's 700 W default
    for gpu in fake_h100.gpus:
        assert gpu.power_limit_w == 650.0
        # the preflight's permission probe writes the limit in force back (no change), then each cell's set/restore
        assert [v for _, v in gpu.control_log] == [650_000] + [x for w in LIMITS_W for x in (w * 1000, 650_000)]
    # the idle baselines ran under the operator's cap, never under a cell's limit
    assert journal_files(tmp_path) == []
    assert doc.warnings == []


def test_the_report_plots_energy_per_text_against_latency_one_point_per_limit(
    tmp_path: Path, fake_h100: FakePynvml
) -> None:
    from bench.report.page import render_report

    outcome = run(power_request(tmp_path, power_models()))
    html = render_report(load_results(outcome.results_path))
    assert 'id="power-limits"' in html
    section = html[html.index('id="power-limits"') :]
    section = section[: section.index("</section>")]
    assert "energy per text against latency" in section
    # one marker per limit, each with its tip naming the limit and its energy per text
    assert section.count("<circle") == len(LIMITS_W)
    for limit in LIMITS_W:
        assert f"<title>{limit} W: " in section and "J per text" in section
    assert "seconds per text" in section  # linear-bow records no per-request latency: the axis says what it shows


def test_the_limit_is_in_the_settings_hash_and_the_results(tmp_path: Path, fake_h100: FakePynvml) -> None:
    a = run(power_request(tmp_path, power_models((438,)), run_id="a"))
    b = run(power_request(tmp_path, power_models((525,)), run_id="b"))
    plain = run(power_request(tmp_path, ["linear-bow"], run_id="plain"))
    docs = [load_results(o.results_path) for o in (a, b, plain)]
    hashes = {settings_sha256(d.profile, d.settings) for d in docs}
    assert len(hashes) == 3
    assert docs[0].settings["suite"]["models"] == ["linear-bow[power_limit_w=438]"]
    assert "device_settings" not in docs[2].cells[0].energy["gpu"].detail
    # bench compare and the leaderboard carry it: each limit a row of its own, under its name
    from bench.leaderboard.validate import name_problems, rows
    from bench.report.page import render_compare

    compared = render_compare(docs)
    assert "linear-bow[power_limit_w=438]" in compared and "linear-bow[power_limit_w=525]" in compared
    assert name_problems(docs[0]) == []
    assert [r["model"] for r in rows(docs[0])] == ["linear-bow[power_limit_w=438]"]


def test_restored_after_an_error_in_the_cell(
    tmp_path: Path, fake_h100: FakePynvml, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[float] = []

    def broken(*args: object, **kwargs: object) -> object:
        seen.append(fake_h100.gpus[0].power_limit_w)
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(cells, "run_cell", broken)
    with pytest.raises(RuntimeError, match="disk is full"):
        run(power_request(tmp_path, power_models((438,))))
    assert seen == [438.0], "the limit was in force while the cell ran"
    assert all(g.power_limit_w == 650.0 for g in fake_h100.gpus)
    assert journal_files(tmp_path) == []


def test_restored_after_sigterm_from_a_scheduler(
    tmp_path: Path, fake_h100: FakePynvml, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = cells.run_cell

    def killed(*args: object, **kwargs: object) -> object:
        assert fake_h100.gpus[0].power_limit_w == 525.0
        signal.raise_signal(signal.SIGTERM)  # Slurm's scancel, a container stop
        return real(*args, **kwargs)

    monkeypatch.setattr(cells, "run_cell", killed)
    with pytest.raises(RunInterrupted, match="resume"):
        run(power_request(tmp_path, power_models((525,))))
    assert all(g.power_limit_w == 650.0 for g in fake_h100.gpus)
    assert journal_files(tmp_path) == []


def test_a_killed_session_is_found_and_undone_at_the_next_start(tmp_path: Path, fake_h100: FakePynvml) -> None:
    # A session killed (SIGKILL) inside a cell: its journal says it set 438 W over a 650 W cap, and GPU 0 holds 438 W.
    from bench.devices.nvidia import open_devices

    opened = open_devices([0, 1], library=fake_h100)
    journal = power.Journal(run_id="killed")
    for device in opened.devices:
        journal.write(device, [{"key": "power_limit_w", "before": 650.0, "set": 438}])
    opened.close()
    dead = {"pid": 2**22 + 7}  # no such process
    for path in journal_files(tmp_path):
        path.write_text(json.dumps({**json.loads(path.read_text()), **dead}))
    fake_h100.gpus[0].power_limit_w = 438.0  # still in force
    fake_h100.gpus[1].power_limit_w = 300.0  # an admin set a deliberate cap since: theirs, not the kit's

    outcome = run(power_request(tmp_path, ["linear-bow"]))
    doc = load_results(outcome.results_path)
    assert fake_h100.gpus[0].power_limit_w == 650.0 and fake_h100.gpus[1].power_limit_w == 300.0
    stale = [w for w in doc.warnings if "left the power limit" in w]
    assert (
        len(stale) == 1 and stale[0].startswith("GPU 0 (NVIDIA H100 80GB HBM3)") and "restored to the 650 W" in stale[0]
    )
    assert not any("GPU 1" in w for w in doc.warnings), "a cap someone else set is never warned about"
    assert journal_files(tmp_path) == []


def test_refused_without_permission_before_any_energy(tmp_path: Path, fake_h100: FakePynvml) -> None:
    for gpu in fake_h100.gpus:
        gpu.control_permission = False  # not root, no Zeus daemon
    with pytest.raises(ConfigError) as err:
        run(power_request(tmp_path, power_models((438,))))
    message = str(err.value)
    assert "GPU 0 (NVIDIA H100 80GB HBM3)" in message and "power_limit_w=438" in message
    assert "root" in message and "sudo nvidia-smi -i 0 -pl 438" in message and "ZEUSD_SOCK_PATH" in message
    assert not (tmp_path / "reports").exists() or not list((tmp_path / "reports").rglob("results.json"))
    assert all(not g.control_log for g in fake_h100.gpus)


def test_refused_out_of_range_naming_the_range(tmp_path: Path, fake_h100: FakePynvml) -> None:
    with pytest.raises(
        ConfigError,
        match=r"power_limit_w=150 is outside what GPU 0 \(NVIDIA H100 80GB HBM3\) allows: "
        r"200 to 700 W",
    ):
        run(power_request(tmp_path, power_models((150,))))
    with pytest.raises(ConfigError, match=r"gpu_clock_mhz=2500 .* 210 to 1980 MHz"):
        run(power_request(tmp_path, ["linear-bow[gpu_clock_mhz=2500]"]))
    assert all(not g.control_log for g in fake_h100.gpus)


def test_locked_clocks_set_and_reset_around_the_cell(tmp_path: Path, fake_h100: FakePynvml) -> None:
    outcome = run(power_request(tmp_path, ["linear-bow[gpu_clock_mhz=1410]"]))
    doc = load_results(outcome.results_path)
    cell = doc.cells[0]
    assert cell.status == "ok" and check_document(doc) == []
    assert [g["sm_clock_mhz_start"] for g in cell.energy["gpu"].detail["gpus"]] == [1410] * 4
    assert all(g.locked_clocks_mhz is None for g in fake_h100.gpus)
    assert fake_h100.gpus[0].control_log[1:] == [("locked_clocks_mhz", (1410, 1410)), ("locked_clocks_mhz", None)]
    assert power.CLOCK_RESET_NOTE in doc.warnings

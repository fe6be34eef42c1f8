"""The metered training window (bench.run.cell.measure_training and run_cell's meter_training) with a fake backend
and a fake meter set: loop rule, per-fit energy net of idle, method labels, kept apart from inference; a failing
fit is a failed cell naming the reason; a cell without ``training`` (an older document) still validates."""

from __future__ import annotations

import json
from collections.abc import Sequence
from types import SimpleNamespace

import pytest

from bench.errors import DataError
from bench.meters import WindowReading
from bench.meters.base import ComponentEnergy
from bench.results import Cell
from bench.run.cell import measure_training, run_cell
from bench.validation import Expectations


class FakeBackend:
    """Counts fits; predicts label 0; ``fail`` makes fit raise as a too-small class would."""

    def __init__(self, fail: bool = False) -> None:
        self.fits = 0
        self.fail = fail
        self.events: list[str] = []

    def fit(self, texts: Sequence[str], labels: Sequence[int], names: Sequence[str], *, language: str = "en") -> None:
        self.events.append("fit")
        if self.fail:
            raise DataError("model setfit: too few in 'pos' (id 1): 1 text")
        self.fits += 1

    def predict(self, texts: Sequence[str]) -> list[int]:
        self.events.append("predict")
        return [0] * len(texts)

    def synchronize(self) -> None:
        self.events.append("sync")


class FakeMeters:
    """Each window reads ``joules[i]`` J of CPU over ``seconds`` s (RAM a tenth of it; no GPU)."""

    def __init__(self, joules: list[float], seconds: float = 2.0) -> None:
        self.joules = list(joules)
        self.seconds = seconds
        self.windows = 0
        self.open = False

    def start(self) -> None:
        assert not self.open, "start() twice without stop()"
        self.open = True

    def stop(self) -> WindowReading:
        self.open = False
        joules = self.joules[self.windows]
        self.windows += 1
        return WindowReading(
            duration_s=self.seconds,
            components={
                "cpu": ComponentEnergy(joules, "measured:rapl"),
                "ram": ComponentEnergy(joules / 10, "estimated:ram-0.375W/GB"),
                "gpu": ComponentEnergy(None, "unavailable", reason="no GPU"),
            },
        )


IDLE = {"cpu": 1.0, "ram": 0.5, "gpu": None}


def test_one_fit_when_it_fills_the_window() -> None:
    backend, meters = FakeBackend(), FakeMeters([30.0])
    window = measure_training(
        backend, ["a", "b"], [0, 1], ["n", "p"], "en", meters, min_window_s=0, max_loops=5, idle_w=IDLE
    )
    assert backend.fits == 1 and window.loops == 1 and window.n_train == 2
    assert backend.events == ["sync", "fit", "sync"]
    assert window.duration_s == 2.0
    assert window.energy["cpu"].energy_j == 30.0 and window.energy["cpu"].method == "measured:rapl"
    assert window.energy["cpu"].net_energy_j == pytest.approx(30.0 - 1.0 * 2.0)  # idle W x s subtracted
    assert window.energy["ram"].method == "estimated:ram-0.375W/GB"
    assert window.energy["gpu"].energy_j is None and window.energy["gpu"].reason == "no GPU"


def test_short_fits_repeat_until_the_loop_cap_and_are_divided() -> None:
    backend, meters = FakeBackend(), FakeMeters([30.0])
    window = measure_training(
        backend, ["a", "b"], [0, 1], ["n", "p"], "en", meters, min_window_s=60, max_loops=3, idle_w=IDLE
    )
    assert backend.fits == 3 and window.loops == 3 and window.max_loops_reached
    assert window.energy["cpu"].energy_j == pytest.approx(10.0)
    assert window.duration_s == pytest.approx(2.0 / 3)
    assert window.energy["cpu"].net_energy_j == pytest.approx(10.0 - 1.0 * 2.0 / 3)


def dataset() -> SimpleNamespace:
    texts = ["good", "bad", "fine", "awful", "nice", "poor"]
    record = SimpleNamespace(
        splits=[SimpleNamespace(train_idx=[0, 1, 2, 3], test_idx=[4, 5])],
        test_labels={"0": [0, 1]},
        label_names=["pos", "neg"],
        language="en",
    )
    return SimpleNamespace(record=record, texts=texts, labels=[0, 1, 0, 1, 0, 1])


def cell(backend: FakeBackend, meters: FakeMeters, *, meter_training: bool) -> Cell:
    return run_cell(
        backend,
        dataset(),
        "toy",
        "setfit",
        0,
        meters,
        min_window_s=0.0,
        max_loops=1,
        idle_w=IDLE,
        load_s=1.0,
        gpus=None,
        expectations=Expectations(),
        meter_training=meter_training,
    )


def test_training_has_its_own_window_apart_from_inference() -> None:
    meters = FakeMeters([500.0, 4.0])  # the training window, then the inference window
    result = cell(FakeBackend(), meters, meter_training=True)
    assert result.status == "ok" and meters.windows == 2
    assert result.training is not None and result.training.energy["cpu"].energy_j == 500.0
    assert result.energy["cpu"].energy_j == 4.0  # inference: only its own window
    assert result.train_s == result.training.duration_s
    again = Cell.model_validate(json.loads(result.model_dump_json()))
    assert again.training == result.training


def test_zero_shot_fit_is_timed_only() -> None:
    meters = FakeMeters([4.0])
    result = cell(FakeBackend(), meters, meter_training=False)
    assert result.status == "ok" and result.training is None and meters.windows == 1


def test_a_failing_fit_is_a_failed_cell_naming_the_reason() -> None:
    meters = FakeMeters([1.0, 1.0])
    result = cell(FakeBackend(fail=True), meters, meter_training=True)
    assert not meters.open  # the window was closed, so the next cell can open one
    assert result.status == "failed" and result.error is not None
    assert result.error.type == "DataError"
    assert result.error.message.startswith("during training: ") and "'pos' (id 1)" in result.error.message


def test_a_cell_without_training_still_validates() -> None:
    ok = cell(FakeBackend(), FakeMeters([4.0]), meter_training=False).model_dump(mode="json")
    ok.pop("training")
    assert Cell.model_validate(ok).training is None

"""Builders of small, valid result documents for tests that do not need a real run."""

from __future__ import annotations

from typing import Any

from bench.results import Cell, DatasetRecord, EnergyValue, ResultDocument, SplitRecord, Window


def energy(cpu_j: float = 1.0, ram_j: float = 0.5) -> dict[str, EnergyValue]:
    return {
        "gpu": EnergyValue(energy_j=None, method="unavailable", reason="no GPU"),
        "cpu": EnergyValue(energy_j=cpu_j, method="estimated:tdp-utilization"),
        "ram": EnergyValue(energy_j=ram_j, method="estimated:ram-0.375W/GB"),
    }


def cell(
    rep: int = 0,
    *,
    model: str = "linear-bow",
    predictions: list[int] | None = None,
    labels: list[int] | None = None,
    **overrides: Any,
) -> Cell:
    labels = labels if labels is not None else [0, 1, 1, 0]
    predictions = predictions if predictions is not None else [0, 1, 0, 0]
    correct = sum(p == t for p, t in zip(predictions, labels, strict=True))
    fields: dict[str, Any] = dict(
        dataset="toy",
        model=model,
        repetition=rep,
        status="ok",
        started_at="2026-01-01T00:00:00+00:00",
        finished_at="2026-01-01T00:00:01+00:00",
        n_test=len(labels),
        accuracy=correct / len(labels),
        macro_f1=0.7,
        invalid_rate=0.0,
        load_s=0.1,
        train_s=0.01,
        duration_s=0.5,
        window=Window(duration_s=2.0, loops=4, min_window_s=2.0),
        energy=energy(),
        predictions=predictions,
    )
    fields.update(overrides)
    return Cell(**fields)


def document(cells: list[Cell] | None = None, repetitions: int = 2, **overrides: Any) -> ResultDocument:
    splits = [
        SplitRecord(repetition=r, seed=r, train_idx=[0, 1, 2, 3], test_idx=[4, 5, 6, 7]) for r in range(repetitions)
    ]
    dataset = DatasetRecord(
        name="toy",
        pin={"source": "test", "content_sha256": "x"},
        label_names=["neg", "pos"],
        language="en",
        n_items=8,
        n_train=4,
        n_test=4,
        splits=splits,
        splits_sha256="abc",
        test_labels={str(r): [0, 1, 1, 0] for r in range(repetitions)},
    )
    fields: dict[str, Any] = dict(
        run_id="cpu-default-test",
        status="running",
        created_at="2026-01-01T00:00:00+00:00",
        updated_at="2026-01-01T00:00:00+00:00",
        kit_version="0.1.0",
        profile={"name": "cpu"},
        suite_name="default",
        suite={"datasets": ["toy"], "models": ["linear-bow"], "repetitions": repetitions},
        settings={"min_window_s": 2.0},
        settings_sha256="s",
        environment={"machine": {}},
        meters={},
        datasets={"toy": dataset},
        models={"linear-bow": {"paper_label": "Linear BoW"}},
        cells=cells if cells is not None else [cell(0), cell(1)],
    )
    fields.update(overrides)
    return ResultDocument(**fields)

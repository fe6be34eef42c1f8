"""Checks on a results document beyond its schema: internal consistency a reviewer can rely on.

``load_results`` already refuses truncated files, hash mismatches and schema violations. This module checks that the
numbers agree with each other: accuracy recomputed from the stored predictions and true labels, split sizes, windows
at least as long as the minimum, no duplicate cells, every measured component with a method label.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.analysis import accuracy
from bench.meters.base import METHODS
from bench.results import ResultDocument, load_results

#: Relative tolerance for recomputed accuracy (stored as a float; exact up to rounding).
_ACC_TOL = 1e-9


@dataclass(frozen=True)
class Problem:
    """One finding: where (a cell key or a section) and what."""

    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def check_document(doc: ResultDocument) -> list[Problem]:
    """Every consistency problem of a loaded document (empty list: consistent)."""
    problems: list[Problem] = []
    seen: set[tuple[str, str, int]] = set()
    for cell in doc.cells:
        where = f"cell {cell.dataset}/{cell.model}/rep{cell.repetition}"
        if cell.key in seen:
            problems.append(Problem(where, "duplicate cell"))
        seen.add(cell.key)
        dataset = doc.datasets.get(cell.dataset)
        if dataset is None:
            problems.append(Problem(where, f"data set {cell.dataset!r} is not described in 'datasets'"))
            continue
        if cell.repetition >= len(dataset.splits):
            problems.append(Problem(where, f"repetition {cell.repetition} has no recorded split"))
            continue
        if cell.status != "ok":
            continue
        split = dataset.splits[cell.repetition]
        if cell.n_test != len(split.test_idx):
            problems.append(Problem(where, f"n_test={cell.n_test} but the split has {len(split.test_idx)} test items"))
        truth = dataset.test_labels.get(str(cell.repetition))
        if cell.predictions is not None and truth is not None and len(truth) == len(cell.predictions):
            recomputed = accuracy(truth, cell.predictions)
            if abs(recomputed - (cell.accuracy or 0.0)) > _ACC_TOL:
                problems.append(Problem(where, f"accuracy {cell.accuracy} but predictions give {recomputed:.6f}"))
        window = cell.window
        if window is not None and window.duration_s < window.min_window_s and not window.max_loops_reached:
            problems.append(
                Problem(where, f"window {window.duration_s:.3f} s shorter than the minimum {window.min_window_s:g} s")
            )
        for component, value in cell.energy.items():
            if value.method not in METHODS:
                problems.append(Problem(where, f"energy.{component}: unknown method {value.method!r}"))
            if value.energy_j is not None and value.method == "unavailable":
                problems.append(Problem(where, f"energy.{component}: a number labelled 'unavailable'"))
            if value.energy_j == 0.0 and value.method.startswith("measured:"):
                problems.append(Problem(where, f"energy.{component}: measured exactly 0 J (meter not counting?)"))
    for name, dataset in doc.datasets.items():
        for split in dataset.splits:
            if set(split.train_idx) & set(split.test_idx):
                problems.append(Problem(f"datasets.{name}", f"repetition {split.repetition}: train and test overlap"))
            if len(split.test_idx) != dataset.n_test or len(split.train_idx) != dataset.n_train:
                problems.append(
                    Problem(
                        f"datasets.{name}", f"repetition {split.repetition}: split sizes differ from n_train/n_test"
                    )
                )
    if doc.status == "complete":
        expected = (
            len(doc.suite.get("datasets", [])) * len(doc.suite.get("models", [])) * doc.suite.get("repetitions", 0)
        )
        if len(doc.cells) != expected:
            problems.append(Problem("cells", f"status complete but {len(doc.cells)} cells for a grid of {expected}"))
    return problems


def validate_file(path: Path | str) -> tuple[ResultDocument, list[Problem]]:
    """Load (hash, schema) and check a results file; ResultsError if it cannot be loaded at all."""
    doc = load_results(path)
    return doc, check_document(doc)

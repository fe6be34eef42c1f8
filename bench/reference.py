"""The paper's published numbers (reports/reference/*.csv), looked up by model label and dataset."""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

REFERENCE_DIR = Path(
    os.environ.get("BENCH_REFERENCE_DIR", Path(__file__).resolve().parent.parent / "reports" / "reference")
)


@dataclass(frozen=True)
class PaperValue:
    """One published (accuracy, energy) pair; energy_wh may be the string '<0.01' as printed."""

    accuracy: float | None
    energy_wh: float | str | None
    table: str


def _number(text: str | None) -> float | str | None:
    if text is None or text == "":
        return None
    try:
        return float(text)
    except ValueError:
        return text  # "<0.01" stays as printed


def paper_value(model_label: str, paper_dataset: str | None, directory: Path | None = None) -> PaperValue | None:
    """The paper's number for ``model_label`` (e.g. 'Linear BoW') on ``paper_dataset`` ('tomatoes', 'fktg', ...)."""
    if not paper_dataset:
        return None
    folder = directory or REFERENCE_DIR
    if paper_dataset == "fktg":
        path, table = folder / "fktg_capella.csv", "B1"
        acc_col, energy_col = "accuracy", "energy_wh_per_run"
    else:
        path, table = folder / "public_datasets_capella.csv", "B4/B5"
        acc_col, energy_col = f"{paper_dataset}_accuracy", f"{paper_dataset}_energy_wh"
    if not path.is_file():
        return None
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row.get("model") == model_label and acc_col in row:
                acc = _number(row.get(acc_col))
                return PaperValue(
                    accuracy=acc if isinstance(acc, float) else None,
                    energy_wh=_number(row.get(energy_col)),
                    table=table,
                )
    return None


@dataclass(frozen=True)
class NodeRatio:
    """The paper's two nodes (1 GPU each) over one node (2 GPUs) for one model (its Table B2)."""

    duration_ratio: float
    energy_ratio: float
    table: str = "B2"


def node_ratio(model_label: str, directory: Path | None = None) -> NodeRatio | None:
    """The paper's double-node / single-node duration and energy ratios for ``model_label`` (None if not published)."""
    path = (directory or REFERENCE_DIR) / "single_vs_double_node.csv"
    if not model_label or not path.is_file():
        return None
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            if row.get("model") == model_label:
                return NodeRatio(float(row["duration_ratio"]), float(row["energy_ratio"]))
    return None

"""Classes of a data set's splits that a trained model cannot learn: a test class that never occurs in training.

A model trained on a split without a class never predicts it: every test text of that class counts as wrong, and
the macro-F1 still looks plausible (the class's F1 of 0 is averaged with the others). ``absent_class_warnings`` names,
per data set and class, the repetitions whose training split lacks a class their test split holds. It describes the
data, not the machine: a warning in the run's results (``ResultDocument.warnings``), which the summary, the report,
``bench validate`` and the leaderboard show; a redo of cells does not clear it.

Every message starts with ``absent_class_prefix(name)`` (``ABSENT_CLASS_START``, then the data set), so readers of
the results can find a data set's warnings among the run's others (``is_absent_class_warning``). Pure, standard
library only: preflight has the labels and the splits at hand before any energy is spent.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

#: How every message of ``absent_class_warnings`` starts.
ABSENT_CLASS_START = "test class absent from training"


def absent_class_prefix(name: str) -> str:
    """The start of every absent-class warning of data set ``name`` (``ABSENT_CLASS_START``, then the data set)."""
    return f"{ABSENT_CLASS_START}: data set {name!r}, "


def is_absent_class_warning(warning: str, name: str | None = None) -> bool:
    """Whether a run warning is one of ``absent_class_warnings``' (of data set ``name`` when given)."""
    return warning.startswith(absent_class_prefix(name) if name is not None else f"{ABSENT_CLASS_START}: ")


def repetition_ranges(repetitions: Iterable[int]) -> str:
    """Repetitions as short ranges: ``[0, 1, 2, 5, 7, 8]`` -> ``"0-2, 5, 7-8"``."""
    values = sorted(set(repetitions))
    parts: list[str] = []
    first = 0
    while first < len(values):
        last = first
        while last + 1 < len(values) and values[last + 1] == values[last] + 1:
            last += 1
        parts.append(str(values[first]) if first == last else f"{values[first]}-{values[last]}")
        first = last + 1
    return ", ".join(parts)


def absent_class_warnings(
    name: str, labels: Sequence[int], splits: Iterable[Any], label_names: Sequence[str]
) -> list[str]:
    """One warning per class of data set ``name`` that some repetition's test split holds and its training split
    does not: the class's name, the repetitions, and how many test texts of it those repetitions hold.

    ``labels``: the label id of every row of the data set; ``splits``: records with ``repetition``, ``train_idx`` and
    ``test_idx`` (row indices into ``labels``: ``bench.data.splits.Split`` or ``bench.results.SplitRecord``);
    ``label_names``: the names of the label ids. Empty list when every test class occurs in its training split."""
    splits = list(splits)
    absent: dict[int, list[int]] = {}
    texts: Counter[int] = Counter()
    for split in splits:
        trained = {labels[i] for i in split.train_idx}
        tested = Counter(labels[i] for i in split.test_idx)
        for label in sorted(set(tested) - trained):
            absent.setdefault(label, []).append(split.repetition)
            texts[label] += tested[label]
    out = []
    for label in sorted(absent):
        shown = label_names[label] if 0 <= label < len(label_names) else str(label)
        repetitions = absent[label]
        out.append(
            f"{absent_class_prefix(name)}class {shown!r} (id {label}): in repetition(s) "
            f"{repetition_ranges(repetitions)} ({len(repetitions)} of {len(splits)}) it is in the test split "
            f"({texts[label]} text(s) in all) and not in the training split. A trained model cannot predict a "
            "class it never saw: those texts count as wrong, and the macro-F1 averages in a 0 for the class. Use a "
            "larger n_train, or remove the class's few rows from the data."
        )
    return out

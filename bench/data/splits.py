"""Deterministic random train/test splits, recorded as indices.

The paper draws, per repetition, 200 training and 200 test texts "at random" (189/189 for FKTG) and lets every model
see the same 10 splits; it states neither seeds nor stratification. The sampling below is therefore the kit's own
choice, fixed so that every model and every machine with the same data draws the same indices:

- per repetition ``r``, a PCG64 generator seeded with ``numpy.random.SeedSequence([seed, r])``;
- a partial Fisher-Yates shuffle over ``range(n_items)`` that takes its random numbers from the generator's raw
  64-bit outputs (``bit_generator.random_raw``) with rejection sampling. NumPy guarantees the raw bit stream of
  PCG64 and SeedSequence across versions, but not the algorithms of ``Generator.choice``/``permutation``, so the
  kit does the drawing itself;
- the first ``n_train`` drawn items are the training set, the next ``n_test`` the test set (so they are disjoint
  and drawn without replacement from all items, not stratified); each is stored sorted ascending.

A repetition whose training sample holds fewer than two classes is an error rather than silently redrawn, so the
indices stay a pure function of ``(seed, repetition, n_items)``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bench.errors import ConfigError, DataError

_TWO_64 = 1 << 64


@dataclass(frozen=True)
class Split:
    """One repetition's split: sorted item indices for training and for testing (disjoint)."""

    repetition: int
    seed: int
    train_idx: tuple[int, ...]
    test_idx: tuple[int, ...]

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (lists of ints) for results files."""
        return {
            "repetition": self.repetition,
            "seed": self.seed,
            "train_idx": list(self.train_idx),
            "test_idx": list(self.test_idx),
        }


def _draw(n_items: int, k: int, seed: int, repetition: int) -> list[int]:
    """The first ``k`` items of a seeded Fisher-Yates shuffle of ``range(n_items)`` (O(k) time and memory)."""
    import numpy as np

    bits = np.random.PCG64(np.random.SeedSequence([seed, repetition]))
    swapped: dict[int, int] = {}  # sparse Fisher-Yates: position -> item, only where it differs from identity
    picked: list[int] = []
    for i in range(k):
        bound = n_items - i
        limit = _TWO_64 - (_TWO_64 % bound)  # reject the top sliver so every j in [0, bound) is equally likely
        while True:
            raw = int(bits.random_raw())
            if raw < limit:
                break
        j = i + raw % bound
        picked.append(swapped.get(j, j))
        swapped[j] = swapped.get(i, i)
    return picked


def make_splits(
    n_items: int,
    labels: Sequence[int],
    *,
    n_train: int,
    n_test: int,
    repetitions: int = 10,
    seed: int = 0,
) -> list[Split]:
    """Draw ``repetitions`` disjoint random train/test splits of ``n_items`` items (see the module docstring).

    Args:
        n_items: number of items in the data set.
        labels: label id of every item (length ``n_items``); used to refuse a training sample with one class.
        n_train, n_test: sizes of the training and test samples.
        repetitions: number of splits (the paper uses 10).
        seed: base seed; repetition ``r`` uses ``SeedSequence([seed, r])``.

    Raises:
        ConfigError: non-positive sizes or repetitions, a negative seed, or labels of the wrong length.
        DataError: ``n_train + n_test > n_items``, or a training sample with fewer than 2 classes.
    """
    if n_train < 1 or n_test < 1 or repetitions < 1:
        raise ConfigError(
            f"n_train ({n_train}), n_test ({n_test}) and repetitions ({repetitions}) must all be at least 1."
        )
    if seed < 0:
        raise ConfigError(f"seed must be >= 0, got {seed}.")
    if len(labels) != n_items:
        raise ConfigError(f"labels has {len(labels)} entries but n_items is {n_items}.")
    if n_train + n_test > n_items:
        half = n_items // 2
        raise DataError(
            f"The data set has {n_items} items, fewer than n_train + n_test = {n_train} + {n_test} = "
            f"{n_train + n_test}. Use smaller sizes, e.g. n_train = n_test = {half}"
            + ("." if half >= 1 else " (it has too few items for any split).")
        )
    splits = []
    for repetition in range(repetitions):
        drawn = _draw(n_items, n_train + n_test, seed, repetition)
        train = tuple(sorted(drawn[:n_train]))
        test = tuple(sorted(drawn[n_train:]))
        classes = {labels[i] for i in train}
        if len(classes) < 2:
            raise DataError(
                f"Repetition {repetition} (seed {seed}): all {n_train} training items have the same label "
                f"({next(iter(classes))}); a classifier needs at least 2 classes. Use a larger n_train, or check "
                "that the data set has more than one class."
            )
        splits.append(Split(repetition=repetition, seed=seed, train_idx=train, test_idx=test))
    return splits


def splits_sha256(splits: Sequence[Split]) -> str:
    """sha256 of the split indices: canonical JSON ``[[repetition, train_idx, test_idx], ...]`` without spaces."""
    body = [[s.repetition, list(s.train_idx), list(s.test_idx)] for s in splits]
    return hashlib.sha256(json.dumps(body, separators=(",", ":")).encode()).hexdigest()

"""Backends that misbehave on purpose, to test the runner's failure isolation. Real protocol, no model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class _Base:
    def __init__(self, device: str = "cpu", seed: int = 0, fail_on_fit: int | None = None) -> None:
        self.fits = 0
        self.fail_on_fit = fail_on_fit
        self.majority = 0

    def load(self) -> None:
        pass

    def fit(
        self, texts: Sequence[str], labels: Sequence[int], label_names: Sequence[str], *, language: str = "en"
    ) -> None:
        self.fits += 1
        self.majority = max(set(labels), key=list(labels).count)

    def predict(self, texts: Sequence[str]) -> list[int]:
        return [self.majority] * len(texts)

    def synchronize(self) -> None:
        pass

    def info(self) -> dict[str, Any]:
        return {"fake": True}

    def close(self) -> None:
        pass


class OutOfMemoryOnSecondFit(_Base):
    """Predicts the majority class; fitting the second training split it sees raises MemoryError (as a model too big
    for the device would). Counted by split, not by call: a cell's training window may fit one split several times."""

    def __init__(self, device: str = "cpu", seed: int = 0, fail_on_fit: int | None = None) -> None:
        super().__init__(device, seed, fail_on_fit)
        self.splits: list[tuple[str, ...]] = []

    def fit(
        self, texts: Sequence[str], labels: Sequence[int], label_names: Sequence[str], *, language: str = "en"
    ) -> None:
        super().fit(texts, labels, label_names)
        split = tuple(texts[:5])
        if split not in self.splits:
            self.splits.append(split)
        if len(self.splits) >= 2 and split == self.splits[1]:
            raise MemoryError("CUDA out of memory (simulated)")


class FailsToLoad(_Base):
    def load(self) -> None:
        raise RuntimeError("weights not found (simulated)")

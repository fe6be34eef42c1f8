"""A loaded data set (:class:`LabeledTexts`), its content hash, and the checks every source's rows go through.

Every source (packaged sets, the Hugging Face Hub, a local file) ends in :func:`finalize`, so they refuse the same
problems with the same messages and carry the same ``pin['content_sha256']`` (see :func:`content_sha256`): two
machines can check that they classified the same texts with the same labels.
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.errors import DataError

MAX_LISTED = 10  # how many bad rows / unknown labels an error message lists before "... and N more"


@dataclass(frozen=True)
class LabeledTexts:
    """A loaded data set: texts, label ids (indices into ``label_names``), language and provenance ``pin``."""

    name: str
    texts: tuple[str, ...]
    labels: tuple[int, ...]
    label_names: tuple[str, ...]
    language: str
    pin: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.texts)

    def class_counts(self) -> dict[str, int]:
        """Number of items per label name (every label name present, zero if unused)."""
        counts = Counter(self.labels)
        return {label: counts.get(i, 0) for i, label in enumerate(self.label_names)}


def content_sha256(texts: Sequence[str], labels: Sequence[int], label_names: Sequence[str]) -> str:
    """sha256 identifying the data: label names, then every (text, label id) in order.

    Bytes hashed: ``json.dumps(list(label_names))`` + ``"\\n"``, then for each item
    ``f"{len(utf8)}:"`` + the text as UTF-8 + ``f":{label}\\n"``. The length prefix makes the encoding unambiguous
    whatever the texts contain, and the format is simple enough to recompute in any language.
    """
    digest = hashlib.sha256()
    digest.update(json.dumps(list(label_names), ensure_ascii=False).encode() + b"\n")
    for text, label in zip(texts, labels, strict=True):
        raw = text.encode("utf-8")
        digest.update(f"{len(raw)}:".encode())
        digest.update(raw)
        digest.update(f":{label}\n".encode())
    return digest.hexdigest()


def finalize(
    name: str,
    texts: list[Any],
    labels: list[int],
    label_names: Sequence[str],
    language: str,
    pin: dict[str, Any],
    *,
    origin: str,
    where: Callable[[int], str],
) -> LabeledTexts:
    """Check texts (no empty ones) and labels (in range, >= 2 classes), hash, and build the result.

    ``texts``: one per row (anything but a non-empty string is refused); ``labels``: ids into ``label_names``;
    ``pin``: the source's provenance, to which ``dataset``, ``n_rows`` and ``content_sha256`` are added. ``origin``
    names the source in messages and ``where(i)`` row ``i`` of it (``"line 12"``). Raises DataError naming the rows
    at fault: no rows, empty or missing texts, label ids out of range, a single class.
    """
    if not texts:
        raise DataError(f"{origin} has no data rows.")
    bad = [i for i, text in enumerate(texts) if not isinstance(text, str) or not text.strip()]
    if bad:
        raise DataError(
            f"{origin}: {len(bad)} empty or missing text(s) at {listing([where(i) for i in bad])}. "
            "Fill or remove these rows (the kit does not drop rows silently: the splits would shift)."
        )
    n_classes = len(label_names)
    out_of_range = [i for i, label in enumerate(labels) if not 0 <= label < n_classes]
    if out_of_range:
        raise DataError(
            f"{origin}: label id(s) outside 0..{n_classes - 1} at {listing([where(i) for i in out_of_range])}."
        )
    present = sorted(set(labels))
    if len(present) < 2:
        only = label_names[present[0]] if present else "?"
        raise DataError(
            f"{origin}: every row has the label {only!r}; a classifier needs at least 2 classes. "
            "Check that the label column is the right one."
        )
    pin = {**pin, "dataset": name, "n_rows": len(texts), "content_sha256": content_sha256(texts, labels, label_names)}
    return LabeledTexts(
        name=name,
        texts=tuple(texts),
        labels=tuple(labels),
        label_names=tuple(label_names),
        language=language,
        pin=pin,
    )


def listing(items: list[str]) -> str:
    """``items`` joined with commas for an error message, the first :data:`MAX_LISTED` of them and how many more."""
    shown = ", ".join(items[:MAX_LISTED])
    return shown + (f" ... and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else "")

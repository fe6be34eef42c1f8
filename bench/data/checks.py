"""Checks of a run's data before the grid spends energy (``bench.run.loop`` calls them after the data sets loaded and
before the session's meters start).

- ``leakage_warnings``: texts that land in both the training and the test part of a split (duplicated rows) are
  counted per repetition; a model scores on them from memory. A warning, not an error: the paper's data sets have a
  few such duplicates too.
- ``check_vocabulary``: a bag-of-words model needs at least one token in its training texts. The kit's BoW models use
  scikit-learn's ``CountVectorizer()`` defaults: lower-cased tokens of two or more word characters
  (``BOW_TOKEN_PATTERN``), so texts made only of single letters, digits, punctuation or emoji leave the vocabulary
  empty and scikit-learn would fail inside the first cell; the character TF-IDF models need texts of two or more
  characters. Refused up front in the kit's words.

Only the standard library is used (no scikit-learn import).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from bench.errors import DataError

#: scikit-learn's default ``CountVectorizer`` token pattern (the kit's BoW models use the defaults, as the paper):
#: a token is two or more word characters (letters, digits, underscore) between word boundaries.
BOW_TOKEN_PATTERN = r"(?u)\b\w\w+\b"
_TOKEN = re.compile(BOW_TOKEN_PATTERN)
_SHOWN = 3


def leakage_warnings(name: str, texts: Sequence[str], splits: Iterable[Any]) -> list[str]:
    """One warning for data set ``name`` when test texts of a repetition also occur (exactly, after stripping
    surrounding whitespace) among its training texts; the counts per repetition and example rows (1 = the first
    record of the data), never the texts themselves (results travel to the leaderboard). Empty list when none do."""
    counts: dict[int, int] = {}
    rows: list[int] = []
    for split in splits:
        train = {texts[i].strip() for i in split.train_idx}
        dup = [i for i in split.test_idx if texts[i].strip() in train]
        if dup:
            counts[split.repetition] = len(dup)
            rows += [i for i in sorted(dup) if i not in rows][: _SHOWN - len(rows)]
    if not counts:
        return []
    per_rep = ", ".join(f"rep {r}: {n}" for r, n in sorted(counts.items()))
    shown = ", ".join(str(i + 1) for i in rows)
    return [
        f"data set {name!r}: test texts that also occur among the same repetition's training texts (duplicated "
        f"rows; a model scores on them from memory): {per_rep}; e.g. rows {shown} of the data. Remove the duplicates "
        "from the file to measure generalization only."
    ]


def check_vocabulary(name: str, texts: Sequence[str], splits: Iterable[Any], features: set[str]) -> None:
    """DataError when a repetition's training texts give a bag-of-words (``"bow"``) or character TF-IDF
    (``"tfidf-char"``) model an empty vocabulary, naming the repetition, the rule and an example text."""
    for split in splits:
        train = [texts[i] for i in split.train_idx]
        if "bow" in features and not any(_TOKEN.search(t.lower()) for t in train):
            raise DataError(
                f"data set {name!r}, repetition {split.repetition}: none of its {len(train)} training texts has a "
                "word the bag-of-words models can count. Their vectorizer (scikit-learn's CountVectorizer, library "
                "defaults as the paper) keeps only tokens of two or more letters or digits "
                f"(pattern {BOW_TOKEN_PATTERN}); texts like {train[0][:40]!r} have none. Check --text-column, or "
                "leave the *-bow models out (--model)."
            )
        if "tfidf-char" in features and not any(len(t.strip()) >= 2 for t in train):
            raise DataError(
                f"data set {name!r}, repetition {split.repetition}: every training text is shorter than 2 "
                "characters, so the character 2-3-gram TF-IDF models have no features. Check --text-column."
            )

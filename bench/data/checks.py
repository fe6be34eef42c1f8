"""Checks of a run's data before the grid spends energy (``bench.run.loop`` calls them after the data sets loaded and
before the session's meters start).

- ``leakage_warnings``: texts that land in both the training and the test part of a split (duplicated rows) are
  counted per repetition; a model scores on them from memory. A warning, not an error: the paper's data sets have a
  few such duplicates too. It returns ``vocabulary_warnings`` with them (the hook the run's preflight calls).
- ``vocabulary_warnings``: most test texts of a repetition share no word with its training texts under the
  bag-of-words models' tokenisation (``bench.data.scripts.bow_tokenisation``): those models then have nothing to go
  on and predict one class for everything. A warning for the results.
- ``check_vocabulary``: a bag-of-words model needs at least one token in its training texts. The kit's BoW models use
  scikit-learn's ``CountVectorizer()`` defaults: lower-cased tokens of two or more word characters
  (``BOW_TOKEN_PATTERN``), so texts made only of single letters, digits, punctuation or emoji leave the vocabulary
  empty and scikit-learn would fail inside the first cell (texts in scripts without spaces are segmented into words
  instead, one-character words included: ``bench.data.scripts``); the character TF-IDF models need texts of two or
  more characters. Refused up front in the kit's words.

Only the standard library is used (no scikit-learn import); ``icu4py`` only for texts in scripts without spaces.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from bench.data.scripts import BOW_TOKEN_PATTERN, bow_tokenisation
from bench.errors import DataError

__all__ = ["BOW_TOKEN_PATTERN", "check_vocabulary", "leakage_warnings", "vocabulary_warnings"]

_SHOWN = 3
#: Share of a repetition's test texts that share no word with its training texts above which the run is warned.
DISJOINT_SHARE = 0.5


def leakage_warnings(
    name: str, texts: Sequence[str], splits: Iterable[Any], *, vocabulary: bool = True, language: str | None = None
) -> list[str]:
    """One warning for data set ``name`` when test texts of a repetition also occur (exactly, after stripping
    surrounding whitespace) among its training texts; the counts per repetition and example rows (1 = the first
    record of the data), never the texts themselves (results travel to the leaderboard). Then, with ``vocabulary``
    (the default), ``vocabulary_warnings(name, texts, splits, language=language)``. Empty list when none apply."""
    splits = list(splits)
    disjoint = vocabulary_warnings(name, texts, splits, language=language) if vocabulary else []
    return _duplicate_warnings(name, texts, splits) + disjoint


def _duplicate_warnings(name: str, texts: Sequence[str], splits: Iterable[Any]) -> list[str]:
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


def vocabulary_warnings(
    name: str, texts: Sequence[str], splits: Iterable[Any], *, language: str | None = None
) -> list[str]:
    """One warning for data set ``name`` when, in some repetition, more than ``DISJOINT_SHARE`` of the test texts
    share no word with that repetition's training texts, the words being the bag-of-words models' tokens
    (``bow_tokenisation`` of the training texts and ``language``; None: detected from the texts). Names the
    repetitions, the counts and the tokenisation; empty list when no repetition is that disjoint."""
    found: list[str] = []
    method = ""
    for split in splits:
        train = [texts[i] for i in split.train_idx]
        test = [texts[i] for i in split.test_idx]
        if not train or not test:
            continue
        tokenisation = bow_tokenisation(train, language)
        tokens = tokenisation.tokens()
        vocabulary = {token for text in train for token in tokens(text)}
        alone = sum(1 for text in test if vocabulary.isdisjoint(tokens(text)))
        if alone > DISJOINT_SHARE * len(test):
            found.append(f"rep {split.repetition}: {alone} of {len(test)}")
            method = f"{tokenisation.method}" + (f", locale {tokenisation.locale}" if tokenisation.locale else "")
    if not found:
        return []
    return [
        f"data set {name!r}: most test texts share no word with the same repetition's training texts "
        f"({'; '.join(found)} test texts; words as the bag-of-words models count them: {method}). Those models have "
        "nothing to go on for such texts and predict one class for them. Check that training and test come from the "
        "same source and language (--language), and --text-column."
    ]


def check_vocabulary(name: str, texts: Sequence[str], splits: Iterable[Any], features: set[str]) -> None:
    """DataError when a repetition's training texts give a bag-of-words (``"bow"``) or character TF-IDF
    (``"tfidf-char"``) model an empty vocabulary, naming the repetition, the rule and an example text. The words are
    those the bag-of-words models count (``bench.data.scripts.bow_tokenisation``, language detected from the texts)."""
    for split in splits:
        train = [texts[i] for i in split.train_idx]
        tokens = bow_tokenisation(train).tokens() if "bow" in features else None
        if tokens is not None and not any(tokens(t) for t in train):
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

"""Checks before the grid spends energy (issue 13, C): duplicated texts across train and test, an empty
bag-of-words vocabulary; and the terminal summary's invalid-answer rate (F)."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from bench.cli import _print_summary
from bench.data.checks import BOW_TOKEN_PATTERN, check_vocabulary, leakage_warnings
from bench.errors import DataError
from bench.results import SplitRecord
from tests.factories import cell, document


def _split(rep: int, train: list[int], test: list[int]) -> SplitRecord:
    return SplitRecord(repetition=rep, seed=rep, train_idx=train, test_idx=test)


def test_the_token_pattern_is_the_one_the_bow_models_use() -> None:
    from sklearn.feature_extraction.text import CountVectorizer

    assert CountVectorizer().token_pattern == BOW_TOKEN_PATTERN  # the check says what the vectorizer does


def test_duplicates_across_train_and_test_are_counted_per_repetition() -> None:
    texts = ["same text", "other", "same text ", "unique", "x y"]
    splits = [_split(0, [0, 1], [2, 3]), _split(1, [1, 3], [0, 4])]
    (warning,) = leakage_warnings("mine", texts, splits, vocabulary=False)  # shared words: tests/unit/test_scripts.py
    assert "data set 'mine'" in warning and "rep 0: 1" in warning and "rep 1" not in warning
    assert "e.g. rows 3 of the data" in warning and "same text" not in warning  # rows, never the texts
    assert leakage_warnings("mine", texts, [splits[1]], vocabulary=False) == []


def test_an_empty_vocabulary_is_refused_in_the_kits_words() -> None:
    texts = ["a", "1", "?!", "b c", "ok fine"]
    splits = [_split(0, [0, 1, 2, 3], [4])]
    with pytest.raises(DataError, match=r"'emoji', repetition 0: none of its 4 training texts has a word.*two or more"):
        check_vocabulary("emoji", texts, splits, {"bow"})
    check_vocabulary("emoji", texts, splits, {"embedding"})  # no bag-of-words model: nothing to refuse
    check_vocabulary("emoji", texts, [_split(0, [0, 4], [1])], {"bow"})
    with pytest.raises(DataError, match=r"shorter than 2 characters"):
        check_vocabulary("emoji", texts, [_split(0, [0, 1], [4])], {"tfidf-char"})


def test_summary_shows_the_invalid_answer_rate_of_an_llm_that_never_answers_right() -> None:
    cells = [cell(r, model="smollm2-135m", predictions=[-1, -1, -1, -1], invalid_rate=1.0) for r in range(2)]
    doc = document(
        cells=[cell(0), cell(1), *cells], suite={"datasets": ["toy"], "models": ["linear-bow", "smollm2-135m"]}
    )
    out = io.StringIO()
    _print_summary(doc, Console(file=out, width=200))
    text = out.getvalue()
    assert "invalid answers" in text and "100.0%" in text and "matched no label" in text
    out = io.StringIO()
    _print_summary(document(), Console(file=out, width=200))
    assert "invalid answers" not in out.getvalue()  # no column where every answer was valid


def test_a_text_duplicated_within_the_test_part_is_counted_per_row() -> None:
    from types import SimpleNamespace

    from bench.data.checks import leakage_warnings

    texts = ["same text", "other", "same text", "same text", "fresh"]
    split = SimpleNamespace(repetition=0, train_idx=[0, 1], test_idx=[2, 3, 4])
    (warning,) = leakage_warnings("toy", texts, [split])
    assert "rep 0: 2" in warning and "e.g. rows 3, 4 of the data" in warning

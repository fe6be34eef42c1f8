"""A user's Chinese file through `bench run` with a bag-of-words model (issue 24, 3): words are segmented (the data
set is tagged ``und-Hani`` and the model records its tokenisation), and a file whose test texts share no word with
training is warned about before any energy is spent."""

from __future__ import annotations

from pathlib import Path

from bench.runner import run
from tests.integration.test_own_data import adhoc
from tests.unit.test_scripts import chinese_set


def test_a_chinese_file_is_segmented_and_learned(tmp_path: Path) -> None:
    texts, labels = chinese_set(160, seed=0)
    data = tmp_path / "zh.csv"
    data.write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in zip(texts, labels, strict=True)), "utf-8")
    doc = run(adhoc(tmp_path, datasets=[str(data)], models=["linear-bow"], repetitions=1)).document
    (cell,) = [c for c in doc.cells if c.status == "ok"]
    assert cell.accuracy is not None and cell.accuracy >= 0.95  # before: 0.5, one class for every text
    assert len(set(cell.predictions or [])) == 2
    assert doc.datasets["zh"].language == "und-Hani"  # the record says what the texts are written in
    assert "per data set at fit" in doc.models["linear-bow"]["info"]["tokenisation"]["rule"]
    chosen = doc.models["linear-bow"]["info"]["tokenisation_by_dataset"]["zh"]  # what the fit chose, per data set
    assert chosen["method"] == "icu-word-break" and chosen["locale"] == "zh"
    assert not any("share no word" in w for w in doc.warnings)


def test_test_texts_sharing_no_word_with_training_are_warned_about(tmp_path: Path) -> None:
    data = tmp_path / "apart.csv"
    data.write_text("text,label\n" + "".join(f"word{i} other{i},{i % 2}\n" for i in range(80)))
    doc = run(adhoc(tmp_path, datasets=[str(data)], models=["linear-bow"], repetitions=1)).document
    (warning,) = [w for w in doc.warnings if "share no word" in w]
    assert "data set 'apart': most test texts share no word" in warning and "rep 0: 40 of 40" in warning

